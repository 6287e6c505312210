"""The JSON API: the same answers as ``bouncebot ask --json``, as data.

    POST /api/ask        {"question": str, "history": [...]}  -> the answer contract
    POST /api/ask/stream the same request -> NDJSON events, one JSON object a line:
                         {"type": "answer_skeleton", "answer"}, {"type": "token", "text"}...,
                         {"type": "final", "answer", "log_id"} (the default mode: skeleton and final only)
    GET  /api/lookup?q=  the code look-up alone (no model needed)
    POST /api/feedback   {"rating": "up"|"down", "question", "answer", ..., "log_id"}

Each answer is recorded in the conversation log (when it is on, ``app.storage.recorder``): /api/ask
returns its row id in the ``X-Bouncebot-Log-Id`` header, a stream in the final event's ``log_id``;
a feedback post that sends it back attaches its rating and comment to that row.
    GET  /healthz        index and model state, counts

Errors are JSON ``{"error": message}``: 422 for an empty question or a
malformed body or a turn with another role than user or assistant, 413 for a
question (or a turn of its history) over the size limit, 503 when search is unavailable or the
server's queue of answers is full (``app.web.admission``; with Retry-After). The history is
bounded: only the newest BOUNCEBOT_MAX_HISTORY_TURNS turns are read. Requests and answers are the types of ``app.answering.contract``, so
``/openapi.json`` shows the real schema.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from app.answering.contract import Answer, AskRequest, Lookup
from app.answering.ports import FeedbackLog
from app.answering.services import Services
from app.errors import BouncebotError
from app.web.admission import Admission
from app.web.metrics import record_answer, record_error


log = logging.getLogger("bouncebot")
LOG_ID_HEADER = "X-Bouncebot-Log-Id"  # the answer's row in the conversation log, for POST /api/feedback's log_id


# AskRequest is the widget's request too (app.web.widget imports it from here).
__all__ = ["AskRequest", "BUSY", "FeedbackRequest", "admitted", "api_routes", "ask_stream", "error",
           "install_error_handlers"]
STREAM_RESPONSES = {200: {"content": {"application/x-ndjson": {}},
                          "description": "One JSON event a line: answer_skeleton, token..., final"}}


class FeedbackRequest(BaseModel):
    """Limits (413 beyond them, naming the field): question as for questions (BOUNCEBOT_MAX_QUESTION_BYTES),
    answer 64 KB, comment 2,000 characters, codes and sources 100 items and 64 KB of JSON each."""

    rating: Literal["up", "down"]
    question: str = Field(description="The question the answer was for (at most BOUNCEBOT_MAX_QUESTION_BYTES).")
    answer: str = Field("", description="The answer as given (at most 64 KB).")
    comment: str = Field("", description="The agent's comment (at most 2,000 characters).")
    answered: bool | None = None
    codes: list = Field(default_factory=list, description="The answer's codes (at most 100, 64 KB as JSON).")
    sources: list = Field(default_factory=list, description="The answer's sources (at most 100, 64 KB as JSON).")
    log_id: int | None = Field(None, description="The answer's conversation-log id (the X-Bouncebot-Log-Id header of "
                                                 "/api/ask, `log_id` of a stream's final event): the rating and "
                                                 "comment are attached to that logged message too.")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def ask_stream(answerer, body: AskRequest, request: Request | None = None, recorder=None,
               channel: str = "api") -> StreamingResponse:
    """``answerer.stream_ask`` as NDJSON. Bad input fails before the stream starts, as on /api/ask
    (the JSON error shape, 4xx); a failure once it has started ends it with ``{"type": "error"}``.
    With ``request``, the final answer (or the failure) is recorded for the metrics and the log; with
    ``recorder``, in the conversation log too (the final event then carries its ``log_id``)."""
    started = time.perf_counter()
    events = iter(answerer.stream_ask(body.question, body.history))
    first = next(events)  # the answer is decided here: BadQuestion, SearchUnavailable... raise as JSON errors

    def lines():
        yield json.dumps(first, ensure_ascii=False) + "\n"
        try:
            for event in events:
                if request is not None and event.get("type") == "final":
                    record_answer(request, event["answer"])
                if recorder is not None and event.get("type") == "final":
                    latency_ms = (time.perf_counter() - started) * 1000
                    event = {**event, "log_id": recorder.record(event["answer"], channel, latency_ms)}
                yield json.dumps(event, ensure_ascii=False) + "\n"
        except Exception as e:  # noqa: BLE001  (the status line is sent: say so in the stream)
            log.error("the answer stream failed", exc_info=e)
            if request is not None:
                record_error(request)
            yield json.dumps({"type": "error", "error": "The answer stopped on the server; the error was logged. "
                                                        "Try again."}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return error(422, f"Malformed request ({problems}). Send JSON such as {{\"question\": \"What does 550 5.1.1 mean?\"}}.")

    @app.exception_handler(BouncebotError)
    async def users_error(request: Request, exc: BouncebotError):
        response = error(exc.http_status, str(exc))
        if getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # Never a bare "Internal Server Error" in text/plain: the same JSON shape as every other error.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, "Something went wrong on the server while answering; the error was logged. "
                          "Try again, and tell the team running Bouncebot if it keeps happening.")


def answer_logged(answerer, body: AskRequest, request: Request, response: Response, recorder, channel: str):
    """``answerer.ask`` for a door: recorded for the metrics and, with ``recorder``, in the conversation log
    (its id in the ``X-Bouncebot-Log-Id`` header, when written in time)."""
    started = time.perf_counter()
    answer = answerer.ask(body.question, body.history)  # history: validated, the newest turns kept
    latency_ms = (time.perf_counter() - started) * 1000
    record_answer(request, answer)  # the outcome, for the metrics and the log line
    if recorder is not None:
        log_id = recorder.record(answer, channel, latency_ms)
        if log_id is not None:
            response.headers[LOG_ID_HEADER] = str(log_id)
    return answer


def answer_json(answer: Answer, response: Response) -> Response:
    """``answer`` as the ask routes send it: the bytes FastAPI's own serialisation of the returned model
    gives (a test checks), made once by pydantic, with the headers set on ``response`` (the log id).
    FastAPI validated a returned model again and encoded it on the event loop: 68 ms for an answer
    quoting 381 rows at 10,000 articles, 1.6 ms on average over the test split; this costs 2 and 0.2."""
    out = Response(answer.model_dump_json(), media_type="application/json", status_code=response.status_code or 200)
    out.headers.raw.extend(h for h in response.headers.raw if h[0] not in (b"content-length", b"content-type"))
    return out


def answered_json(answerer, body: AskRequest, request: Request, response: Response, recorder, channel: str) -> Response:
    """``answer_logged``, sent as ``answer_json``: in the worker thread, off the event loop."""
    return answer_json(answer_logged(answerer, body, request, response, recorder, channel), response)


async def admitted(admission: Admission, answerer, body: AskRequest, fn, *args):
    """``fn(*args)`` through ``admission`` (``app.web.admission``), after the question's own checks: bad input
    gets its 4xx at once, never a place in the queue nor a 503 for a busy server."""
    answerer.check(body.question)
    return await admission.run(fn, *args)


BUSY = {503: {"description": "Search unavailable, or the server busy (its queue of answers full): "
                             "`{\"error\": ...}`, the busy one with a Retry-After header"}}


def api_routes(services: Services, feedback_log: FeedbackLog, rate_counter=None, recorder=None,
               admission: Admission | None = None) -> APIRouter:
    """``rate_counter`` (``Storage.rate_counter``, PostgreSQL) shares the feedback rate limit between replicas;
    ``recorder`` (``app.storage.recorder.Recorder``) writes each answer to the conversation log;
    ``admission`` (``app.web.admission``, shared with the widget's routes) bounds the answers worked on at once."""
    r = APIRouter()
    answerer = services.answerer
    admission = admission if admission is not None else Admission()

    @r.post("/api/ask", summary="Answer a question (the answer contract)", responses=BUSY, response_model=Answer)
    async def ask(body: AskRequest, request: Request, response: Response) -> Response:
        return await admitted(admission, answerer, body, answered_json, answerer, body, request, response, recorder,
                              "api")

    @r.post("/api/ask/stream", summary="Answer a question as a stream of events (NDJSON)",
            response_class=StreamingResponse, responses={**STREAM_RESPONSES, **BUSY})
    async def ask_streamed(body: AskRequest, request: Request):
        return await admitted(admission, answerer, body, ask_stream, answerer, body, request, recorder, "api")

    @r.get("/api/lookup", summary="Look up the codes in a text (no model needed)")
    def lookup(q: str = Query(..., description="text containing codes")) -> Lookup:
        answerer.check(q)
        return services.lookup_contract(q)

    from app.web.widget import RateLimiter  # imported here: app.widget imports this module

    feedback_limiter = RateLimiter.from_setting(services.settings.feedback_rate, counter=rate_counter, route="feedback")

    @r.post("/api/feedback", summary="Thumbs up or down on an answer", status_code=201, responses={
        413: {"description": "A field over its limit: `{\"error\": ...}` names the field and the limit"},
        429: {"description": "Too many posts from this client (BOUNCEBOT_FEEDBACK_RATE): `{\"error\": ...}` "
                             "with a Retry-After header"},
        503: {"description": "Not saved: the feedback database cannot be written (deleted, read-only, ...)"},
        507: {"description": "Not saved: the disk is full, or the stored feedback reached BOUNCEBOT_FEEDBACK_MAX_MB"},
    })
    def feedback(body: FeedbackRequest, request: Request) -> dict:
        feedback_limiter.enforce(request, "feedback posts")
        saved = feedback_log.add(**body.model_dump(exclude={"log_id"}))
        rated = (body.log_id is not None and recorder is not None
                 and recorder.rate(body.log_id, body.rating, body.comment))
        return {"id": saved, "log_id": body.log_id if rated else None}  # None: no such logged message, or no log

    @r.get("/healthz", summary="Index, vector store and model state (never waits on the store)")
    async def healthz() -> dict:
        store_state = services.search_status()
        retriever = answerer.retriever_if_open()
        documents = None if retriever is None else len(retriever)  # None: not open; store_state says why
        degraded = store_state.get("state") != "ok" or documents is None
        return {
            "status": "degraded" if degraded else "ok",
            "index": {"documents": documents, "where": services.where},
            "store": store_state,
            "model_loaded": services.embedder.loaded,
            "answers": admission.state(),  # answers worked on and waiting now (app.web.admission)
            "store_calls": None if services.guard is None else services.guard.figures(),  # waits, timeouts
            "table_rows": len(services.answerer.table.rows),  # the version being served (a re-index moves it)
            "feedback": feedback_log.count(),
            "conversation_log": None if recorder is None else recorder.stats(),  # rows written, failed, dropped
            "feedback_problem": feedback_log.problem(),  # None, or why a thumbs up/down would not be saved now
        }

    return r
