"""POST /api/feedback over HTTP against real servers on loopback: size limits
per field (413), a rate limit per client (429), a cap on the stored size
(507), and writes that cannot reach the disk answered as errors (503/507
JSON), never 201 and never a 500 text/plain; and a server that refuses to
start on a feedback database it cannot write."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ..conftest import ROOT
from ..servers import LiveServer, free_port

pytestmark = pytest.mark.slow

KB = 1024
POST = {"rating": "down", "question": "What does 550 5.1.1 mean?", "answer": "**550-5.1.1** ...",
        "comment": "too short", "answered": True, "codes": [{"code": "550-5.1.1"}],
        "sources": [{"section": "Common delivery errors"}]}


def api_app(services, feedback_log, **settings):
    """The JSON API and the widget (whose 429 handler it shares), as create_app puts them together."""
    from fastapi import FastAPI

    from app.web import widget
    from app.web.api import api_routes, install_error_handlers

    if settings:
        services = dataclasses.replace(services, settings=services.settings.with_(**settings))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(api_routes(services, feedback_log))
    widget.install(app, services)
    return app


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def check_error(r: httpx.Response, status: int, *phrases: str) -> str:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_a_normal_post_is_stored(http, feedback_log):
    before = feedback_log.count()
    r = http.post("/api/feedback", json=POST)
    assert r.status_code == 201 and isinstance(r.json()["id"], int)
    assert feedback_log.count() == before + 1 and feedback_log.all()[-1].comment == "too short"


@pytest.mark.parametrize(
    "field,value,limit",
    [
        ("question", "x" * (200 * KB + 1), "204,800 bytes"),
        ("answer", "x" * (64 * KB + 1), "65,536 bytes"),
        ("comment", "x" * 2001, "2,000 characters"),
        ("codes", [{"code": "550-5.1.1"}] * 101, "100 items"),
        ("sources", [{"text": "x" * (65 * KB)}], "65,536 bytes"),
    ],
    ids=["question", "answer", "comment", "codes-count", "sources-size"],
)
def test_too_large_fields_get_413(http, feedback_log, field, value, limit):
    before = feedback_log.count()
    check_error(http.post("/api/feedback", json={**POST, field: value}), 413, field, limit)
    assert feedback_log.count() == before


def test_a_10_mb_post_is_refused_and_not_stored(http, feedback_log):
    """The finding's 10 MB body: 413, by the answer's limit or by a limit on the whole body if one is set."""
    before = feedback_log.count()
    message = check_error(http.post("/api/feedback", json={**POST, "answer": "x" * (10 * 1024 * KB)}), 413)
    assert "answer" in message or "body" in message
    assert feedback_log.count() == before


def test_posts_beyond_the_rate_get_429(services, tmp_path):
    from app.web.feedback import FeedbackLog

    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    with LiveServer(api_app(services, feedback_log, feedback_rate="3/minute", widget_rate="100/minute")) as s, \
            httpx.Client(base_url=s.url, timeout=60) as c:
        assert [c.post("/api/feedback", json=POST).status_code for _ in range(3)] == [201] * 3
        r = c.post("/api/feedback", json=POST)
        check_error(r, 429, "3 per minute", "feedback")
        assert 1 <= int(r.headers["Retry-After"]) <= 20
        assert feedback_log.count() == 3
        assert c.post("/widget/api/ask", json={"question": "5.2.2"}).status_code == 200  # a limit of its own


def test_the_stored_size_cap_gets_507(services, tmp_path):
    from app.web.feedback import FeedbackLimits, FeedbackLog

    feedback_log = FeedbackLog(tmp_path / "f.sqlite3", limits=FeedbackLimits(database_bytes=256 * KB))
    with LiveServer(api_app(services, feedback_log)) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        statuses = [c.post("/api/feedback", json={**POST, "answer": "a" * (60 * KB)}).status_code for _ in range(8)]
        assert statuses[0] == 201 and statuses[-1] == 507, statuses
        full = feedback_log.count()
        check_error(c.post("/api/feedback", json={**POST, "answer": "a" * (60 * KB)}), 507,
                    "full", "BOUNCEBOT_FEEDBACK_MAX_MB", "bouncebot feedback export")
        assert feedback_log.count() == full == statuses.count(201)


def test_a_deleted_directory_gets_503_and_nothing_is_counted(services, tmp_path):
    from app.web.feedback import FeedbackLog

    path = tmp_path / "data" / "f.sqlite3"
    feedback_log = FeedbackLog(path)
    with LiveServer(api_app(services, feedback_log)) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        assert c.post("/api/feedback", json=POST).status_code == 201
        shutil.rmtree(path.parent)
        for _ in range(3):
            check_error(c.post("/api/feedback", json=POST), 503, str(path), "not saved")
        assert c.get("/healthz").json()["feedback"] == 1


def test_a_read_only_or_full_database_gets_json_not_500(services, tmp_path):
    from app.web.feedback import FeedbackLog

    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    with LiveServer(api_app(services, feedback_log)) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        feedback_log._db.execute("PRAGMA query_only = ON")  # SQLite refuses writes as for a read-only file
        check_error(c.post("/api/feedback", json=POST), 503, "read-only", "not saved")
        feedback_log._db.execute("PRAGMA query_only = OFF")
        pages = feedback_log._db.execute("PRAGMA page_count").fetchone()[0]
        feedback_log._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite reports 'database or disk is full'
        check_error(c.post("/api/feedback", json={**POST, "answer": "a" * (60 * KB)}), 507, "full", "not saved")
        assert feedback_log.count() == 0


def test_serve_refuses_to_start_on_a_database_it_cannot_open(indexed_settings, tmp_path):
    (tmp_path / "feedback.sqlite3").mkdir()  # not a file SQLite can open, even as root
    env = {**os.environ, "BOUNCEBOT_KB_DIR": str(indexed_settings.kb_dir),
           "BOUNCEBOT_INDEX_DIR": str(indexed_settings.index_dir), "BOUNCEBOT_COLLECTION": indexed_settings.collection,
           "BOUNCEBOT_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"), "OMP_NUM_THREADS": "1"}
    bin_ = Path(sys.executable).parent / "bouncebot"
    try:
        r = subprocess.run([str(bin_), "serve", "--port", str(free_port())], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("bouncebot serve started on a feedback database it cannot open")
    assert r.returncode == 1, r.stderr[-2000:]
    assert r.stderr.startswith("bouncebot: ") and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert str(tmp_path / "feedback.sqlite3") in r.stderr and "BOUNCEBOT_FEEDBACK_DB" in r.stderr
