"""``GET /metrics`` (Prometheus text format, ``prometheus-client``) and the middleware that
measures and logs every request.

Families (``bouncebot_`` prefix):

    http_requests_total{method, route, status}            counter
    http_request_duration_seconds{method, route, status}  histogram
    http_requests_in_progress                             gauge (summed over live workers)
    answers_total{channel, outcome}                       counter: channel api | widget | chat;
                                                          outcome answered | refused | small_talk |
                                                          fallback (the language model's text was not kept) |
                                                          error (the server failed to answer: a 5xx, a broken stream)
    feedback_total{rating}                                counter: thumbs up/down saved by this server
    feedback_stored                                       gauge: feedback rows in the database now
    index_documents, index_age_seconds                    gauges: the live index (its version's ``created``)

``route`` is the route's template (``/widget/{name}``, ``/gradio_api/queue/join``; ``unmatched``
for a 404), never the raw path: labels stay bounded. The outcome is not worked out here: a route
hands over the ``Answer`` it returns (``record_answer``) and the outcome is read from its fields.

With several uvicorn workers, ``PROMETHEUS_MULTIPROC_DIR`` (``multiprocess_dir``, made by ``serve``)
holds each worker's figures and any worker's ``/metrics`` answers for the whole server. The index and
feedback gauges are read when scraped, from the stores every worker shares.

``/metrics`` needs no authentication (turn it off with ``BOUNCEBOT_METRICS=off``); it is not under
the JSON API's CORS allowlist, so no other site's page can read it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from app.web.logs import Entry, RequestLog

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RECORD = "bouncebot.record"  # the scope key of a request's ``Record``
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The answering routes: their channel, and what a request that failed without an answer counts as.
ASK_ROUTES = {"/api/ask": "api", "/api/ask/stream": "api", "/widget/api/ask": "widget",
              "/widget/api/ask/stream": "widget"}
FIXED_ROUTES = frozenset({*ASK_ROUTES, "/api/lookup", "/api/feedback", "/healthz", "/metrics"})  # no parameters
OUTCOMES = ("answered", "refused", "small_talk", "fallback", "error")
CHANNELS = ("api", "widget", "chat")


@dataclass
class Record:
    """What a route tells the middleware about the request it answered."""

    outcome: str | None = None
    codes: list[str] = field(default_factory=list)
    question: str | None = None
    passed_on: bool = False  # handed to another process that counts and logs it (the chat's, with workers)


def outcome_of(answer) -> str:
    """The outcome the answerer decided, read from the ``Answer`` (or its JSON) it returned."""
    d = _fields(answer)
    if (d.get("llm") or {}).get("fallback"):
        return "fallback"
    if d.get("answered"):
        return "answered"
    return "small_talk" if d.get("intent") == "small_talk" else "refused"


def _fields(answer) -> dict:
    if isinstance(answer, dict):
        return answer
    return {"answered": answer.answered, "intent": answer.intent, "question": answer.question,
            "llm": {"fallback": answer.llm.fallback} if answer.llm is not None else None,
            "codes": [{"code": c.code} for c in answer.codes]}


def _record_of(answer) -> Record:
    d = _fields(answer)
    return Record(outcome_of(d), [c["code"] for c in d.get("codes") or [] if c.get("code")], d.get("question"))


def record_answer(request, answer) -> None:
    """Called by a route with the answer it returns (``request``: Starlette's, or its ASGI scope)."""
    scope = request if isinstance(request, dict) else request.scope
    record = scope.get(RECORD)
    if record is not None:
        got = _record_of(answer)
        record.outcome, record.codes, record.question = got.outcome, got.codes, got.question


def record_error(request) -> None:
    """A route whose answer failed after its response started (a stream that broke)."""
    scope = request if isinstance(request, dict) else request.scope
    if scope.get(RECORD) is not None:
        scope[RECORD].outcome = "error"


def route_of(scope, routes=()) -> str:
    """The template of the route that took the request (bounded), never the raw path. ``routes``:
    the app's, for the mounted apps FastAPI does not name in the scope (/docs/static/{path})."""
    from starlette.routing import Match, Mount

    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is not None:
        return path + "/{path}" if isinstance(route, Mount) else path or "/"
    if scope.get("path") in FIXED_ROUTES:  # refused before routing (a 413 from BodyLimit)
        return scope["path"]
    asked = {"type": "http", "path": scope["path"], "root_path": ""}  # as it came (a mount changes root_path)
    for r in routes:  # a mount under its own prefix (the catch-all chat at / says nothing: its 404s are unmatched)
        if isinstance(r, Mount) and r.path and r.matches(asked)[0] is Match.FULL:
            return r.path + "/{path}"
    return "unmatched"


def channel_of(route: str) -> str | None:
    if route in ASK_ROUTES:
        return ASK_ROUTES[route]
    if route.startswith(("/gradio_api/", "/{path}")) or route in ("/", "/config", "/queue/join", "/queue/data"):
        return "chat"
    return None


# --- The metric families --------------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The families, on a registry of their own (several apps in one process do not clash)."""

    def __init__(self, services=None, feedback_log=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: they double the page and no dashboard reads them
        self.services, self.feedback_log = services, feedback_log
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("bouncebot_http_requests", "HTTP requests by route template and status",
                                ("method", "route", "status"), registry=r)
        self.latency = Histogram("bouncebot_http_request_duration_seconds", "HTTP request latency (whole response)",
                                 ("method", "route", "status"), buckets=BUCKETS, registry=r)
        self.in_progress = Gauge("bouncebot_http_requests_in_progress", "HTTP requests being answered now",
                                 registry=r, multiprocess_mode="livesum")
        self.answers = Counter("bouncebot_answers", "Answers by channel and outcome", ("channel", "outcome"),
                               registry=r)
        self.feedback = Counter("bouncebot_feedback", "Thumbs up/down saved by this server", ("rating",), registry=r)
        for channel in CHANNELS:  # every series from the start: a rate() over a missing series is no figure
            for outcome in OUTCOMES:
                self.answers.labels(channel, outcome)
        for rating in ("up", "down"):
            self.feedback.labels(rating)

    def answered(self, channel: str, outcome: str) -> None:
        self.answers.labels(channel, outcome).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """The whole server's figures: every worker's (multiprocess mode) or this process's."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if multiprocess():
            sweep_dead_workers()
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry) + generate_latest(_Stores(self.services, self.feedback_log))


class _Stores:
    """Gauges read at scrape time from the shared stores (the index, the feedback database)."""

    def __init__(self, services, feedback_log):
        self.services, self.feedback_log = services, feedback_log

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        retriever = self.services.answerer.retriever_if_open() if self.services is not None else None
        if retriever is not None:
            yield GaugeMetricFamily("bouncebot_index_documents", "Documents in the live index", value=len(retriever))
            created = ((getattr(retriever.collection, "metadata", None) or {}).get("created"))
            if created is not None:
                yield GaugeMetricFamily("bouncebot_index_age_seconds", "Seconds since the live index version "
                                        "was built", value=max(0.0, time.time() - float(created)))
        if self.feedback_log is not None:
            with contextlib.suppress(Exception):  # a database that cannot be read: no figure, not a failed scrape
                yield GaugeMetricFamily("bouncebot_feedback_stored", "Feedback rows stored",
                                        value=self.feedback_log.count())


# --- Multiprocess mode -------------------------------------------------------------


@contextlib.contextmanager
def multiprocess_dir(workers: int):
    """For ``serve --workers N`` (N > 1): a fresh PROMETHEUS_MULTIPROC_DIR for the workers (set in the
    environment they inherit; removed afterwards). One set by the operator is used as it is, and kept."""
    if workers <= 1 or os.environ.get(MULTIPROC_ENV):
        yield os.environ.get(MULTIPROC_ENV)
        return
    path = tempfile.mkdtemp(prefix="bouncebot-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_workers() -> None:
    """Mark the workers whose live gauges are on disk but who are gone (a crash skips ``atexit``)."""
    from prometheus_client import multiprocess as mp

    path = os.environ.get(MULTIPROC_ENV)
    if not path or not os.path.isdir(path):
        return
    pids = set()
    for name in os.listdir(path):
        if name.startswith("gauge_live") and name.endswith(".db"):
            with contextlib.suppress(ValueError):
                pids.add(int(name.rsplit("_", 1)[1][:-3]))
    for pid in pids:
        if pid != os.getpid() and not _alive(pid):
            mp.mark_process_dead(pid, path)


def _mark_this_process_dead() -> None:
    from prometheus_client import multiprocess as mp

    if multiprocess():
        with contextlib.suppress(Exception):
            mp.mark_process_dead(os.getpid())


# --- The middleware and the route -------------------------------------------------


class Observe:
    """Pure ASGI middleware: times each HTTP request, counts it by route template and status, counts
    the answer a route recorded, and writes its log line."""

    def __init__(self, app, metrics: Metrics, log: RequestLog, routes=()):
        self.app, self.metrics, self.log, self.routes = app, metrics, log, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = scope[RECORD] = Record()
        status = 500  # an app that raised before any response: the server's error page says 500
        started = time.perf_counter()

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_progress.dec()
            if not record.passed_on:
                self.finished(scope, record, status, time.perf_counter() - started)

    def finished(self, scope, record: Record, status: int, seconds: float) -> None:
        route = route_of(scope, self.routes)
        channel = channel_of(route)
        if route in ASK_ROUTES and record.outcome is None and status >= 500:
            record.outcome = "error"
        if route in ASK_ROUTES and record.outcome is not None:
            self.metrics.answered(channel, record.outcome)
        self.metrics.observe(scope["method"], route, status, seconds)
        self.log.write(Entry(method=scope["method"], route=route, status=status, duration_ms=round(seconds * 1000, 2),
                             channel=channel, outcome=record.outcome, codes=record.codes, question=record.question))


class Observer:
    """What ``create_app`` installs (``install``) and hands to the chat (``chat_answer``) and
    the feedback log (``counting``)."""

    def __init__(self, settings, services=None, feedback_log=None):
        self.settings = settings
        self.metrics = Metrics(services, feedback_log)
        self.log = RequestLog.from_settings(settings)
        if multiprocess():
            atexit.register(_mark_this_process_dead)

    def install(self, app) -> None:
        """The middleware (outermost: it sees every response, the 413s and 404s too) and ``/metrics``."""
        from starlette.responses import Response

        if self.settings.metrics:
            from prometheus_client import CONTENT_TYPE_LATEST

            async def metrics():
                return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST,
                                headers={"Cache-Control": "no-store"})

            app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False, response_class=Response)
        app.add_middleware(Observe, metrics=self.metrics, log=self.log, routes=app.router.routes)  # the live list

    def chat_answer(self, answer) -> None:
        """A chat answer (``None``: it failed): counted and logged as channel ``chat``."""
        record = _record_of(answer) if answer is not None else Record("error")
        self.metrics.answered("chat", record.outcome)
        self.log.write(Entry(event="answer", channel="chat", outcome=record.outcome, codes=record.codes,
                             question=record.question))

    @staticmethod
    def passed_on(app):
        """``app`` (an ASGI app passing requests to another process) marked so: not counted twice."""

        async def marked(scope, receive, send):
            if scope.get(RECORD) is not None:
                scope[RECORD].passed_on = True
            await app(scope, receive, send)

        return marked

    def counting(self, feedback_log):
        """``feedback_log`` whose ``add`` also counts each saved rating."""
        return _CountingFeedbackLog(feedback_log, self.metrics.feedback)


class _CountingFeedbackLog:
    def __init__(self, inner, counter):
        self._inner, self._counter = inner, counter

    def add(self, rating, *args, **kwargs):
        saved = self._inner.add(rating, *args, **kwargs)  # raises when it is not saved: nothing counted
        self._counter.labels(rating).inc()
        return saved

    def __getattr__(self, name):
        return getattr(self._inner, name)
