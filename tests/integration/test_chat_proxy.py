"""``ChatProxy`` (how N workers reach the one chat process) between two real servers on
loopback: a stream is passed on as it comes (the chat's event stream waits on it), the
client's Host goes along (Gradio builds its URLs from it), a body and a query reach the
upstream intact, and a chat process that is down is a 502 in the JSON error shape."""

from __future__ import annotations

import threading

import httpx
import pytest

from ..servers import LiveServer, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    release = threading.Event()

    async def echo(request: Request):
        return JSONResponse({"host": request.headers.get("host"), "path": request.url.path,
                             "query": request.url.query, "body": (await request.body()).decode(),
                             "method": request.method})

    def events(request: Request):
        def gen():
            yield b"data: first\n\n"
            release.wait(timeout=30)  # the second event only once the client has seen the first
            yield b"data: second\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/echo/{rest:path}", echo, methods=["GET", "POST"]), Route("/events", events)])
    with LiveServer(app) as server:
        yield server, release


@pytest.fixture(scope="module")
def proxied(upstream):
    from app.web.workers import ChatProxy

    server, release = upstream
    with LiveServer(ChatProxy(server.url)) as proxy:
        yield proxy, release


@pytest.mark.parametrize("method, path, query, body", [
    ("GET", "/echo/config", "", ""),
    ("GET", "/echo/gradio_api/queue/data", "session_hash=abc123", ""),
    ("POST", "/echo/gradio_api/queue/join", "", '{"data": ["What does 550-5.1.1 mean?"], "fn_index": 1}'),
    ("POST", "/echo/a%20b/c", "x=1&y=%C3%A9", "é" * 1000),
])
def test_requests_reach_the_upstream_as_sent_with_the_public_host(proxied, method, path, query, body):
    proxy, _ = proxied
    url = f"{proxy.url}{path}" + (f"?{query}" if query else "")
    r = httpx.request(method, url, content=body.encode(), headers={"host": "help.example.com:8443"})
    assert r.status_code == 200
    got = r.json()
    assert got["host"] == "help.example.com:8443" and got["method"] == method and got["body"] == body
    assert got["query"] == query
    assert r.headers.get_list("date") and len(r.headers.get_list("date")) == 1  # one Date, the worker's


def test_a_stream_is_passed_on_as_it_comes(proxied):
    proxy, release = proxied
    with httpx.stream("GET", f"{proxy.url}/events", timeout=30) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        assert first == b"data: first\n\n"  # arrived while the upstream still holds the second
        release.set()
        assert b"".join(chunks) == b"data: second\n\n"


def test_a_chat_process_that_is_down_is_a_502_in_the_json_error_shape():
    from app.web.workers import ChatProxy

    with LiveServer(ChatProxy(f"http://127.0.0.1:{free_port()}", start_wait=0)) as proxy:
        r = httpx.post(f"{proxy.url}/gradio_api/queue/join", json={})
    assert r.status_code == 502
    assert "/api/ask" in r.json()["error"]


def test_a_chat_process_still_starting_is_waited_for_and_once_it_was_up_down_is_a_502_at_once(upstream):
    """The workers start beside the chat process: a page opened meanwhile waits for it, not a 502."""
    from app.web.workers import ChatProxy

    app = upstream[0]._server.config.app
    port = free_port()
    late = LiveServer(app, port=port)
    starter = threading.Timer(1.5, late.__enter__)
    with LiveServer(ChatProxy(f"http://127.0.0.1:{port}", start_wait=60)) as proxy:
        starter.start()
        try:
            r = httpx.get(f"{proxy.url}/echo/config", timeout=60)
            assert r.status_code == 200 and r.json()["path"] == "/echo/config"
        finally:
            starter.join()
            late.__exit__(None, None, None)
        down = httpx.get(f"{proxy.url}/echo/config", timeout=60)
        assert down.status_code == 502 and "error" in down.json()
