"""Replicas: ``bouncebot serve --workers N`` (``BOUNCEBOT_WORKERS``).

N uvicorn worker processes share the listening socket; each imports
``app.web.workers:app`` (an app factory: settings from the environment) and
builds its own Services once. They must share one index, so more than one
worker needs a Chroma server (``BOUNCEBOT_CHROMA_URL``): the embedded store's
files are not safe to open from several processes, and ``check`` refuses it.

The JSON API and the widget are stateless: any worker answers any request.
The Gradio chat is not: a session's ``queue/join`` and its event stream
(``queue/data``) must reach the same process, and ``gr.State`` lives in one
process's memory, while the kernel hands each connection to whichever worker
accepts first (uvicorn has no sticky routing). So with N > 1 the chat runs in
one process of its own (``serve_chat``, on a loopback port only the workers
know, ``BOUNCEBOT_CHAT_UPSTREAM``), and every worker passes the chat's
requests through to it (``ChatProxy``, streaming both ways). Agents still open
``/`` on the public port; the chat's capacity is one process's
(``BOUNCEBOT_CHAT_CONCURRENCY`` at a time), the API's and the widget's is N.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

from app.config import Settings
from app.errors import WorkersNeedChromaServer

CHAT_UPSTREAM = "BOUNCEBOT_CHAT_UPSTREAM"  # set by `run` for its workers: where the chat process listens
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
              b"proxy-authorization", b"proxy-authenticate", b"content-length"}
CHAT_START_WAIT = 180.0  # seconds a worker waits for the chat process that starts beside it (model, index)
UPSTREAM_ONLY = {b"date", b"server"}  # the worker's own uvicorn sends these


def check(settings: Settings) -> None:
    """Refuse several workers on the embedded store (exit 2, saying to run a Chroma server)."""
    if settings.workers > 1 and not settings.chroma_url:
        raise WorkersNeedChromaServer(settings.workers)


def make_app(settings: Settings, chat_upstream: str | None = None):
    """One process's app: its feedback log, its Services (warmed, following re-indexes), its doors."""
    from app.answering.services import build
    from app.storage import Storage
    from app.web.server import create_app

    storage = Storage.open(settings)  # feedback (SQLite, or PostgreSQL shared by replicas); fails at once when unwritable
    feedback_log = storage.feedback
    services = build(settings, live=True).warm()  # fails fast (with the fix) when the index is missing or stale
    if services.watch is not None:
        services.watch.start()
    chat = ChatProxy(chat_upstream) if chat_upstream else None
    app = create_app(services, feedback_log, chat=chat, rate_counter=storage.rate_counter,
                     conversations=storage.conversations)  # the conversation log (issue 15), or None
    freeze_start_up()
    return app


def freeze_start_up() -> None:
    """Put what start-up made out of the garbage collector's reach (``gc.freeze``): at 10,000 articles
    the KB, the code table, the follow-up lookup and the index's arrays are ~450,000 objects, and each
    full collection walked them all, 130-490 ms in the middle of an answer, several times a run. They
    are still freed by reference counting when a re-index drops them (a dropped version leaves ~350
    objects in cycles, kept by the freeze)."""
    import gc

    gc.collect()  # start-up's own garbage goes first, not into the frozen set
    gc.freeze()


def app():
    """The uvicorn app factory each worker calls (``app.web.workers:app``, ``factory=True``)."""
    return make_app(Settings.from_env(), chat_upstream=os.environ.get(CHAT_UPSTREAM) or None)


def preflight(settings: Settings) -> None:
    """Before any process starts: the index is reachable and matches the KB (exit 3 or 5 with the fix)."""
    from app.search.chroma import make_client, open_collection
    from app.search.embeddings import Embedder
    from ingest.indexer import kb_fingerprint

    name = Embedder.from_settings(settings).name  # the model is not loaded
    open_collection(make_client(settings), settings, kb_fingerprint(settings, name))


def run(settings: Settings) -> None:
    """The chat process, then N uvicorn workers on ``settings.host:port``; the chat process ends with them."""
    import uvicorn

    preflight(settings)  # a missing or stale index: refused before any process starts
    port = _free_port()
    env = {**os.environ, "BOUNCEBOT_WORKERS": "1"}
    chat = subprocess.Popen([sys.executable, "-m", "app.web.workers", "chat", str(port)], env=env)
    threading.Thread(target=_report_exit, args=(chat,), daemon=True).start()
    try:  # the workers start beside it (each loads the model too); they wait for it (ChatProxy)
        upstream = f"http://127.0.0.1:{port}"
        os.environ.update({CHAT_UPSTREAM: upstream, "BOUNCEBOT_HOST": settings.host,
                           "BOUNCEBOT_PORT": str(settings.port), "BOUNCEBOT_WORKERS": str(settings.workers)})
        print(f"Bouncebot is answering on http://{settings.host}:{settings.port}/ with {settings.workers} workers "
              f"on the Chroma server at {settings.chroma_url} (the chat: one process of its own)", file=sys.stderr)
        uvicorn.run("app.web.workers:app", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level="warning")
    finally:
        chat.terminate()
        try:
            chat.wait(timeout=20)
        except subprocess.TimeoutExpired:
            chat.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _report_exit(chat: subprocess.Popen) -> None:
    code = chat.wait()
    if code not in (0, -15, -2):  # not the terminate() at the end
        print(f"bouncebot: the chat process exited ({code}); its message is above. The JSON API and the widget "
              "still answer; restart `bouncebot serve` to bring the chat back.", file=sys.stderr)


def serve_chat(port: int) -> None:
    """The chat's own process (``python -m app.web.workers chat PORT``): the whole app, one process, loopback."""
    import uvicorn

    settings = Settings.from_env().with_(workers=1, host="127.0.0.1", port=port)
    uvicorn.run(make_app(settings), host="127.0.0.1", port=port, log_level="warning")


class ChatProxy:
    """An ASGI app passing each request through to the chat process, the response streamed back as it comes
    (the chat's event stream included); the client's Host header goes along, so Gradio builds the public URLs."""

    def __init__(self, upstream: str, start_wait: float = CHAT_START_WAIT):
        self.upstream = upstream.rstrip("/")
        self._client = None
        self._up = False  # the chat process has answered once: from then on, down is a 502 at once
        self._wait_until = time.monotonic() + start_wait  # until then it may still be starting: wait for it

    async def _send(self, request):
        import httpx

        while True:
            try:
                response = await self.client().send(request, stream=True)
                self._up = True
                return response
            except httpx.ConnectError:
                if self._up or time.monotonic() > self._wait_until:
                    raise
                await asyncio.sleep(0.25)

    def client(self):
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(  # idle connections dropped before the chat's uvicorn drops them (5 s)
                base_url=self.upstream, timeout=httpx.Timeout(None, connect=10.0),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20, keepalive_expiry=2.0))
        return self._client

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":  # the chat uses no websockets
            await send({"type": "websocket.close", "code": 1003})
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope.get("root_path", "") + scope["path"]
        query = scope.get("query_string", b"")
        url = path + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        try:
            response = await self._send(self.client().build_request(scope["method"], url, headers=headers,
                                                                    content=body))
        except Exception:  # noqa: BLE001 - the chat process is down or restarting
            import json

            payload = json.dumps({"error": "The chat is not answering right now; try again in a moment. "
                                           "The JSON API (/api/ask) and the widget still answer."}).encode()
            await send({"type": "http.response.start", "status": 502,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})
            return
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in HOP_BY_HOP | UPSTREAM_ONLY]})
            await _relay(response, receive, send)
        finally:
            await response.aclose()


async def _relay(response, receive, send) -> None:
    """The upstream body to the client until it ends or the client goes away (then the upstream is closed,
    so the chat process sees the disconnect too)."""

    async def pump():
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def gone():
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(gone())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    for t in done:
        t.result()


if __name__ == "__main__":
    if sys.argv[1:2] == ["chat"] and len(sys.argv) == 3:
        serve_chat(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m app.web.workers chat PORT")
