"""Every answered message of the JSON API, the widget and the chat is recorded in the conversation
log, once, with its channel, latency and no email or phone number in the stored text; the feedback
given to it is attached; a log that is off records nothing, and one that fails never fails the
answer. The whole app in-process (``create_app`` through ``TestClient``) over services on the fake
embedder, with a real SQLite log in a temp dir."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from app.errors import ConversationLogUnavailable
from app.storage.conversations import SqliteConversationLog
from app.storage.recorder import Recorder
from app.web.api import LOG_ID_HEADER
from app.web.chat import TEXTS, ChatUI

from ..fakes import FakeFeedbackLog, fake_services
from .test_chat_fast import Scripted, last, like

PERSONAL = ("Hi Anna, my reply to maria.lopez@example.com bounced with 550 5.1.1, can you call me on "
            "+44 20 7946 0958?")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("log_index"))


@pytest.fixture
def log(tmp_path):
    log = SqliteConversationLog(tmp_path / "feedback.sqlite3")
    yield log
    log.close()


def client(services, conversations, feedback=None) -> TestClient:
    from app.web.server import create_app

    app = create_app(services, feedback or FakeFeedbackLog(), conversations=conversations)
    return TestClient(app, raise_server_exceptions=False)


def stored_text(path) -> str:
    with sqlite3.connect(path) as db:
        return "\n".join(" ".join(str(v) for v in row) for row in db.execute("SELECT * FROM conversation_log"))


def flushed(c: TestClient) -> None:
    assert c.app.state.recorder.flush()


@pytest.mark.parametrize("path, channel", [("/api/ask", "api"), ("/widget/api/ask", "widget")])
def test_each_answer_is_one_row_with_its_channel_and_its_id_in_a_header(services, log, path, channel):
    with client(services, log) as c:
        questions = ["What does 550 5.1.1 mean?", "How do I get an address off the bounce list?", "How much is Pro?"]
        ids = []
        for q in questions:
            r = c.post(path, json={"question": q})
            assert r.status_code == 200
            ids.append(int(r.headers[LOG_ID_HEADER]))
        flushed(c)
    rows = log.entries(0)
    assert [e.id for e in rows] == sorted(ids, reverse=True) and len(set(ids)) == 3
    assert {e.channel for e in rows} == {channel}
    assert [e.question for e in reversed(rows)] == questions
    assert all(e.latency_ms > 0 for e in rows)
    exact = log.get(ids[0])
    assert exact.answered and exact.codes == [{"code": "550-5.1.1", "tabled": True, "reason": "user_unknown"}]


@pytest.mark.parametrize("path, channel", [("/api/ask/stream", "api"), ("/widget/api/ask/stream", "widget")])
def test_a_streamed_answer_is_recorded_once_and_the_final_event_carries_its_id(services, log, path, channel):
    with client(services, log) as c:
        r = c.post(path, json={"question": "What does 552-5.2.2 mean?"})
        events = [json.loads(line) for line in r.text.splitlines()]
        flushed(c)
    final = events[-1]
    assert final["type"] == "final" and isinstance(final["log_id"], int)
    [e] = log.entries(0)
    assert (e.id, e.channel, e.question) == (final["log_id"], channel, "What does 552-5.2.2 mean?")


@pytest.mark.parametrize("path", ["/api/ask", "/widget/api/ask"])
def test_no_email_or_phone_number_reaches_the_stored_text(services, log, tmp_path, path):
    with client(services, log) as c:
        assert c.post(path, json={"question": PERSONAL}).status_code == 200
        flushed(c)
    text = stored_text(tmp_path / "feedback.sqlite3")
    assert "[email]" in text and "[phone]" in text
    for gone in ("maria.lopez", "@example.com", "7946 0958", "Anna"):
        assert gone not in text
    assert "550 5.1.1" in text


def test_bad_input_is_not_an_answered_message(services, log):
    with client(services, log) as c:
        assert c.post("/api/ask", json={"question": "   "}).status_code == 422
        assert c.post("/api/ask", json={}).status_code == 422
        flushed(c)
    assert log.count() == 0


def test_feedback_sent_back_with_the_log_id_is_attached_to_the_row(services, log):
    feedback = FakeFeedbackLog()
    with client(services, log, feedback) as c:
        r = c.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
        log_id = int(r.headers[LOG_ID_HEADER])
        a = r.json()
        post = {"rating": "down", "question": a["question"], "answer": a["answer"],
                "comment": "wrong row, ask John at john@example.com"}
        ok = c.post("/api/feedback", json={**post, "log_id": log_id})
        assert ok.status_code == 201 and ok.json()["log_id"] == log_id
        unknown = c.post("/api/feedback", json={**post, "log_id": log_id + 100})
        assert unknown.status_code == 201 and unknown.json()["log_id"] is None  # feedback kept, nothing attached
        without = c.post("/api/feedback", json=post)
        assert without.status_code == 201 and without.json()["log_id"] is None
        bad = c.post("/api/feedback", json={**post, "log_id": "seven"})
        assert bad.status_code == 422 and "log_id" in bad.json()["error"]
        health = c.get("/healthz").json()["conversation_log"]
    assert feedback.count() == 3
    e = log.get(log_id)
    assert (e.rating, e.comment) == ("down", "wrong row, ask [name] at [email]")
    assert health["recorded"] == 1 and health["failed"] == 0


def test_with_the_log_off_nothing_is_recorded_and_no_header_is_sent(services):
    with client(services, None) as c:
        r = c.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
        assert r.status_code == 200 and LOG_ID_HEADER not in r.headers
        assert c.post("/api/feedback", json={"rating": "up", "question": "q", "log_id": 1}).json()["log_id"] is None
        assert c.get("/healthz").json()["conversation_log"] is None
        assert c.app.state.recorder is None


class FailingLog(SqliteConversationLog):
    def _insert(self, *a):
        raise ConversationLogUnavailable("the disk is full")


def test_a_log_that_cannot_write_never_fails_the_answer(services, tmp_path):
    failing = FailingLog(tmp_path / "f.sqlite3")
    with client(services, failing) as c:
        r = c.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
        assert r.status_code == 200 and r.json()["answered"] and LOG_ID_HEADER not in r.headers
        assert c.post("/widget/api/ask", json={"question": "What does 550 5.1.1 mean?"}).status_code == 200
        flushed(c)
        assert c.get("/healthz").json()["conversation_log"]["failed"] == 2
    failing.close()


# ------------------------------------------------------------------ the chat

def test_the_chat_records_each_answer_and_its_thumbs_on_the_row(services, log):
    feedback = FakeFeedbackLog()
    recorder = Recorder(log, wait=5)
    chat = ChatUI(services.answerer, feedback_log=feedback, recorder=recorder)
    history, _, _, _, answers = last(chat.respond("What does 550 5.1.1 mean?", [], {}))
    history, _, _, _, answers = last(chat.respond(PERSONAL, history, answers))
    assert set(answers["log_ids"]) == {"1", "3"}  # the assistant messages' indexes
    status = chat.on_feedback(answers, "helpful, thanks Maria Lopez", like(3, True))
    assert status == TEXTS["feedback_up"]
    recorder.flush()
    rows = log.entries(0)
    assert [e.channel for e in rows] == ["chat", "chat"]
    newest = rows[0]
    assert newest.id == answers["log_ids"]["3"] and newest.rating == "up"
    assert "@" not in newest.question and "7946" not in newest.question
    assert feedback.count() == 1 and rows[1].rating is None


def test_a_streamed_chat_turn_is_recorded_once_at_its_final_answer(services, log):
    recorder = Recorder(log, wait=5)
    chat = ChatUI(Scripted(services.answerer, ["It ", "means ", "the address is gone."]), recorder=recorder)
    _, _, _, _, answers = last(chat.respond("What does 550 5.1.1 mean?", [], {}))
    recorder.flush()
    [e] = log.entries(0)
    assert (e.channel, e.mode, e.id) == ("chat", "llm", answers["log_ids"]["1"])


def test_the_chat_without_a_log_keeps_its_state_as_before(services):
    _, _, _, _, answers = last(ChatUI(services.answerer).respond("What does 550 5.1.1 mean?", [], {}))
    assert list(answers) == ["1"]
