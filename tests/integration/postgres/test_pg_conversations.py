"""The conversation log on a real PostgreSQL (``app.storage.conversations_pg``): the same
behaviour as on SQLite (tests/unit/test_conversation_log.py): the table and its indexes from
migration 4, a round trip with redaction before storage, created read back as the same epoch
seconds, ratings, a period newest first, retention, Storage.open (purge at start-up, the log off),
the recorder over it, and a database that goes away: counted, never raised."""

from __future__ import annotations

import time

import psycopg
import pytest

from app.config import Settings
from app.errors import ConversationLogUnavailable
from app.storage import Storage
from app.storage.conversations import DAY, LogEntry
from app.storage.conversations_pg import PostgresConversationLog
from app.storage.recorder import Recorder

pytestmark = pytest.mark.slow
NOW = 1_800_000_000.123456
PERSONAL = "Hi Anna, mail to maria.lopez@example.com bounced with 550 5.1.1; call me on +44 20 7946 0958"
ANSWER = {"question": "What does 550 5.1.1 mean?", "answer": "**550-5.1.1** ...", "answered": True,
          "codes": [{"code": "550-5.1.1", "match": "exact", "reason": "user_unknown"}],
          "sources": [{"article": "Common Email Delivery Errors", "section": "Common delivery errors", "url": "u"}],
          "recipients": [], "intent": "question", "mode": "default", "llm": None}


def query(url, sql, args=()):
    with psycopg.connect(url) as c:
        cur = c.execute(sql, args)
        return cur.fetchall() if cur.description else []


def test_the_migration_makes_the_table_and_its_indexes(database_url):
    PostgresConversationLog(database_url).close()
    indexes = {r[0] for r in query(database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'conversation_log'")}
    assert {"conversation_log_created", "conversation_log_rating"} <= indexes
    types = dict(query(database_url, "SELECT column_name, data_type FROM information_schema.columns "
                                     "WHERE table_name = 'conversation_log'"))
    assert types["created"] == "double precision" and types["answered"] == "boolean"


def test_a_round_trip_is_redacted_and_reads_back_as_on_sqlite(database_url):
    log = PostgresConversationLog(database_url)
    log_id = log.record(LogEntry.of({**ANSWER, "question": PERSONAL}, "widget", 3.25, now=NOW))
    [e] = log.entries(NOW - 1)
    assert (e.id, e.created, e.channel, e.latency_ms, e.answered, e.refused, e.redacted) == (
        log_id, NOW, "widget", 3.25, True, False, True)
    assert e.question == "Hi [name], mail to [email] bounced with 550 5.1.1; call me on [phone]"
    assert e.codes == [{"code": "550-5.1.1", "tabled": True, "reason": "user_unknown"}]
    stored = " ".join(str(v) for v in query(database_url, "SELECT * FROM conversation_log")[0])
    assert "@" not in stored and "7946" not in stored
    assert log.rate(log_id, "down", "ask Mr. Smith") and log.get(log_id).comment == "ask Mr. [name]"
    assert log.rate(log_id + 1, "up") is False
    log.close()


def test_a_period_newest_first_and_retention(database_url):
    log = PostgresConversationLog(database_url, retention_days=30)
    for age in (0, 1, 29.9, 30.1, 400):
        log.record(LogEntry.of({**ANSWER, "question": f"{age}"}, "api", 1, now=NOW - age * DAY))
    assert [e.question for e in log.entries(NOW - 31 * DAY)] == ["0", "1", "29.9", "30.1"]
    assert [e.question for e in log.entries(NOW - 2 * DAY, NOW - 0.5 * DAY)] == ["1"]
    assert log.purge(now=NOW) == 2 and log.count() == 3
    log.close()


def test_storage_open_purges_at_start_up_and_a_log_that_is_off_is_none(database_url, tmp_path):
    settings = Settings().with_(database_url=database_url, feedback_db=tmp_path / "unused.sqlite3",
                                log_retention_days=7)
    storage = Storage.open(settings)
    storage.conversations.record(LogEntry.of(ANSWER, "api", 1, now=time.time() - 8 * DAY))
    storage.conversations.record(LogEntry.of(ANSWER, "api", 1))
    storage.close()
    storage = Storage.open(settings)
    assert storage.backend == "postgresql" and storage.conversations.count() == 1
    storage.close()
    off = Storage.open(settings.with_(conversation_log=False))
    assert off.conversations is None
    off.close()


def test_the_recorder_over_postgres_and_a_database_that_goes_away(database_url, postgres):
    log = PostgresConversationLog(database_url)
    recorder = Recorder(log, wait=5)
    assert recorder.record(ANSWER, "api", 1) == 1 and recorder.rate(1, "up") is True
    postgres.stop()
    try:
        assert recorder.record(ANSWER, "api", 1) is None  # refused by a database that is down: not raised
        assert recorder.flush() and recorder.stats()["failed"] == 1
        with pytest.raises(ConversationLogUnavailable, match="BOUNCEBOT_CONVERSATION_LOG=off"):
            log.count()
    finally:
        postgres.start()
    assert recorder.record(ANSWER, "api", 1) == 2  # reconnected on the next write
    recorder.close()
    log.close()
