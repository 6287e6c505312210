"""The conversation log end to end: the real model and index, the whole app served on loopback
(``create_app`` with a real SQLite log in a temp dir), and each surface asked for real: the JSON
API, the widget's API and the Gradio chat (through ``gradio_client``). One row per answered
message with its channel; no email address or phone number in the stored text; the thumbs sent
back with the API's log id attached to its row."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from app.storage.conversations import SqliteConversationLog
from app.web.api import LOG_ID_HEADER

from ..servers import LiveServer

pytestmark = pytest.mark.slow
PERSONAL = ("Hi Anna, my reply to maria.lopez@example.com bounced with 552-5.2.2. Her phone is "
            "+44 20 7946 0958. Thanks,\nJohn Doe")


@pytest.fixture(scope="module")
def served(services, feedback_log, tmp_path_factory):
    from app.web.server import create_app

    path = tmp_path_factory.mktemp("conversation-log") / "feedback.sqlite3"
    log = SqliteConversationLog(path)
    app = create_app(services, feedback_log, conversations=log)
    with LiveServer(app) as server:
        yield server, app, log, path
    log.close()


def test_each_surface_records_its_answers_with_its_channel_and_no_personal_data(served):
    from gradio_client import Client

    server, app, log, path = served
    before = log.count()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        api = c.post("/api/ask", json={"question": PERSONAL})
        widget = c.post("/widget/api/ask", json={"question": "How do I get an address off the bounce list?"})
        refused = c.post("/api/ask", json={"question": "What does the Enterprise plan cost per seat?"})
        assert c.post("/api/ask", json={"question": ""}).status_code == 422  # not an answered message
    assert api.status_code == widget.status_code == refused.status_code == 200
    Client(f"{server.url}/", verbose=False).predict("What does 550 5.1.1 mean?", [], api_name="/ask")
    assert app.state.recorder.flush()
    rows = {e.id: e for e in log.entries(0)}
    assert len(rows) == before + 4
    assert rows[int(api.headers[LOG_ID_HEADER])].channel == "api"
    assert rows[int(widget.headers[LOG_ID_HEADER])].channel == "widget"
    gave_up = rows[int(refused.headers[LOG_ID_HEADER])]
    assert gave_up.refused and not gave_up.answered
    [chat] = [e for e in rows.values() if e.channel == "chat"]
    assert chat.question == "What does 550 5.1.1 mean?" and chat.codes[0]["tabled"]
    pasted = rows[int(api.headers[LOG_ID_HEADER])]
    assert pasted.codes[0]["code"] == "552-5.2.2" and "552-5.2.2" in pasted.question
    with sqlite3.connect(path) as db:
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM conversation_log") for v in row)
    for gone in ("maria.lopez", "@example.com", "7946 0958", "Anna", "John Doe"):
        assert gone not in stored


def test_thumbs_sent_back_with_the_log_id_land_on_the_row(served):
    server, app, log, _ = served
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/api/ask", json={"question": "What does 421-4.7.28 mean?"})
        log_id = int(r.headers[LOG_ID_HEADER])
        a = r.json()
        posted = c.post("/api/feedback", json={"rating": "down", "question": a["question"], "answer": a["answer"],
                                               "comment": "call me at 555-010-9999", "log_id": log_id})
        assert posted.status_code == 201 and posted.json()["log_id"] == log_id
    e = log.get(log_id)
    assert (e.rating, e.comment) == ("down", "call me at [phone]")
