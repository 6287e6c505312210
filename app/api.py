"""The JSON API: the same answers as ``bouncebot ask --json``, as data.

    POST /api/ask        {"question": str}            -> the answer contract
    GET  /api/lookup?q=  the code look-up alone (no model needed)
    POST /api/feedback   {"rating": "up"|"down", "question", "answer", ...}
    GET  /healthz        index and model state, counts

Errors are JSON ``{"error": message}``: 422 for an empty question or a
malformed body, 413 for a question over the size limit.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .errors import BouncebotError, EmptyQuestion, QuestionTooLong
from .feedback import BadFeedback


class AskRequest(BaseModel):
    question: str = Field(description="The agent's question, or a pasted bounce message.")


class FeedbackRequest(BaseModel):
    rating: Literal["up", "down"]
    question: str
    answer: str = ""
    comment: str = ""
    answered: bool | None = None
    codes: list = Field(default_factory=list)
    sources: list = Field(default_factory=list)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return error(422, f"Malformed request ({problems}). Send JSON such as {{\"question\": \"What does 550 5.1.1 mean?\"}}.")

    @app.exception_handler(QuestionTooLong)
    async def too_long(request: Request, exc: QuestionTooLong):
        return error(413, str(exc))

    @app.exception_handler(EmptyQuestion)
    async def empty(request: Request, exc: EmptyQuestion):
        return error(422, str(exc))

    @app.exception_handler(BadFeedback)
    async def bad_feedback(request: Request, exc: BadFeedback):
        return error(422, str(exc))

    @app.exception_handler(BouncebotError)
    async def other(request: Request, exc: BouncebotError):
        return error(503 if exc.exit_code == 3 else 400, str(exc))


def router(services, store) -> APIRouter:
    r = APIRouter()
    answerer = services.answerer

    @r.post("/api/ask", summary="Answer a question (the answer contract)")
    def ask(body: AskRequest) -> dict:
        return answerer.ask(body.question).to_dict()

    @r.get("/api/lookup", summary="Look up the codes in a text (no model needed)")
    def lookup(q: str = Query(..., description="text containing codes")) -> dict:
        answerer.check(q)
        return services.lookup(q)

    @r.post("/api/feedback", summary="Thumbs up or down on an answer", status_code=201)
    def feedback(body: FeedbackRequest) -> dict:
        return {"id": store.add(**body.model_dump())}

    @r.get("/healthz", summary="Index and model state")
    def healthz() -> dict:
        retriever = answerer.retriever
        return {
            "status": "ok",
            "index": {"documents": len(retriever), "where": services.where},
            "model_loaded": services.embedder.loaded,
            "table_rows": len(services.table.rows),
            "feedback": store.count(),
        }

    return r
