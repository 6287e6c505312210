"""The Gradio chat: built without a server, then served for real on loopback."""

from __future__ import annotations

import pytest

from .conftest import kb_documents
from .servers import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui(answerer):
    from app.chat import ChatUI

    return ChatUI(answerer)


def last(gen):
    out = None
    for out in gen:
        pass
    return out


def test_builds_without_a_server(ui):
    import gradio as gr

    demo = ui.create_app()
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"chat", "question", "ask", "cards", "sources", "comment"} <= ids


def test_answer_streams_in_and_shows_card_and_sources(ui):
    steps = list(ui.respond("What does 550 5.1.1 mean?", [], {}))
    assert len(steps) > 1  # streamed in several updates
    lengths = [len(s[0][-1]["content"]) for s in steps]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    history, cards, sources, cleared, answers = steps[-1]
    assert cleared == ""
    assert history[0] == {"role": "user", "content": "What does 550 5.1.1 mean?"}
    assert "Confirm the customer’s email address and update the contact before sending again." in history[1]["content"]
    assert 'class="bb-card bb-exact"' in cards and "permanent" in cards
    assert "Confirm the customer’s email address" in cards
    assert "Common delivery errors" in sources and "<details" in sources
    assert answers["1"]["codes"][0]["row"]["code"] == "550-5.1.1"


def test_conversation_is_kept_and_untabled_codes_are_marked(ui):
    history, _, _, _, answers = last(ui.respond("What does 550 5.1.1 mean?", [], {}))
    history, cards, _, _, answers = last(ui.respond("and 550 5.7.26?", history, answers))
    assert len(history) == 4 and set(answers) == {"1", "3"}
    assert "bb-none" in cards and "not in the table" in cards and "General guidance, not from the article" in cards


def test_html_in_the_question_is_shown_as_text(ui):
    history, cards, _, _, _ = last(ui.respond("<img src=x onerror=alert(1)> what is 550-5.1.1", [], {}))
    assert history[0]["content"] == "&lt;img src=x onerror=alert(1)&gt; what is 550-5.1.1"
    assert "<img" not in history[1]["content"] and "<img" not in cards


def test_pasted_bounce_is_shown_verbatim_in_a_block(ui):
    paste = "Delivery has failed.\n<user@example.com>: host mx said: 550 5.1.1 <b>unknown</b>"
    history, _, _, _, _ = last(ui.respond(paste, [], {}))
    assert history[0]["content"].startswith("```text\n") and "<b>unknown</b>" in history[0]["content"]


def test_empty_input_is_a_message_not_a_crash(ui):
    history, *_ = last(ui.respond("  ", [], {}))
    assert "question is empty" in history[-1]["content"]


def test_served_on_loopback_answers_through_the_gradio_api(services, tmp_path):
    from gradio_client import Client

    from app.feedback import FeedbackStore
    from app.server import create_app

    with LiveServer(create_app(services, FeedbackStore(tmp_path / "fb.sqlite3"))) as server:
        client = Client(f"{server.url}/", verbose=False)
        history, cards, sources, _ = client.predict("my reply bounced: 552-5.2.2", [], api_name="/ask")  # state is not part of the API
        content = history[-1]["content"]  # the client hands messages back as a list of parts
        text = content if isinstance(content, str) else " ".join(part["text"] for part in content)
        assert "The recipient’s mailbox is full and cannot receive new messages." in text
        assert "552-5.2.2" in cards


def test_pasted_bounce_lists_its_recipients(ui):
    from .test_lookup import DSN

    history, cards, _, _, answers = last(ui.respond(DSN, [], {}))
    assert "Failed recipients in the bounce" in cards and "pat@example.org" in cards
    assert "Status: field" in cards or "Diagnostic-Code" in cards
    assert answers["1"]["codes"][0]["row"]["code"] == "550-5.1.1"
