"""Hostile and broken requests against the whole server on loopback:
security headers on every page, bodies refused before they are read, text
that is not text, other sites' origins on the chat's routes, uploads, the API
docs without a CDN, and JSON (never text/plain) when something breaks."""

from __future__ import annotations

import json
import re
import socket
import tempfile
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

STRANGER = "http://localhost:9"  # a local origin that is not on the allowlist


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


# ------------------------------------------------------------ headers (finding 6)

@pytest.mark.parametrize("path", ["/", "/docs", "/demo"])
def test_every_html_page_has_a_csp_that_forbids_other_framers_and_hosts(http, path):
    r = http.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in csp and csp.rstrip(";").split("frame-ancestors")[1].split(";")[0].strip() \
        == "'self'"
    assert "default-src 'self'" in csp or "default-src 'none'" in csp
    assert "http:" not in csp.replace("frame-ancestors", "") and "*" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_chat_cannot_be_framed_and_the_widget_panel_keeps_its_own_policy(http):
    assert http.get("/").headers["x-frame-options"] == "SAMEORIGIN"
    panel = http.get("/widget")
    assert "x-frame-options" not in panel.headers  # its frame-ancestors allowlist decides
    assert "default-src 'none'" in panel.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz", "/widget.js", "/docs/static/swagger-ui.css"])
def test_nosniff_on_everything(http, path):
    r = http.get(path)
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"


# --------------------------------------------------------------- docs (finding 12)

def test_api_docs_load_nothing_from_another_host(http):
    page = http.get("/docs").text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", page)
    urls = [a or b for a, b in urls]
    assert urls and all(u.startswith("/") for u in urls), urls
    for u in urls:
        assert http.get(u).status_code == 200, u


# -------------------------------------------------------- body size (finding 12)

def raw_request(server_url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 4 + 10:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.mark.parametrize("path", ["/api/ask", "/widget/api/ask", "/api/feedback", "/gradio_api/queue/join"])
def test_a_huge_declared_body_is_refused_before_it_is_read(server, path):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n").encode()
    status, data = raw_request(server.url, head, b'{"question": "')  # 200 MB announced, 14 bytes sent
    assert status == 413
    assert b'"error"' in data and b"application/json" in data.lower()


def test_a_chunked_body_over_the_limit_is_cut_off(http, services):
    limit = services.settings.max_body_bytes

    def chunks():
        yield b'{"question": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = http.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert http.post("/api/ask", json={"question": "5.1.1"}).status_code == 200  # still answering


# ------------------------------------------------------- surrogates (finding 10)

@pytest.mark.parametrize("path", ["/api/ask", "/widget/api/ask"])
@pytest.mark.parametrize("text", ["\\ud800", "550 5.1.1 \\udfff", "\\ud83d"])
def test_lone_surrogates_get_422_not_500(http, path, text):
    r = http.post(path, content=f'{{"question": "{text}"}}'.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "surrogate" in r.json()["error"]
    assert http.get("/api/lookup", params={"q": "550 5.1.1"}).status_code == 200


@pytest.mark.parametrize("field", ["question", "answer", "comment"])
def test_lone_surrogates_in_feedback_get_422(http, field):
    body = {"rating": "down", "question": "550 5.1.1", "answer": "a", "comment": "c"}
    raw = json.dumps(body).replace(f'"{body[field]}"', '"x \\ud800"', 1)
    r = http.post("/api/feedback", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "surrogate" in r.json()["error"] or "not text" in r.json()["error"]


def test_a_valid_surrogate_pair_is_fine(http):
    r = http.post("/api/ask", content='{"question": "550 5.1.1 \\ud83d\\ude00"}'.encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["codes"][0]["code"] == "550-5.1.1"


# -------------------------------------------------- the chat's CORS (finding 12)

@pytest.mark.parametrize("origin", [STRANGER, "http://127.0.0.1:1", "https://evil.example"])
def test_the_chats_routes_do_not_echo_other_origins(http, origin):
    r = http.get("/gradio_api/info", headers={"Origin": origin})
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    pre = http.options("/gradio_api/queue/join", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert pre.headers.get("access-control-allow-origin") != origin
    assert "access-control-allow-credentials" not in pre.headers


# ------------------------------------------------------------ uploads (finding 11)

def test_the_chat_takes_no_uploads(http):
    before = set(Path(tempfile.gettempdir(), "gradio").rglob("*")) if Path(tempfile.gettempdir(), "gradio").exists() \
        else set()
    r = http.post("/gradio_api/upload", files={"files": ("big.bin", b"\0" * (1024 * 1024))})
    assert r.status_code == 404 and "no file uploads" in r.json()["error"]
    after = set(Path(tempfile.gettempdir(), "gradio").rglob("*")) if Path(tempfile.gettempdir(), "gradio").exists() \
        else set()
    assert not [p for p in after - before if p.name == "big.bin"]


# -------------------------------------------------------- JSON errors (finding 7)

def test_an_unexpected_error_is_json_not_text(services, feedback_log, monkeypatch):
    from app.web.server import create_app
    from app.answering.services import build

    from ..servers import LiveServer

    fresh = build(services.settings, embedder=services.embedder)

    def broken(question):
        raise RuntimeError("boom")

    monkeypatch.setattr(fresh.answerer, "ask", broken)
    with LiveServer(create_app(fresh, feedback_log)) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        r = c.post("/api/ask", json={"question": "anything"})
        assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
        assert "went wrong" in r.json()["error"] and "boom" not in r.text  # no internals leak


def test_a_broken_index_at_query_time_is_a_503_json(services, feedback_log):
    from app.web.server import create_app
    from app.answering.services import build

    from ..servers import LiveServer

    fresh = build(services.settings, embedder=services.embedder)

    class Corrupt:
        def query(self, **kw):
            raise RuntimeError("database disk image is malformed")

        def count(self):
            raise RuntimeError("database disk image is malformed")

    fresh.answerer.retriever.collection = Corrupt()
    with LiveServer(create_app(fresh, feedback_log)) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        r = c.post("/api/ask", json={"question": "How do I get an address off the bounce list?"})
        assert r.status_code == 503 and "malformed" in r.json()["error"]
        assert c.post("/api/ask", json={"question": "550 5.1.1"}).status_code == 200
        deadline = time.monotonic() + 30
        while c.get("/healthz").json()["status"] != "degraded":
            assert time.monotonic() < deadline
            time.sleep(0.1)
