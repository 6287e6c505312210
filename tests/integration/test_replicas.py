"""Replicas and live re-index against a real Chroma server on loopback, the
real embedding model and real servers: a running app moves to a new index
version without a restart and without a failed request; `serve --workers 2`
answers (the chat included, whichever worker a connection reaches); on the
embedded store it refuses, saying what to run instead."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from ..conftest import KB
from ..servers import ChromaServer, LiveServer, free_port
from .replicas import BOUNCE_LIST, NEW_CODE, Loop, Serve, add_row, chat_turn_split, new_row_is_exact
from .test_cli import run

pytestmark = pytest.mark.slow

POLL = 0.5  # BOUNCEBOT_INDEX_POLL here: the old version is removed 5 polls (2.5 s) after a switch


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with ChromaServer(tmp_path_factory.mktemp("chroma-replicas")) as server:
        yield server.url


def collections(chroma_url: str) -> set[str]:
    from app.config import Settings
    from app.search.chroma import make_client

    return {c.name for c in make_client(Settings().with_(chroma_url=chroma_url)).list_collections()}


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_a_running_app_answers_from_a_new_index_without_a_restart_or_a_failed_request(
        chroma_url, tmp_path, embedder):
    from app.config import Settings
    from app.answering.services import build
    from app.search.chroma import head_version, make_client
    from app.web.feedback import FeedbackLog
    from app.web.server import create_app

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_COLLECTION": "live", "BOUNCEBOT_KB_DIR": str(kb),
           "BOUNCEBOT_INDEX_POLL": str(POLL), "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    assert run(["ingest"], env).returncode == 0
    settings = Settings().with_(kb_dir=kb, chroma_url=chroma_url, collection="live", index_poll=POLL,
                                feedback_db=tmp_path / "feedback.db")
    services = build(settings, embedder=embedder, live=True).warm()
    watch = services.watch.start()
    client = make_client(settings)  # the test's own client, beside the app's
    old = head_version(client, settings)
    assert watch.opened() == old
    try:
        with LiveServer(create_app(services, FeedbackLog.from_settings(settings))) as server:
            before = httpx.post(f"{server.url}/api/ask", json={"question": f"What does {NEW_CODE} mean?"}).json()
            assert before["codes"][0]["match"] == "none"  # not in the table yet

            with Loop(server.url, [f"What does {NEW_CODE} mean?", BOUNCE_LIST]) as loop:
                time.sleep(1)
                add_row(kb)
                t0 = time.monotonic()
                r = run(["ingest"], env)  # another process
                assert r.returncode == 0, r.stderr
                new = head_version(client, settings)
                assert new != old
                wait_for(lambda: any(new_row_is_exact(a) for a in loop.answers[-4:]), 30,
                         "the running app answers from the new version")
                moved = time.monotonic() - t0
                time.sleep(1)  # requests go on after the swap
            assert loop.failures == []
            print(f"\nlive re-index: {len(loop.answers)} answers, 0 failed; the new row answered "
                  f"{moved:.1f} s after the ingest process started (poll {POLL} s)")
            exact = [new_row_is_exact(a) for a in loop.answers if a["question"].startswith("What")]
            assert exact[-1] and not exact[0]
            assert exact == sorted(exact)  # never the old version again once the new one answered
            assert all(a["answered"] and a["sources"] for a in loop.answers if a["question"] == BOUNCE_LIST)

            lookup = httpx.get(f"{server.url}/api/lookup", params={"q": NEW_CODE}).json()  # the swapped table
            assert lookup["codes"][0]["match"] == "exact"
            assert watch.opened() == new

            wait_for(lambda: old not in collections(chroma_url), 30, "the old version is removed after the grace")
            assert new in collections(chroma_url)
            after = httpx.post(f"{server.url}/api/ask", json={"question": BOUNCE_LIST})
            assert after.status_code == 200 and after.json()["answered"]
    finally:
        watch.stop()


def test_a_kb_dir_that_does_not_match_the_new_version_keeps_the_old_one_serving(chroma_url, tmp_path, embedder,
                                                                                caplog):
    """A replica whose kb_dir is not the new version's: a warning, the old version still answers."""
    from app.config import Settings
    from app.answering.services import build

    kb, other = tmp_path / "kb", tmp_path / "other-kb"
    shutil.copytree(KB, kb)
    shutil.copytree(KB, other)
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_COLLECTION": "mismatch", "BOUNCEBOT_KB_DIR": str(kb),
           "BOUNCEBOT_INDEX_POLL": "60", "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    assert run(["ingest"], env).returncode == 0
    settings = Settings().with_(kb_dir=other, chroma_url=chroma_url, collection="mismatch", index_poll=60)
    services = build(settings, embedder=embedder, live=True).warm()
    opened = services.watch.opened()
    add_row(kb)
    assert run(["ingest"], env).returncode == 0  # from the other kb_dir
    with caplog.at_level("WARNING", logger="bouncebot.index"):
        assert services.watch.check() is False
    assert "not that version's" in caplog.text
    assert services.watch.opened() == opened
    answer = services.answerer.ask(BOUNCE_LIST).to_dict()
    assert answer["answered"] and answer["sources"][0]["section"] == "Email address is on a bounce list"


@pytest.mark.parametrize("how", [["--workers", "2"], ["--workers=3"], "env"])
def test_workers_on_the_embedded_store_refuse_to_start_saying_what_to_run(how, tmp_path):
    env = {"BOUNCEBOT_INDEX_DIR": str(tmp_path / "index"), "BOUNCEBOT_CHROMA_URL": ""}
    args = ["serve", "--port", str(free_port())]
    if how == "env":
        env["BOUNCEBOT_WORKERS"] = "2"
    else:
        args += how
    r = run(args, env, timeout=60)
    assert r.returncode == 2
    assert "BOUNCEBOT_CHROMA_URL" in r.stderr and "chroma run" in r.stderr and "--workers 1" in r.stderr
    assert not (tmp_path / "index").exists()  # refused before anything was opened


def test_two_workers_on_a_chroma_server_answer_the_api_the_widget_and_the_chat(chroma_url, tmp_path):
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_COLLECTION": "workers", "BOUNCEBOT_KB_DIR": str(KB),
           "BOUNCEBOT_FEEDBACK_DB": str(tmp_path / "feedback.db"), "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    assert run(["ingest"], env).returncode == 0
    with Serve(env, ["--workers", "2"], free_port(), tmp_path / "serve.log") as serve:
        for _ in range(6):  # fresh connections: both workers answer
            r = httpx.post(f"{serve.url}/api/ask", json={"question": BOUNCE_LIST}, timeout=60)
            assert r.status_code == 200 and r.json()["answered"]
        widget = httpx.post(f"{serve.url}/widget/api/ask", json={"question": "What does 550-5.1.1 mean?"},
                            timeout=60)
        assert widget.status_code == 200 and widget.json()["codes"][0]["match"] == "exact"
        bad = httpx.post(f"{serve.url}/api/ask", json={"question": ""}, timeout=60)
        assert bad.status_code in (400, 422) and "error" in bad.json()
        page = httpx.get(f"{serve.url}/", timeout=60)
        assert page.status_code == 200 and "<html" in page.text.lower()
        # The chat's join and its event stream on different connections (so, often, different workers):
        # each turn completes, since every worker passes the chat through to its one process.
        turns = [chat_turn_split(serve.url, "What does 550-5.1.1 mean?") for _ in range(10)]
        assert turns == [(200, 200, True)] * 10
    assert serve.proc.returncode is not None
    log = (tmp_path / "serve.log").read_text()
    assert "2 workers" in log
