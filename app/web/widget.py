"""The help-centre widget: one script tag on any page adds a launcher that
opens a compact chat panel served by this server.

    GET  /widget.js          the loader a host page includes (launcher in a Shadow DOM)
    GET  /widget             the panel (plain HTML/CSS/JS in an iframe), framable only
                             by this server's own pages and BOUNCEBOT_ALLOWED_ORIGINS
    GET  /widget/panel-core.js, panel-answer.js, panel-net.js, panel.js (the panel's scripts, in order),
         /widget/panel.css, /widget/demo.css
    POST /widget/api/ask     the answer contract, like /api/ask, rate-limited per client IP
    POST /widget/api/ask/stream  the same as NDJSON events, like /api/ask/stream (what the panel uses
                             when the server is in the language-model mode, to show tokens as they come)
    GET  /demo               the article as a help-centre page with the widget on it

CORS on the JSON API (/api/, /widget/api/, /healthz) follows the same
allowlist; no cookies are used or needed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.middleware.cors import CORSMiddleware

from app.answering.contract import Answer, AskRequest
from app.config import Settings, parse_rate
from app.web.admission import Admission
from app.web.api import BUSY, LOG_ID_HEADER, STREAM_RESPONSES, admitted, answered_json, ask_stream
from app.errors import RateLimited

log = logging.getLogger("bouncebot.widget")
API_PREFIXES = ("/api/", "/widget/api/", "/healthz")
UNITS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"}
# The panel's scripts (panel.html loads them in this order), its styles, the demo page's styles.
PANEL_SCRIPTS = ("panel-core.js", "panel-answer.js", "panel-net.js", "panel.js")
STATIC_TYPES = {**{name: "text/javascript; charset=utf-8" for name in PANEL_SCRIPTS},
                "panel.css": "text/css; charset=utf-8", "demo.css": "text/css; charset=utf-8"}


def static_text(name: str) -> str:
    return resources.files("app.web").joinpath(f"static/{name}").read_text(encoding="utf-8")


class RateLimiter:
    """A token bucket per client: ``count`` requests, refilled evenly over ``period`` seconds.

    In memory, per process; the least recently seen clients are forgotten
    beyond ``max_clients`` (a forgotten client starts again with a full bucket).
    """

    def __init__(self, count: int, period: float, clock=time.monotonic, max_clients: int = 10_000):
        self.capacity, self.period = count, period
        self.per_second = count / period
        self.clock, self.max_clients = clock, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_setting(cls, rate: str, counter=None, route: str = "", **kw) -> "RateLimiter":
        """The limiter for ``rate``; with a shared ``counter`` (``Storage.rate_counter``: PostgreSQL), a
        ``SharedRateLimiter`` counting ``route``'s requests there, for every replica at once."""
        count, period = parse_rate(rate)
        if counter is not None:
            return SharedRateLimiter(count, period, counter, route, **kw)
        return cls(count, period, **kw)

    def describe(self) -> str:
        unit = UNITS.get(int(self.period), f"{self.period:g} seconds")
        return f"{self.capacity} per {unit}"

    def enforce(self, request: Request, what: str) -> None:
        """Take one token for ``request``'s client, or raise ``RateLimited`` saying how long to wait."""
        wait = self.hit(client_key(request))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(retry, f"Too many {what} from your connection: Bouncebot answers {self.describe()}. "
                                     f"Please wait {retry} second{'s' if retry != 1 else ''} and try again.")

    def hit(self, key: str) -> float:
        """Take one token: 0 when allowed, else the seconds until the next token."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.per_second)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.per_second
            self._buckets[key] = (tokens, now)  # most recently seen last
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


class SharedRateLimiter(RateLimiter):
    """``count`` requests per fixed window of ``period`` seconds per client, counted in the shared
    database by ``counter.hit`` (one atomic upsert), so the limit holds across replicas.

    When the database cannot count, it fails open to this process's own token bucket (the
    in-memory ``RateLimiter``) and asks the database again ``retry_after`` seconds later (meanwhile no
    request waits on it), logging a warning at most once a minute: a database outage must not stop the
    widget from answering (answers do not need the database), and the limit still holds per replica
    meanwhile, so it is never lifted altogether.
    """

    def __init__(self, count: int, period: float, counter, route: str, wall=time.time, retry_after: float = 5.0,
                 **kw):
        super().__init__(count, period, **kw)
        self.counter, self.route, self.wall, self.retry_after = counter, route, wall, retry_after
        self._warned = self._down_until = float("-inf")
        self.fallbacks = 0  # hits counted in memory because the database could not

    def hit(self, key: str) -> float:
        from app.storage.postgres import CounterUnavailable

        if self.clock() >= self._down_until:
            try:
                return self.counter.hit(self.route, key, self.capacity, self.period, self.wall())
            except CounterUnavailable as e:
                now = self.clock()
                self._down_until = now + self.retry_after
                if now - self._warned >= 60:
                    self._warned = now
                    log.warning("rate limit for %s counted in this process only for now: %s",
                                self.route or "requests", e)
        self.fallbacks += 1
        return super().hit(key)


def client_key(request: Request) -> str:
    # uvicorn puts X-Forwarded-For here only for proxies in FORWARDED_ALLOW_IPS (loopback by default)
    return request.client.host if request.client else "unknown"


class ApiCORS:
    """Starlette's CORSMiddleware on the JSON API's paths only; the Gradio app keeps its own rules."""

    def __init__(self, app, origins: tuple[str, ...], prefixes: tuple[str, ...] = API_PREFIXES):
        self.app, self.prefixes = app, prefixes
        self.cors = CORSMiddleware(
            app, allow_origins=list(origins), allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
            allow_credentials=False, expose_headers=["Retry-After", LOG_ID_HEADER], max_age=600,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def frame_ancestors(settings: Settings) -> str:
    return " ".join(["frame-ancestors", "'self'", *settings.allowed_origins])


def panel_csp(settings: Settings) -> str:
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"base-uri 'none'; form-action 'none'; {frame_ancestors(settings)}")


def _script_json(data) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>' or '&' left to close the tag."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# What the panel shows of wording.yaml, under the file's own names: these sentences and labels shared
# with the chat and the CLI (without their Markdown; ``verdict`` and ``message_kinds``: a pasted bounce's
# recipients and what the message is), the shared ``labels:`` block, the conversation's
# ``draft:`` and ``handoff:`` blocks, and the ``widget:`` block.
SHARED_WORDING = ("meaning_label", "action_label", "not_in_table", "general_heading", "general_action_label",
                  "basis_labels", "no_general", "related_line", "passages_intro", "passages_intro_after_codes",
                  "dont_know", "dont_know_many", "other_article", "support_intro", "support_intro_many",
                  "severity_labels", "labels", "verdict",
                  "message_kinds")
# The conversation's shared labels (drafts, hand-offs): sent when the file has them.
SHARED_CONVERSATION_WORDING = ("draft", "handoff")
LLM_WORDING = ("fallback", "fallback_reasons")  # of the ``llm:`` block: the fallback mark, not the prompts
LOADER_MARK = "/*{{LABELS}}*/{}"  # in widget.js: replaced by the loader's labels when served


def _wording() -> dict:
    from app._data import data_file

    return data_file("app.answering", "wording.yaml")


def widget_labels(wording: dict | None = None) -> tuple[dict, dict]:
    """(the panel's labels, the loader's labels), all from wording.yaml: the shared keys as the file
    names them (``labels.in_table``), the panel's own under ``widget``, the loader's ``widget.loader``."""
    from app.answering.render import plain

    def text(value):
        return {k: text(v) for k, v in value.items()} if isinstance(value, dict) else plain(str(value))

    wording = _wording() if wording is None else wording
    own = dict(wording["widget"])
    loader = own.pop("loader")
    shared = {k: text(wording[k]) for k in SHARED_WORDING}
    shared.update({k: text(wording[k]) for k in SHARED_CONVERSATION_WORDING if k in wording})
    if "llm" in wording:
        shared["llm"] = text({k: wording["llm"][k] for k in LLM_WORDING})
    return {**shared, "widget": own}, dict(loader)


def panel_config(services, articles, wording: dict | None = None) -> dict:
    """What the panel is given with its page: the article's title, example questions, every label
    it shows, and whether to ask for the streamed answer. No table rows: answers say what each source
    is (``kind``, ``code``)."""
    from app._data import data_file
    from app.web.chat_stream import streams_tokens

    labels, _ = widget_labels(wording)
    return {
        "article": articles[0].title if articles else "",
        "articles": len(articles) if articles else 1,  # more than one: "I don't know" names the help centre's
        "labels": labels,
        "examples": list(data_file("app.web", "examples.yaml"))[:3],
        "stream": streams_tokens(services.answerer),  # the language-model mode: ask for the stream of tokens
    }


def panel_page(config: dict) -> str:
    """panel.html with its texts (``{{T:name}}``: ``widget.name``, HTML-escaped) and its config (``{{CONFIG}}``)."""
    from html import escape

    own = config["labels"]["widget"]
    return re.sub(r"\{\{(?:T:(\w+)|CONFIG)\}\}",
                  lambda m: escape(own[m.group(1)]) if m.group(1) else _script_json(config),
                  static_text("panel.html"))


def loader_script(wording: dict | None = None) -> str:
    """widget.js with the loader's labels (its default title, button names, error texts) in it."""
    script = static_text("widget.js")
    if LOADER_MARK not in script:
        raise RuntimeError(f"widget.js has lost its {LOADER_MARK!r} mark for its labels")
    return script.replace(LOADER_MARK, _script_json(widget_labels(wording)[1]), 1)


def _markdown():
    from markdown_it import MarkdownIt

    # html=False: any HTML in an article is shown as text; markdown-it refuses javascript:/data: links
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def demo_page(articles, script_src: str) -> str:
    """The first article (the one with an error table, if any) as a help-centre page with the widget on it."""
    from html import escape

    md = _markdown()
    article = next((a for a in articles if a.rows), articles[0] if articles else None)
    body: list[str] = []
    if article is not None:
        body.append(f"<h1>{escape(article.title)}</h1>")
        if article.subtitle:
            body.append(f'<p class="hc-subtitle">{escape(article.subtitle)}</p>')
        for section in article.sections:
            if section.anchor:
                level = min(max(len(section.heading_path), 2), 6)
                body.append(f'<h{level} id="{escape(section.anchor)}">{escape(section.heading)}</h{level}>')
            body.extend(md.render(block.text) for block in section.blocks)
        if article.url:
            body.append(f'<p class="hc-source">Original article: <a href="{escape(article.url)}" '
                        f'rel="noopener noreferrer">{escape(article.url)}</a></p>')
    title = escape(article.title if article else "Help Centre")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Help Centre (demo)</title>
<link rel="stylesheet" href="/widget/demo.css">
</head>
<body>
<header class="hc-top"><a class="hc-brand" href="/demo">Help Centre</a>
<span class="hc-note">Demo page for the Bouncebot widget: the article from <code>kb/</code>.
The chat button in the corner is the widget. <a href="/">Agents' chat</a></span></header>
<main class="hc-article">
<nav class="hc-crumbs" aria-label="Breadcrumb">Help Centre › Inbox › Email</nav>
<article>
{chr(10).join(body)}
</article>
</main>
<script src="{escape(script_src)}" data-title="Email delivery help" data-accent="#0f766e" data-position="right"
 data-greeting="Hi! Ask about an email delivery error, such as 550-5.1.1, or paste the failure message you got." async></script>
</body>
</html>
"""


def widget_routes(services, settings: Settings | None = None, rate_counter=None, recorder=None,
                  admission: Admission | None = None) -> APIRouter:
    """The widget's routes (their 429 is ``RateLimited``, answered by the API's error handlers);
    ``rate_counter`` (``Storage.rate_counter``) shares the rate limit between replicas; ``admission``
    (``app.web.admission``: the API's, in one server) bounds the answers worked on at once."""
    from app.answering.services import load_kb

    settings = settings or services.settings
    limiter = RateLimiter.from_setting(settings.widget_rate, counter=rate_counter, route="widget")
    articles = load_kb(settings)
    answerer = services.answerer
    admission = admission if admission is not None else Admission()
    loader = loader_script()
    panel = panel_page(panel_config(services, articles))
    statics = {name: static_text(name) for name in STATIC_TYPES}
    r = APIRouter()

    def rate_limit(request: Request) -> None:
        limiter.enforce(request, "questions")

    @r.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response:
        return Response(loader, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    @r.get("/widget", include_in_schema=False)
    def widget_panel() -> Response:
        return HTMLResponse(panel, headers={"Content-Security-Policy": panel_csp(settings),
                                            "Cache-Control": "no-cache", **SECURITY_HEADERS})

    @r.get("/widget/{name}", include_in_schema=False)
    def widget_static(name: str) -> Response:
        if name not in statics:
            return JSONResponse({"error": f"No widget file named {name!r}."}, status_code=404)
        return Response(statics[name], media_type=STATIC_TYPES[name],
                        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    @r.post("/widget/api/ask", dependencies=[Depends(rate_limit)],
            responses={429: {"description": "Rate limited: `{\"error\": ...}` with a Retry-After header"}, **BUSY},
            summary="Answer a help-centre visitor's question (the answer contract; rate-limited per client)",
            response_model=Answer)
    async def widget_ask(body: AskRequest, request: Request, response: Response) -> Response:
        # the conversation the panel shows, as /api/ask; logged as the widget's (recorder: the conversation log)
        return await admitted(admission, answerer, body, answered_json, answerer, body, request, response, recorder,
                              "widget")

    @r.post("/widget/api/ask/stream", dependencies=[Depends(rate_limit)], response_class=StreamingResponse,
            responses={**STREAM_RESPONSES, 429: {"description": "Rate limited, as /widget/api/ask"}, **BUSY},
            summary="The same answer as a stream of events (NDJSON: answer_skeleton, token..., final)")
    async def widget_ask_stream(body: AskRequest, request: Request):
        return await admitted(admission, answerer, body, ask_stream, answerer, body, request, recorder, "widget")

    @r.get("/demo", include_in_schema=False)
    def demo(request: Request) -> Response:
        html = demo_page(articles, f"{str(request.base_url).rstrip('/')}/widget.js")
        return HTMLResponse(html, headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                       "base-uri 'none'; frame-ancestors 'self'",
            **SECURITY_HEADERS})

    return r


def install(app, services, settings: Settings | None = None, rate_counter=None, recorder=None,
            admission: Admission | None = None) -> None:
    """Add the widget's routes and the API's CORS to ``app`` (before Gradio is mounted at /)."""
    settings = settings or services.settings
    app.include_router(widget_routes(services, settings, rate_counter, recorder, admission))
    app.add_middleware(ApiCORS, origins=settings.allowed_origins)
