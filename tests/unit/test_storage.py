"""The storage layer on its default backend, SQLite: versioned migrations
(each once, idempotent, in a transaction, safe when two processes start at
once), a feedback file made before migrations existed migrated in place, and
the shared rate limiter's fallback when its database cannot count. The same
on a real PostgreSQL: tests/integration/postgres/."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from app.errors import FeedbackUnavailable, RateLimited
from app.storage import Storage
from app.storage.migrations import LATEST, MIGRATIONS, Migration, check_order, pending
from app.storage.sqlite import FeedbackLog, migrate
from app.web.feedback import FeedbackLog as WebFeedbackLog, export_down

from ..conftest import ROOT

OLD_FILE = ROOT / "tests" / "unit" / "data" / "feedback_before_migrations.sqlite3"  # made by the code before app/storage
OLD_ROWS = [("down", "What does 550 5.1.1 mean?", "too vague", True), ("up", "How do I get an address off the bounce list?",
            "", None), ("down", "Qué significa 421 4.7.28?", "café ✓", False)]
ALL_VERSIONS = [m.version for m in MIGRATIONS]


def versions(path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")]


def tables(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


def connect(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_the_web_layer_keeps_its_names():
    assert WebFeedbackLog is FeedbackLog


def test_migrations_are_numbered_in_order_and_each_names_both_backends():
    check_order()
    assert ALL_VERSIONS == list(range(1, LATEST + 1))
    for m in MIGRATIONS:
        assert m.statements("sqlite") and m.statements("postgresql"), m.name
    with pytest.raises(AssertionError):
        check_order((MIGRATIONS[0], MIGRATIONS[2]))


@pytest.mark.parametrize("applied, left", [(set(), ALL_VERSIONS), ({1}, ALL_VERSIONS[1:]), (set(ALL_VERSIONS), [])])
def test_pending_is_what_is_not_applied_in_order(applied, left):
    assert [m.version for m in pending(applied)] == left


def test_a_new_file_gets_every_migration_once_and_migrating_again_does_nothing(tmp_path):
    path = tmp_path / "f.sqlite3"
    db = connect(path)
    assert migrate(db) == ALL_VERSIONS
    assert migrate(db) == [] and migrate(db) == []
    db.close()
    assert versions(path) == ALL_VERSIONS
    assert {"feedback", "schema_version", "rate_limits", "feedback_rating"} <= tables(path)
    FeedbackLog(path).close()  # opening migrates too: still once each
    assert versions(path) == ALL_VERSIONS


def test_a_file_made_before_migrations_is_migrated_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    shutil.copy(OLD_FILE, path)
    assert "schema_version" not in tables(path)
    log = FeedbackLog(path)
    assert versions(path) == ALL_VERSIONS
    assert [(f.rating, f.question, f.comment, f.answered) for f in log.all()] == OLD_ROWS
    assert log.all("down")[0].codes == [{"code": "550-5.1.1"}]
    assert log.add("up", "q", "a") == 4  # ids go on from the old rows
    log.close()
    assert len(FeedbackLog(path).all()) == 4  # and a second start finds nothing to do


def test_export_reads_an_old_file_without_migrating_it(tmp_path):
    import io

    path = tmp_path / "feedback.sqlite3"
    shutil.copy(OLD_FILE, path)
    out = io.StringIO()
    assert export_down(FeedbackLog(path, read_only=True), out) == 2
    assert "schema_version" not in tables(path)  # read-only means read-only


def test_a_file_from_a_newer_bouncebot_is_refused_saying_so(tmp_path):
    path = tmp_path / "f.sqlite3"
    FeedbackLog(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST + 1,))
    for read_only in (False, True):
        with pytest.raises(FeedbackUnavailable, match=f"version {LATEST + 1}, newer than this Bouncebot"):
            FeedbackLog(path, read_only=read_only)


def test_a_failing_migration_is_rolled_back_whole_and_stays_pending(tmp_path):
    bad = Migration(LATEST + 1, "broken", sqlite="CREATE TABLE half_done (x INTEGER); INSERT INTO nowhere VALUES (1)",
                    postgresql="SELECT 1")
    path = tmp_path / "f.sqlite3"
    db = connect(path)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(db, MIGRATIONS + (bad,))
    assert not db.in_transaction
    assert versions(path) == ALL_VERSIONS  # the good ones were each committed on their own
    assert "half_done" not in tables(path)  # nothing of the broken one is left
    fixed = Migration(LATEST + 1, "fixed", sqlite="CREATE TABLE half_done (x INTEGER)", postgresql="SELECT 1")
    assert migrate(db, MIGRATIONS + (fixed,)) == [LATEST + 1]


MIGRATE_AT = """
import sys, time
from app.storage.sqlite import FeedbackLog
start = float(sys.argv[2])
while time.time() < start:
    pass
FeedbackLog(sys.argv[1]).close()
print("ok")
"""


def test_two_processes_starting_at_once_migrate_the_file_once(tmp_path):
    path = tmp_path / "f.sqlite3"
    start = time.time() + 2.0  # both past their imports, then released together
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE_AT, str(path), str(start)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert versions(path) == ALL_VERSIONS


def test_a_second_migrator_waits_for_the_first_then_finds_the_work_done(tmp_path):
    """The first connection is inside its migration (a statement that pauses) when the second
    starts: the second waits on BEGIN IMMEDIATE, then applies nothing."""
    import threading

    path = tmp_path / "f.sqlite3"
    inside = threading.Event()

    def pause():
        inside.set()
        time.sleep(1.0)  # the other migrator starts meanwhile
        return 1

    slow = MIGRATIONS + (Migration(LATEST + 1, "slow", sqlite="SELECT pause()", postgresql="SELECT 1"),)
    dbs = [sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30) for _ in range(2)]
    for db in dbs:
        db.execute("PRAGMA journal_mode=WAL")
        db.create_function("pause", 0, pause)
    done: dict[str, object] = {}

    def run(name, db):
        try:
            done[name] = migrate(db, slow)
        except Exception as e:  # noqa: BLE001  (reported below)
            done[name] = e

    first = threading.Thread(target=run, args=("first", dbs[0]))
    first.start()
    assert inside.wait(30)
    run("second", dbs[1])
    first.join(30)
    assert done == {"first": ALL_VERSIONS + [LATEST + 1], "second": []}
    assert versions(path) == ALL_VERSIONS + [LATEST + 1]


def test_storage_defaults_to_sqlite_with_limits_counted_in_memory(tmp_path):
    from app.config import Settings

    storage = Storage.open(Settings().with_(feedback_db=tmp_path / "f.sqlite3"))
    assert storage.backend == "sqlite" and storage.rate_counter is None
    assert isinstance(storage.feedback, FeedbackLog) and storage.feedback.count() == 0
    storage.close()


# ------------------------------------------------------------------ the shared limiter, on a fake counter

class Counter:
    """A rate counter that answers ``waits`` in turn, or raises ``CounterUnavailable`` while ``down``."""

    def __init__(self, waits=()):
        self.waits, self.down, self.calls = list(waits), False, []

    def hit(self, route, client, count, period, now):
        from app.storage.postgres import CounterUnavailable

        self.calls.append((route, client, count, period))
        if self.down:
            raise CounterUnavailable("the rate-limit counters in db:5432/x cannot be read: connection refused")
        return self.waits.pop(0) if self.waits else 0.0


class Req:
    class client:
        host = "203.0.113.9"


def test_the_shared_limiter_asks_the_counter_and_says_when_to_retry():
    from app.web.widget import RateLimiter, SharedRateLimiter

    counter = Counter([0.0, 41.2])
    limiter = RateLimiter.from_setting("2/minute", counter=counter, route="widget")
    assert isinstance(limiter, SharedRateLimiter)
    limiter.enforce(Req, "questions")
    with pytest.raises(RateLimited) as e:
        limiter.enforce(Req, "questions")
    assert e.value.retry_after == 42 and "2 per minute" in str(e.value)
    assert counter.calls == [("widget", "203.0.113.9", 2, 60)] * 2


def test_without_a_counter_the_limiter_is_the_in_memory_bucket():
    from app.web.widget import RateLimiter, SharedRateLimiter

    assert not isinstance(RateLimiter.from_setting("2/minute"), SharedRateLimiter)


def test_when_the_database_cannot_count_the_limiter_fails_open_to_this_process_bucket(caplog):
    """Answers do not need the database, so its outage must not stop them; the limit still holds
    per process meanwhile (never lifted), and the database counts again once it is back."""
    from app.web.widget import RateLimiter

    counter = Counter()
    now = [0.0]
    limiter = RateLimiter.from_setting("2/minute", counter=counter, route="widget", clock=lambda: now[0])
    counter.down = True
    assert [limiter.hit("a"), limiter.hit("a")] == [0, 0]
    assert limiter.hit("a") == pytest.approx(30)  # this process's own bucket refuses the third
    assert limiter.fallbacks == 3
    assert len(counter.calls) == 1  # asked once, then left alone for retry_after (5 s): no request waits on it
    assert sum("counted in this process only" in r.getMessage() for r in caplog.records) == 1
    counter.down = False
    now[0] = 4.9
    assert limiter.hit("a") > 0 and len(counter.calls) == 1
    now[0] = 5.0
    assert limiter.hit("a") == 0 and limiter.fallbacks == 4 and len(counter.calls) == 2  # the database decides again
    counter.down, now[0] = True, 70.0
    limiter.hit("a")
    assert sum("counted in this process only" in r.getMessage() for r in caplog.records) == 2  # once a minute


@pytest.mark.parametrize("open_log", ["feedback", "conversations"])
def test_opening_waits_while_another_process_holds_the_new_files_write_lock(tmp_path, open_log):
    """SQLite refuses `PRAGMA journal_mode=WAL` at once ("database is locked", no busy handler) while
    another connection writes a file still in rollback mode: a process starting beside one that is
    migrating failed (seen in CI). Opening now waits for the lock to go."""
    import threading

    path = tmp_path / "f.sqlite3"
    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE elsewhere (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO elsewhere VALUES (1)")
    timer = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        if open_log == "feedback":
            log = FeedbackLog(path)
            assert log.count() == 0
        else:
            from app.storage.conversations import SqliteConversationLog

            log = SqliteConversationLog(path)
            assert log.count() == 0
        log.close()
    finally:
        timer.join()
        other.close()
