"""The storage layer on a real PostgreSQL: migrations (twice, and from
processes starting at once), feedback shared between logs and processes with
the SQLite log's limits and errors, the shared rate-limit counter, and what
a database that goes down does to feedback (503, nothing lost) and to the
rate limit (fails open to each process's own bucket)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from app.errors import BadFeedback, FeedbackFull, FeedbackTooLarge, FeedbackUnavailable
from app.storage.feedback import FeedbackLimits
from app.storage.migrations import LATEST, MIGRATIONS, Migration
from app.storage.postgres import CounterUnavailable, PostgresFeedbackLog, PostgresRateCounter, PostgresStore

from ...conftest import ROOT
from ..test_cli import run

pytestmark = pytest.mark.slow
ALL_VERSIONS = [m.version for m in MIGRATIONS]
POST = dict(rating="down", question="What does 550 5.1.1 mean?", answer="**550-5.1.1** ...", comment="too vague",
            answered=True, codes=[{"code": "550-5.1.1"}], sources=[{"section": "Common delivery errors"}])


def query(url, sql, args=()):
    with psycopg.connect(url) as c:
        cur = c.execute(sql, args)
        return cur.fetchall() if cur.description else []


def test_migrating_twice_applies_each_migration_once(database_url):
    store = PostgresStore(database_url)
    assert store.migrate() == ALL_VERSIONS
    assert store.migrate() == [] and PostgresStore(database_url).migrate() == []
    assert [r[0] for r in query(database_url, "SELECT version FROM schema_version ORDER BY 1")] == ALL_VERSIONS
    names = {r[0] for r in query(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"schema_version", "feedback", "rate_limits"} <= names
    persistence = dict(query(database_url, "SELECT relname, relpersistence FROM pg_class WHERE relname IN "
                                           "('feedback', 'rate_limits')"))
    assert persistence == {"feedback": "p", "rate_limits": "u"}  # counters unlogged: no disk flush per request
    store.close()


MIGRATE_AT = """
import sys, time
from app.storage.postgres import PostgresStore
start = float(sys.argv[2])
while time.time() < start:
    pass
print(PostgresStore(sys.argv[1]).migrate())
"""


def test_processes_starting_at_once_migrate_the_database_once(database_url):
    start = time.time() + 2.0  # every process past its imports, then released together
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE_AT, database_url, str(start)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    applied = sorted(json.loads(out) for out, _ in results)
    assert applied == [[], [], ALL_VERSIONS], "exactly one process applies them, the others find them done"
    assert [r[0] for r in query(database_url, "SELECT version FROM schema_version ORDER BY 1")] == ALL_VERSIONS


def test_a_second_migrator_waits_on_the_advisory_lock_then_finds_the_work_done(database_url):
    slow = MIGRATIONS + (Migration(LATEST + 1, "slow", sqlite="SELECT 1", postgresql="SELECT pg_sleep(1.5)"),)
    done: dict[str, object] = {}

    def migrate(name):
        try:
            done[name] = PostgresStore(database_url).migrate(slow)
        except Exception as e:  # noqa: BLE001  (reported below)
            done[name] = e

    first = threading.Thread(target=migrate, args=("first",))
    first.start()
    deadline = time.monotonic() + 30
    while not query(database_url, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"):
        assert time.monotonic() < deadline, "the first migrator never took the lock"
        time.sleep(0.02)
    migrate("second")
    first.join(30)
    assert done == {"first": ALL_VERSIONS + [LATEST + 1], "second": []}


def test_a_database_from_a_newer_bouncebot_is_refused_saying_so(database_url):
    PostgresStore(database_url).migrate()
    query(database_url, "INSERT INTO schema_version (version, name) VALUES (%s, 'future')", (LATEST + 1,))
    for read_only in (False, True):
        with pytest.raises(FeedbackUnavailable, match=f"version {LATEST + 1}, newer than this Bouncebot"):
            PostgresFeedbackLog(PostgresStore(database_url), read_only=read_only)


WRITE_ONE = """
from app.config import Settings
from app.web.feedback import FeedbackLog
log = FeedbackLog.from_settings(Settings.from_env())
print(log.add("up", "from another process", "an answer"))
"""


def test_feedback_written_through_one_log_is_read_and_counted_by_another(database_url):
    one, other = (PostgresFeedbackLog(PostgresStore(database_url)) for _ in range(2))
    first = one.add(**POST)
    assert other.count() == 1
    [f] = other.all("down")
    assert (f.id, f.rating, f.question, f.comment, f.answered, f.codes, f.sources) == (
        first, "down", POST["question"], "too vague", True, POST["codes"], POST["sources"])
    r = subprocess.run([sys.executable, "-c", WRITE_ONE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"BOUNCEBOT_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert one.count() == other.count() == 2
    assert [f.question for f in one.all("up")] == ["from another process"]
    assert one.all()[1].answered is None


@pytest.mark.parametrize("change, error, phrase", [
    ({"rating": "meh"}, BadFeedback, "rating must be 'up' or 'down'"),
    ({"question": "  "}, BadFeedback, "needs the question"),
    ({"question": "x" * 9000}, FeedbackTooLarge, "question"),
    ({"answer": "x" * (64 * 1024 + 1)}, FeedbackTooLarge, "answer"),
    ({"comment": "x" * 2001}, FeedbackTooLarge, "comment"),
    ({"codes": [{}] * 101}, FeedbackTooLarge, "codes"),
    ({"sources": "not a list"}, BadFeedback, "sources must be a list"),
    ({"comment": "\ud800"}, BadFeedback, "UTF-8"),
])
def test_posts_are_checked_as_on_sqlite_and_nothing_is_stored(database_url, change, error, phrase):
    log = PostgresFeedbackLog(PostgresStore(database_url), FeedbackLimits(question_bytes=8192))
    with pytest.raises(error, match=phrase):
        log.add(**{**POST, **change})
    assert log.count() == 0


def test_the_feedback_cap_refuses_with_507_saying_what_to_do(database_url):
    log = PostgresFeedbackLog(PostgresStore(database_url), FeedbackLimits(database_bytes=96 * 1024))
    kept = 0
    with pytest.raises(FeedbackFull) as e:
        for _ in range(100):
            log.add(**{**POST, "answer": "y" * 8000})
            kept += 1
    assert e.value.http_status == 507 and "BOUNCEBOT_FEEDBACK_MAX_MB" in str(e.value) and "export" in str(e.value)
    assert 0 < kept < 100 and log.count() == kept


def test_the_rate_counter_is_shared_and_exact_under_concurrent_replicas(database_url):
    PostgresStore(database_url).migrate()
    counters = [PostgresRateCounter(PostgresStore(database_url)) for _ in range(2)]
    now = 999_960.0 + 10  # 10 s into a 60 s window (999,960 = 16,666 x 60)
    waits: list[float] = []

    def hit(i):
        waits.append(counters[i % 2].hit("widget", "203.0.113.9", 5, 60, now))

    threads = [threading.Thread(target=hit, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(waits) == [0.0] * 5 + [50.0] * 15  # 5 through across both; the others wait for the next window
    assert counters[0].hit("widget", "198.51.100.1", 5, 60, now) == 0  # another client
    assert counters[1].hit("feedback", "203.0.113.9", 5, 60, now) == 0  # another route
    assert counters[1].hit("widget", "203.0.113.9", 5, 60, now + 50) == 0  # the next window
    [[hits]] = query(database_url, "SELECT hits FROM rate_limits WHERE route = 'widget' AND client = '203.0.113.9'"
                                   " AND window_start = 999960")
    assert hits == 5  # refused requests are not counted


def test_old_windows_are_cleaned(database_url):
    PostgresStore(database_url).migrate()
    counter = PostgresRateCounter(PostgresStore(database_url))
    for minute in range(5):
        counter.hit("widget", f"client-{minute}", 5, 60, 6000.0 + 60 * minute)
    starts = [r[0] for r in query(database_url, "SELECT window_start FROM rate_limits ORDER BY 1")]
    assert min(starts) >= 6000 + 60 * 3  # only the current window and the one before are kept


def test_feedback_and_limits_when_the_database_goes_down_and_comes_back(postgres, database_url, tmp_path):
    """Feedback posts get 503 with the JSON error shape and nothing is stored or lost; the widget
    keeps answering, limited by each process's own bucket; once it is back, both use it again."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.storage import Storage
    from app.web import widget
    from app.web.api import api_routes, install_error_handlers

    from ...fakes import fake_services

    services = fake_services(tmp_path / "index", database_url=database_url, widget_rate="2/day",
                             feedback_rate="100/day")
    storage = Storage.open(services.settings)
    assert storage.backend == "postgresql" and storage.rate_counter is not None
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(api_routes(services, storage.feedback, storage.rate_counter))
    widget.install(app, services, rate_counter=storage.rate_counter)
    ask = {"question": "What does 550 5.1.1 mean?"}
    with TestClient(app) as http:
        assert http.post("/api/feedback", json=POST).status_code == 201
        assert http.post("/widget/api/ask", json=ask).status_code == 200
        postgres.stop()
        try:
            r = http.post("/api/feedback", json={**POST, "comment": "sent while the database was down"})
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
            message = r.json()["error"]
            assert "not saved" in message and "BOUNCEBOT_DATABASE_URL" in message and "send it again" in message
            assert database_url.split("@")[0] not in message  # no user (or password) echoed
            with pytest.raises(CounterUnavailable):
                storage.rate_counter.hit("widget", "x", 1, 60, time.time())
            # fails open to this process's own bucket (2 a day, its first use): two answers, then 429
            assert [http.post("/widget/api/ask", json=ask).status_code for _ in range(2)] == [200, 200]
            r = http.post("/widget/api/ask", json=ask)
            assert r.status_code == 429 and "error" in r.json() and int(r.headers["Retry-After"]) > 0
        finally:
            postgres.start()
        assert http.post("/api/feedback", json={**POST, "comment": "after"}).status_code == 201
        assert [f.comment for f in storage.feedback.all()] == ["too vague", "after"]
        # the limiter asks the database again a few seconds (retry_after) after its failure: then
        # the shared count (1 so far today) decides again: one more answer, then 429
        deadline = time.monotonic() + 60
        while http.post("/widget/api/ask", json=ask).status_code == 429:  # this process's bucket, meanwhile
            assert time.monotonic() < deadline, "the limiter never went back to the database"
            time.sleep(0.5)
        assert http.post("/widget/api/ask", json=ask).status_code == 429
    storage.close()


def test_export_reads_feedback_from_postgresql(database_url):
    log = PostgresFeedbackLog(PostgresStore(database_url))
    log.add(**POST)
    log.add(**{**POST, "rating": "up"})
    r = run(["feedback", "export"], {"BOUNCEBOT_DATABASE_URL": database_url})
    assert r.returncode == 0, r.stderr
    [case] = [json.loads(line) for line in r.stdout.splitlines()]
    assert case["question"] == POST["question"] and case["feedback"]["comment"] == "too vague"


def test_a_database_that_does_not_answer_is_a_clear_error_at_start(postgres):
    from ...servers import free_port

    url = f"postgresql://bouncebot@127.0.0.1:{free_port()}/nothing"
    r = run(["feedback", "export"], {"BOUNCEBOT_DATABASE_URL": url})
    assert r.returncode == 1 and "did not answer" in r.stderr and "BOUNCEBOT_DATABASE_URL" in r.stderr
    with pytest.raises(FeedbackUnavailable, match="Check that PostgreSQL is running"):
        PostgresFeedbackLog(PostgresStore(url))
