"""The conversation log on SQLite (``app.storage.conversations``) and its writer
(``app.storage.recorder``): what is kept of an answer, redaction before storage (and kept text when
asked), caps, ratings, reading a period newest first, retention (at start-up and hourly), the
settings, and a log that fails: counted, never raised. The same on PostgreSQL:
tests/integration/postgres/test_pg_conversations.py."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest

from app.config import Settings
from app.errors import BadSetting, ConversationLogUnavailable
from app.storage import Storage
from app.storage.conversations import DAY, MAX_TEXT, ConversationLog, LogEntry, SqliteConversationLog
from app.storage.recorder import Recorder

NOW = 1_800_000_000.0
EXACT = {"code": "550-5.1.1", "match": "exact", "reason": "user_unknown", "text": "550 5.1.1"}
UNTABLED = {"code": "550-5.7.26", "match": "none", "reason": "policy", "text": "550 5.7.26"}
SOURCE = {"kind": "row", "article": "Common Email Delivery Errors", "section": "Common delivery errors",
          "url": "https://help.example/a#common-delivery-errors", "text": "…", "score": 1.0}
PERSONAL = "Hi Anna, mail to maria.lopez@example.com bounced with 550 5.1.1; call me on +44 20 7946 0958"


def answer(question="What does 550 5.1.1 mean?", answered=True, codes=(EXACT,), sources=(SOURCE,), recipients=(),
           intent="question", mode="default", llm=None, text="**550-5.1.1**: the address does not exist") -> dict:
    return {"question": question, "answer": text, "answered": answered, "codes": list(codes),
            "sources": list(sources), "recipients": list(recipients), "intent": intent, "mode": mode, "llm": llm}


@pytest.fixture
def log(tmp_path):
    log = SqliteConversationLog(tmp_path / "feedback.sqlite3")
    yield log
    log.close()


# ------------------------------------------------------------------ what is kept of an answer

@pytest.mark.parametrize("kind, given, answered, refused", [
    ("an exact code", dict(), True, False),
    ("an untabled code", dict(answered=False, codes=[UNTABLED], sources=[]), False, False),
    ("I don't know", dict(question="How much is the Pro plan?", answered=False, codes=[], sources=[]), False, True),
    ("small talk", dict(question="thanks!", answered=False, codes=[], sources=[], intent="small_talk"), False, False),
    ("a pasted bounce, no code", dict(answered=False, codes=[], sources=[], recipients=[{"recipient": "x"}]),
     False, False),
    ("a passage", dict(question="How do I get an address off the bounce list?", codes=[]), True, False),
])
def test_an_entry_says_answered_and_refused_as_the_answer_does(kind, given, answered, refused):
    e = LogEntry.of(answer(**given), "api", 4.5, now=NOW)
    assert (e.answered, e.refused) == (answered, refused), kind
    assert (e.channel, e.latency_ms, e.created, e.id, e.rating) == ("api", 4.5, NOW, None, None)


def test_an_entry_keeps_each_code_tabled_or_not_with_its_reason_and_each_source_where_it_is():
    e = LogEntry.of(answer(codes=[EXACT, UNTABLED]), "widget", 1.0)
    assert e.codes == [{"code": "550-5.1.1", "tabled": True, "reason": "user_unknown"},
                       {"code": "550-5.7.26", "tabled": False, "reason": "policy"}]
    assert e.sources == [{"article": "Common Email Delivery Errors", "section": "Common delivery errors",
                          "url": "https://help.example/a#common-delivery-errors"}]


def test_an_entry_keeps_the_mode_and_the_language_model_s_fallback_reason():
    e = LogEntry.of(answer(mode="llm", llm={"used": False, "fallback": "unsupported_sentence"}), "chat", 7000)
    assert (e.mode, e.fallback) == ("llm", "unsupported_sentence")
    assert LogEntry.of(answer(), "chat", 1).fallback is None


def test_an_entry_is_made_from_the_answer_contract_itself_too():
    from app.answering.contract import Answer

    a = Answer.model_validate({**answer(), "codes": [], "sources": []})
    assert LogEntry.of(a, "api", 2).question == "What does 550 5.1.1 mean?"


@pytest.mark.parametrize("channel", ["cli", "", "CHAT"])
def test_only_the_three_surfaces_are_channels(channel):
    with pytest.raises(ValueError):
        LogEntry.of(answer(), channel, 1)


# ------------------------------------------------------------------ storing, reading, rating

def test_a_recorded_entry_reads_back_redacted_with_its_id(log):
    log_id = log.record(LogEntry.of(answer(question=PERSONAL, text=f"About your question: {PERSONAL}"), "api", 3.5,
                                    now=NOW))
    [e] = log.entries(NOW - 1)
    assert e.id == log_id and e.redacted
    for text in (e.question, e.answer):
        assert "[email]" in text and "[phone]" in text and "[name]" in text
        for gone in ("maria", "example.com", "7946", "Anna"):
            assert gone not in text
        assert "550 5.1.1" in text  # the code is never redacted
    assert (e.channel, e.mode, e.intent, e.answered, e.refused, e.latency_ms) == ("api", "default", "question", True,
                                                                                 False, 3.5)
    assert e.codes == [{"code": "550-5.1.1", "tabled": True, "reason": "user_unknown"}]


def test_with_keep_personal_data_the_text_is_stored_as_sent(tmp_path):
    log = SqliteConversationLog(tmp_path / "f.sqlite3", keep_personal_data=True)
    log.record(LogEntry.of(answer(question=PERSONAL), "chat", 1))
    [e] = log.entries(0)
    assert e.question == PERSONAL and not e.redacted
    log.close()


def test_long_texts_are_capped(log):
    log.record(LogEntry.of(answer(question="550 5.1.1 " + "x" * 10_000, text="y" * 50_000), "api", 1))
    [e] = log.entries(0)
    assert len(e.question) == len(e.answer) == MAX_TEXT
    assert e.question.startswith("550 5.1.1") and e.answer.endswith("…")


@pytest.mark.parametrize("paste", [
    "550 5.1.1\n" + "Final-Recipient: rfc822; maria.lopez@example.com, call +44 20 7946 0958\n" * 3000,
    "550 5.1.1 " + "contact maria.lopez@example.com now " * 6000,  # one 200 KB line
    "550 5.1.1\n" + "x" * 3990 + " maria.lopez@example.com " + "y" * 200_000,  # an address across the cap
])
def test_a_long_paste_is_redacted_in_what_is_kept_and_no_part_of_an_address_leaks(log, paste):
    log.record(LogEntry.of(answer(question=paste), "api", 1))
    [e] = log.entries(0)
    assert len(e.question) <= MAX_TEXT and e.question.startswith("550 5.1.1")
    assert "@" not in e.question and "7946" not in e.question and "maria" not in e.question


def test_entries_are_the_period_s_newest_first(log):
    ids = [log.record(LogEntry.of(answer(question=f"q{i}"), "api", 1, now=NOW - i * DAY)) for i in range(5)]
    assert [e.id for e in log.entries(NOW - 10 * DAY)] == ids
    assert [e.question for e in log.entries(NOW - 2.5 * DAY, NOW - 0.5 * DAY)] == ["q1", "q2"]
    assert log.entries(NOW + 1) == []
    assert log.count() == 5 and log.get(ids[3]).question == "q3" and log.get(10_000) is None


def test_a_rating_and_its_comment_attach_to_the_row_redacted(log):
    log_id = log.record(LogEntry.of(answer(), "chat", 1))
    assert log.rate(log_id, "down", "wrong row; ask Mr. Smith at smith@example.com") is True
    e = log.get(log_id)
    assert (e.rating, e.comment) == ("down", "wrong row; ask Mr. [name] at [email]")
    assert log.rate(log_id, "up") is True and log.get(log_id).rating == "up" and log.get(log_id).comment is None
    assert log.rate(log_id + 1, "up") is False  # unknown id: nothing attached anywhere
    with pytest.raises(ValueError):
        log.rate(log_id, "meh")


def test_the_stored_columns_hold_no_email_or_phone(log, tmp_path):
    log.record(LogEntry.of(answer(question=PERSONAL, text=PERSONAL), "widget", 1))
    log.rate(1, "down", PERSONAL)
    with sqlite3.connect(tmp_path / "feedback.sqlite3") as db:
        row = " ".join(str(v) for v in db.execute("SELECT * FROM conversation_log").fetchone())
    assert "@" not in row and "7946" not in row and "Anna" not in row


# ------------------------------------------------------------------ retention

def test_purge_deletes_the_rows_older_than_the_retention_only(tmp_path):
    log = SqliteConversationLog(tmp_path / "f.sqlite3", retention_days=30)
    for age in (0, 29.9, 30.1, 400):
        log.record(LogEntry.of(answer(question=f"{age} days old"), "api", 1, now=NOW - age * DAY))
    assert log.purge(now=NOW) == 2
    assert sorted(e.question for e in log.entries(0)) == ["0 days old", "29.9 days old"]
    assert log.purge(now=NOW) == 0
    log.close()


def test_storage_open_deletes_expired_rows_at_start_up(tmp_path):
    settings = Settings().with_(feedback_db=tmp_path / "f.sqlite3", log_retention_days=7)
    storage = Storage.open(settings)
    storage.conversations.record(LogEntry.of(answer(question="old"), "api", 1, now=time.time() - 8 * DAY))
    storage.conversations.record(LogEntry.of(answer(question="new"), "api", 1))
    storage.close()
    storage = Storage.open(settings)
    assert [e.question for e in storage.conversations.entries(0)] == ["new"]
    storage.close()


def test_the_recorder_purges_at_most_hourly_and_wakes_up_for_it(log):
    clock = FakeClock(NOW)
    recorder = Recorder(log, clock=clock, purge_every=3600)
    log.record(LogEntry.of(answer(question="expired"), "api", 1, now=NOW - 91 * DAY))
    recorder.flush()
    assert log.count() == 1  # not an hour since start-up (Storage.open purged then)
    clock.now += 3601
    recorder.flush()
    assert log.count() == 0 and recorder.stats()["purged"] == 1
    log.record(LogEntry.of(answer(question="expired too"), "api", 1, now=NOW - 91 * DAY))
    clock.now += 60
    recorder.flush()
    assert log.count() == 1  # the next purge waits for the next hour
    recorder.close()


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ settings and Storage

@pytest.mark.parametrize("env, on, keep, days", [
    ({}, True, False, 90),
    ({"BOUNCEBOT_CONVERSATION_LOG": "off"}, False, False, 90),
    ({"BOUNCEBOT_LOG_KEEP_PERSONAL_DATA": "on", "BOUNCEBOT_LOG_RETENTION_DAYS": "30"}, True, True, 30),
])
def test_the_settings(env, on, keep, days):
    s = Settings.from_env(env)
    assert (s.conversation_log, s.log_keep_personal_data, s.log_retention_days) == (on, keep, days)


@pytest.mark.parametrize("env", [{"BOUNCEBOT_LOG_RETENTION_DAYS": "0"}, {"BOUNCEBOT_LOG_RETENTION_DAYS": "a week"},
                                 {"BOUNCEBOT_CONVERSATION_LOG": "maybe"}])
def test_a_bad_setting_says_what_to_write(env):
    with pytest.raises(BadSetting, match=list(env)[0]):
        Settings.from_env(env)


def test_the_insights_token_is_read_and_never_shown():
    s = Settings.from_env({"BOUNCEBOT_INSIGHTS_TOKEN": " s3cret "})
    assert s.insights_token == "s3cret" and "s3cret" not in repr(s)
    assert Settings.from_env({}).insights_token is None


def test_storage_has_no_log_when_it_is_off(tmp_path):
    storage = Storage.open(Settings().with_(feedback_db=tmp_path / "f.sqlite3", conversation_log=False))
    assert storage.conversations is None
    storage.close()
    with sqlite3.connect(tmp_path / "f.sqlite3") as db:  # the table exists (one schema); nothing is in it
        assert db.execute("SELECT COUNT(*) FROM conversation_log").fetchone()[0] == 0


def test_read_only_storage_reads_the_log_and_an_old_file_leaves_it_none_saying_why(tmp_path):
    settings = Settings().with_(feedback_db=tmp_path / "f.sqlite3")
    Storage.open(settings).close()
    ro = Storage.open(settings, read_only=True)
    assert ro.conversations.count() == 0
    with pytest.raises(ConversationLogUnavailable, match="read-only"):
        ro.conversations.record(LogEntry.of(answer(), "api", 1))
    ro.close()
    with sqlite3.connect(tmp_path / "f.sqlite3") as db:
        db.execute("DROP TABLE conversation_log")
    ro = Storage.open(settings, read_only=True)
    assert ro.conversations is None and "BOUNCEBOT_FEEDBACK_DB" in ro.conversations_problem
    ro.close()


def test_the_log_stops_before_it_takes_the_room_feedback_needs(tmp_path):
    log = SqliteConversationLog(tmp_path / "f.sqlite3", cap_bytes=64 * 1024)
    with pytest.raises(ConversationLogUnavailable, match="BOUNCEBOT_FEEDBACK_MAX_MB"):
        for _ in range(200):
            log.record(LogEntry.of(answer(text="z" * 3000), "api", 1))
    assert 0 < log.count() < 200
    log.close()


# ------------------------------------------------------------------ the recorder

def test_the_recorder_returns_the_row_id_and_rates_behind_the_writes(log):
    recorder = Recorder(log, wait=5)
    log_id = recorder.record(answer(), "api", 2.0)
    assert log_id == 1 and recorder.rate(log_id, "up", "spot on") is True
    assert recorder.rate(999, "down") is False
    assert log.get(1).rating == "up" and recorder.stats()["recorded"] == 1
    recorder.close()


class BrokenLog(ConversationLog):
    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def _insert(self, *a):
        raise self.error

    _rate = _insert

    def _delete_before(self, cutoff):
        return 0


@pytest.mark.parametrize("error", [ConversationLogUnavailable("the disk is full"), sqlite3.OperationalError("locked"),
                                   RuntimeError("anything")])
def test_a_failed_write_is_counted_and_logged_never_raised(error, caplog):
    recorder = Recorder(BrokenLog(error), wait=5)
    with caplog.at_level(logging.WARNING, logger="bouncebot.conversations"):
        assert recorder.record(answer(), "api", 1) is None
        assert recorder.rate(1, "down", "x") is False
        recorder.flush()
    assert recorder.stats()["failed"] == 2
    assert any("did not keep" in r.getMessage() for r in caplog.records)
    recorder.close()


class SlowLog(SqliteConversationLog):
    def __init__(self, path, gate: threading.Event):
        super().__init__(path)
        self.gate = gate

    def _insert(self, *a):
        self.gate.wait(10)
        return super()._insert(*a)


def test_a_slow_write_does_not_hold_the_answer_and_a_full_queue_drops_and_counts(tmp_path):
    gate = threading.Event()
    log = SlowLog(tmp_path / "f.sqlite3", gate)
    recorder = Recorder(log, wait=0.01, max_queue=3)
    ids = [recorder.record(answer(question=f"q{i}"), "api", 1) for i in range(6)]
    assert ids == [None] * 6  # none written within the wait: the answers went out without an id
    gate.set()
    assert recorder.flush()
    stats = recorder.stats()
    assert stats["recorded"] + stats["dropped"] == 6 and stats["dropped"] >= 2
    assert log.count() == stats["recorded"]  # the slow rows were still written
    recorder.close()
    log.close()


def test_a_malformed_answer_is_counted_not_raised(log):
    recorder = Recorder(log)
    assert recorder.record(answer(), "cli", 1) is None
    assert recorder.stats()["failed"] == 1 and log.count() == 0
