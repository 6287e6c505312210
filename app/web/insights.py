"""``/insights``: the help-centre team's page over the conversation log (issue 15).

``install(app, settings, conversations, embed)`` adds its routes (``create_app`` calls it once):

- off (404, saying which setting turns it on) unless ``BOUNCEBOT_INSIGHTS_TOKEN`` is set;
- ``GET /insights[?since=7d|30d|90d|2026-11-01..2026-11-30]``: the login form, or once logged in the
  page (tiles, three charts, the tables of ``app.insights.TABLES``), rendered from one
  ``app.insights.compute`` (``app.web.insights_page``, charts by ``app.web.insights_charts``);
- ``POST /insights/login`` (form field ``token``): the token is compared in constant time; right, a
  session cookie and a redirect; wrong, 401 without saying what was wrong; after ``MAX_FAILURES``
  wrong tries in ``WINDOW`` seconds from one client, 429 until the minute is over;
- ``POST /insights/logout``; ``GET /insights/export/<table>.csv``; ``GET /insights/eval-case/<ids>.jsonl``
  (one ``bouncebot feedback export`` line per logged message).

Security: the token only ever travels in a POST body, never in a URL. The session cookie is
``<issued>.<nonce>.<signature>``, signed with HMAC-SHA256 under a key derived from the token (a changed
token logs everyone out), for ``SESSION_SECONDS``; HttpOnly, SameSite=Strict, Path=/insights, Secure
over https. The POSTs also need an Origin (or Referer) naming this host: with SameSite=Strict that
makes them CSRF-safe. Every response is ``Cache-Control: no-store``, and the pages carry a policy
with no script at all (``script-src 'none'``) and no inline style.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fastapi import Request  # at module level: the routes' annotations are resolved from here

from app.errors import BadPeriod, BouncebotError
from app.insights import TABLES, CachedEmbed, Period, compute, eval_case
from app.web.insights_charts import charts
from app.web.insights_page import case_line, dashboard, login_page, message_page, shown
from app.web.widget import client_key

log = logging.getLogger("bouncebot.insights")
COOKIE = "bouncebot_insights"
SESSION_SECONDS = 8 * 3600
MAX_FAILURES, WINDOW = 5, 60.0  # wrong tokens per client per minute, then 429
MAX_CLIENTS = 10_000  # clients whose failures are remembered (the oldest forgotten first)
MAX_CASES = 100  # eval cases in one download
DEFAULT_PERIOD = "30d"
CSS = Path(__file__).resolve().parent / "static" / "insights.css"
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with the login form's POST
COMMON = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
OFF = "The insights page is off: set BOUNCEBOT_INSIGHTS_TOKEN on the server (a long random value) to turn it on."
LOGIN_FIRST = "Log in at /insights first: this needs the insights session (the cookie the login sets)."
WRONG = ("That token was not accepted. Check the value of BOUNCEBOT_INSIGHTS_TOKEN and try again "
         f"(after {MAX_FAILURES} wrong tries in a minute, wait a minute).")
THROTTLED = f"Too many wrong tokens from here: {MAX_FAILURES} in a minute. Wait a minute, then try again."
NO_ORIGIN = ("This login came without an Origin or Referer naming this server, so it was refused "
             "(a guard against cross-site requests). Log in from the form at /insights.")


class Sessions:
    """Signs and checks the session cookie; the key is derived from the token."""

    def __init__(self, token: str, seconds: int = SESSION_SECONDS):
        self._key = hmac.new(token.encode(), b"bouncebot insights session v1", hashlib.sha256).digest()
        self._token_digest = hashlib.sha256(token.encode()).digest()
        self.seconds = seconds

    def token_matches(self, given: str) -> bool:
        # digests of equal length, compared in constant time: neither the length nor a prefix leaks
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._token_digest)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        payload = f"{int(time.time() if now is None else now)}.{secrets.token_hex(12)}"
        return f"{payload}.{self._sign(payload)}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        issued, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(self._sign(f"{issued}.{nonce}"), signature):
            return False
        try:
            age = (time.time() if now is None else now) - int(issued)
        except ValueError:
            return False
        return 0 <= age < self.seconds


class LoginThrottle:
    """Wrong tokens per client in a sliding window (in memory, per process)."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW, clients: int = MAX_CLIENTS):
        self.limit, self.window, self.clients = limit, window, clients
        self._failures: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str, now: float | None = None) -> int:
        """0 when ``client`` may try; else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            return 0 if len(times) < self.limit else max(1, int(times[0] + self.window - now + 0.999))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.clients:
                self._failures.popitem(last=False)

    def forget(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def _same_origin(request) -> bool:
    """The POST names this host in its Origin (or, without one, its Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if not source or source == "null":
        return False
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(source).netloc.lower() == host.lower()


class _NoLog:
    """What the page reads when the conversation log is off: no entries."""

    def entries(self, since: float, until: float | None = None) -> list:
        return []


def _period(text: str | None) -> Period:
    return Period.parse(text or DEFAULT_PERIOD)


def install(app, settings, conversations, embed=None) -> None:
    """Add ``/insights`` to ``app``. ``conversations``: ``Storage.conversations`` (None: the log is off);
    ``embed``: texts -> vectors (or the MiniLM ``Embedder``, whose ``embed_documents`` is taken) for grouping
    refused questions by meaning; None groups them by shared words."""
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

    def json_error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers={**COMMON, **(headers or {})})

    token = getattr(settings, "insights_token", None)
    if not token:
        @app.api_route("/insights", methods=["GET", "POST"], include_in_schema=False)
        @app.api_route("/insights/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
        def insights_off(rest: str = ""):
            return json_error(404, OFF)
        return

    embed = getattr(embed, "embed_documents", embed)  # the Embedder itself, or its function
    sessions, throttle = Sessions(token), LoginThrottle()
    grouping = CachedEmbed(embed) if embed is not None else None
    css = CSS.read_text(encoding="utf-8")
    app.state.insights_throttle = throttle

    def html(body: str, status: int = 200, headers: dict | None = None):
        return HTMLResponse(body, status_code=status,
                            headers={**COMMON, "Content-Security-Policy": PAGE_CSP, **(headers or {})})

    def logged_in(request) -> bool:
        return sessions.valid(request.cookies.get(COOKIE))

    def insights_of(period: Period):
        if conversations is None:
            return compute(_NoLog(), period)  # the same shape, every figure 0
        try:
            return compute(conversations, period, grouping)
        except BouncebotError:  # the log itself cannot be read: the page says so (503)
            raise
        except Exception:  # the model failing must not take the page down: group by shared words instead
            if grouping is None:
                raise
            log.warning("insights: grouping by meaning failed; grouped by shared words instead", exc_info=True)
            return compute(conversations, period, None)

    def cases_for(ins) -> dict[int, str]:
        """The eval case line of each row the page offers as one (a refused group's newest, each thumbs-down)."""
        if conversations is None:
            return {}
        ids = [g["ids"][0] for g in shown(ins.refused_groups) if g["ids"]] + [r["id"] for r in shown(ins.thumbs_down)]
        out = {}
        for i in ids:
            entry = conversations.get(i)
            if entry is not None:
                out[i] = case_line(eval_case(entry))
        return out

    @app.get("/insights/static/insights.css", include_in_schema=False)
    def insights_css():
        return Response(css, media_type="text/css", headers={"Cache-Control": "no-cache"})

    @app.get("/insights", include_in_schema=False)
    def insights_page(request: Request, since: str | None = None):
        try:
            period = _period(since)
        except BadPeriod as e:
            return html(message_page("Bouncebot insights: that period cannot be read", str(e)), 400)
        if not logged_in(request):
            return html(login_page(period.text))
        try:
            ins = insights_of(period)
            cases = cases_for(ins)
        except BouncebotError as e:
            return html(message_page("Bouncebot insights: the log cannot be read", str(e), back=None), e.http_status)
        return html(dashboard(ins, charts(ins), cases, log_on=conversations is not None))

    @app.get("/insights/login", include_in_schema=False)
    def insights_login_form():
        return RedirectResponse("/insights", status_code=303, headers=COMMON)

    @app.post("/insights/login", include_in_schema=False)
    async def insights_login(request: Request):
        if not _same_origin(request):
            return html(message_page("Bouncebot insights: login refused", NO_ORIGIN), 403)
        client = client_key(request)
        wait = throttle.retry_after(client)
        if wait:
            return html(message_page("Bouncebot insights: too many tries", THROTTLED), 429, {"Retry-After": str(wait)})
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        given = (form.get("token") or [""])[0]
        try:
            since = _period((form.get("since") or [""])[0]).text
        except BadPeriod:
            since = DEFAULT_PERIOD
        if not sessions.token_matches(given):
            throttle.failed(client)
            return html(login_page(since, WRONG), 401)
        throttle.forget(client)
        response = RedirectResponse(f"/insights?since={since}", status_code=303, headers=COMMON)
        response.set_cookie(COOKIE, sessions.issue(), max_age=sessions.seconds, path="/insights", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @app.post("/insights/logout", include_in_schema=False)
    def insights_logout(request: Request):
        if not _same_origin(request):
            return html(message_page("Bouncebot insights: logout refused", NO_ORIGIN), 403)
        response = RedirectResponse("/insights", status_code=303, headers=COMMON)
        response.delete_cookie(COOKIE, path="/insights", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @app.get("/insights/export/{name}", include_in_schema=False)
    def insights_export(request: Request, name: str, since: str | None = None):
        if not logged_in(request):
            return json_error(401, LOGIN_FIRST)
        table = name[:-4] if name.endswith(".csv") else name
        if table not in TABLES:
            return json_error(404, f"No insights table {table!r}: choose one of "
                                   f"{', '.join(t + '.csv' for t in TABLES)}.")
        try:
            period = _period(since)
        except BadPeriod as e:
            return json_error(400, str(e))
        try:
            body = insights_of(period).csv(table)
        except BouncebotError as e:
            return json_error(e.http_status, str(e))
        filename = f"bouncebot-insights-{table}-{period.text.replace('..', '_to_')}.csv"
        return Response("\ufeff" + body, media_type="text/csv; charset=utf-8", headers={
            **COMMON, "Content-Disposition": f'attachment; filename="{filename}"'})

    @app.get("/insights/eval-case/{name}", include_in_schema=False)
    def insights_eval_case(request: Request, name: str):
        if not logged_in(request):
            return json_error(401, LOGIN_FIRST)
        raw = name[:-6] if name.endswith(".jsonl") else name
        try:
            ids = [int(i) for i in raw.split(",") if i.strip()]
        except ValueError:
            ids = []
        if not ids or len(ids) > MAX_CASES:
            return json_error(400, f"Name 1 to {MAX_CASES} logged messages by id, e.g. /insights/eval-case/42.jsonl "
                                   "or /insights/eval-case/42,43.jsonl.")
        if conversations is None:
            return json_error(404, "The conversation log is off (BOUNCEBOT_CONVERSATION_LOG=off): no message to "
                                   "make an eval case of.")
        lines = []
        for i in ids:
            entry = conversations.get(i)
            if entry is None:
                return json_error(404, f"No logged message {i}: it may have expired "
                                       "(BOUNCEBOT_LOG_RETENTION_DAYS). Reload /insights and pick another.")
            lines.append(case_line(eval_case(entry)))
        filename = f"bouncebot-eval-case-log-{ids[0]:05d}{'-and-more' if len(ids) > 1 else ''}.jsonl"
        return Response("\n".join(lines) + "\n", media_type="application/x-ndjson; charset=utf-8", headers={
            **COMMON, "Content-Disposition": f'attachment; filename="{filename}"'})
