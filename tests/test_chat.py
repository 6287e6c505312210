"""The Gradio chat: built without a server, then served for real on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .conftest import kb_documents

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui(answerer):
    from app.chat import ChatUI

    return ChatUI(answerer)


def test_builds_without_a_server(ui):
    import gradio as gr

    demo = ui.create_app()
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"chat", "question", "ask", "rows", "sources"} <= ids


def test_respond_shows_answer_rows_and_sources(ui):
    history, rows, sources, cleared = ui.respond("What does 550 5.1.1 mean?", [])
    assert cleared == ""
    assert history[0] == {"role": "user", "content": "What does 550 5.1.1 mean?"}
    assert history[1]["role"] == "assistant"
    assert "Confirm the customer’s email address and update the contact before sending again." in history[1]["content"]
    assert "table row **550-5.1.1**" in rows
    assert "Common delivery errors" in sources


def test_respond_keeps_the_conversation_and_marks_untabled_codes(ui):
    history, _, _, _ = ui.respond("What does 550 5.1.1 mean?", [])
    history, rows, sources, _ = ui.respond("and 550 5.7.26?", history)
    assert len(history) == 4
    assert "not in the article's table" in rows
    assert sources == "_No section cited._" or "Common delivery errors" not in sources


def test_respond_to_empty_input_is_a_message_not_a_crash(ui):
    history, rows, sources, _ = ui.respond("  ", [])
    assert "question is empty" in history[-1]["content"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_on_loopback_answers_through_the_gradio_api(services):
    import uvicorn
    from gradio_client import Client

    from app.server import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        import httpx

        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["documents"] == kb_documents() and health["table_rows"] == 7 and health["model_loaded"] is True
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        history, rows, sources, _ = client.predict("my reply bounced: 552-5.2.2", [], api_name="/ask")
        content = history[-1]["content"]  # the client hands messages back as a list of parts
        text = content if isinstance(content, str) else " ".join(part["text"] for part in content)
        assert "The recipient’s mailbox is full and cannot receive new messages." in text
        assert "552-5.2.2" in rows
    finally:
        server.should_exit = True
        thread.join(timeout=10)
