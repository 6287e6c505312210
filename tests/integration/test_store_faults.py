"""Faults in the vector feedback_log, on real servers: a Chroma server paused with
SIGSTOP (it accepts connections and never answers) and then killed, under a
real Bouncebot server on loopback. Exact codes, look-up, /healthz and the
chat page keep answering; free-form questions get a clear 503 in the JSON
error shape, never a hang or a text/plain 500."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ..servers import ChromaServer, LiveServer
from .test_answer import SEED_ROWS

pytestmark = pytest.mark.slow

FREE_FORM = "How do I get an address off the bounce list?"
HANG = 60  # a request that takes this long is hanging (the store timeout is 1 s)


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with ChromaServer(tmp_path_factory.mktemp("chroma")) as server:
        yield server.proc, server.url


@pytest.fixture(scope="module")
def bot(chroma, embedder, tmp_path_factory):
    from app.config import Settings
    from app.web.feedback import FeedbackLog
    from app.web.server import create_app
    from app.answering.services import build
    from app.search.chroma import make_client
    from ingest.indexer import ingest

    from ..conftest import KB

    _, url = chroma
    settings = Settings().with_(kb_dir=KB, chroma_url=url, collection="faults", store_timeout=1.0)
    ingest(settings, make_client(settings), embedder, progress=False)
    services = build(settings, embedder=embedder).warm()
    services.guard.cooldown = 1.0
    feedback_log = FeedbackLog(tmp_path_factory.mktemp("fb") / "feedback.sqlite3")
    with LiveServer(create_app(services, feedback_log)) as server:
        with httpx.Client(base_url=server.url, timeout=HANG) as http:
            yield http


def ask(http, question):
    return http.post("/api/ask", json={"question": question})


def wait_until(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_paused_store_stalls_nothing(chroma, bot):
    proc, _ = chroma
    assert ask(bot, FREE_FORM).json()["answered"]
    assert bot.get("/healthz").json()["status"] == "ok"
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(45) as pool:  # 45 free-form questions in flight against the hung store
            stuck = [pool.submit(ask, bot, f"{FREE_FORM} ({i})") for i in range(45)]
            time.sleep(0.5)
            # meanwhile everything that needs no search answers
            exact = ask(bot, "What does 550 5.1.1 mean?")
            assert exact.status_code == 200
            assert exact.json()["codes"][0]["row"]["meaning"] == SEED_ROWS["550-5.1.1"][0]
            assert bot.get("/api/lookup", params={"q": "421 4.7.0"}).status_code == 200
            assert bot.get("/").status_code == 200
            health = bot.get("/healthz")
            assert health.status_code == 200
            results = [f.result() for f in stuck]
        for r in results:
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert "Search is unavailable" in r.json()["error"]
        wait_until(lambda: bot.get("/healthz").json()["status"] == "degraded")
        health = bot.get("/healthz").json()
        assert health["store"]["state"] == "unavailable" and "did not answer" in health["store"]["problem"]

        # a code the table lacks: the code's part is answered, with a note that search is down
        r = ask(bot, "what does 451 4.3.2 mean?")
        assert r.status_code == 200
        d = r.json()
        assert d["codes"][0]["code"] == "451-4.3.2" and d["codes"][0]["row"] is None
        assert "Search is unavailable right now" in d["answer"]
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    # the store is back: answers and health recover without a restart
    wait_until(lambda: ask(bot, FREE_FORM).status_code == 200)
    wait_until(lambda: bot.get("/healthz").json()["status"] == "ok")


def test_a_dead_store_gives_json_errors_not_text(chroma, bot):
    proc, _ = chroma
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait(timeout=20)
    r = ask(bot, FREE_FORM)
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
    assert "Search is unavailable" in r.json()["error"]
    assert ask(bot, "550-5.1.1").status_code == 200  # exact codes still answered
    wait_until(lambda: bot.get("/healthz").json()["status"] == "degraded")
