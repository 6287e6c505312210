"""The chat in a real browser against `bouncebot serve --workers 2` on a real Chroma
server. Gradio's queue is per process (a session's join and its event stream must
reach the process that holds it, and gr.State lives there); uvicorn's workers take
connections in turn. So the chat runs in one process of its own and every worker
passes it through (``app.web.workers``): several agents, several turns each, while
the JSON API is kept busy so connections spread over both workers, all answered."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from ...conftest import KB
from ...servers import ChromaServer, free_port
from ..replicas import BOUNCE_LIST, Loop, Serve
from ..test_cli import run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TURNS = [("550-5.1.1", "The email address is invalid or no longer exists."),
         ("552-5.2.2", "The recipient’s mailbox is full and cannot receive new messages."),
         ("554-5.4.4", "The recipient’s mail server could not route or deliver the email.")]


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers-browser")
    with ChromaServer(tmp / "chroma") as chroma:
        env = {"BOUNCEBOT_CHROMA_URL": chroma.url, "BOUNCEBOT_COLLECTION": "workers_browser",
               "BOUNCEBOT_KB_DIR": str(KB), "BOUNCEBOT_FEEDBACK_DB": str(tmp / "feedback.db"),
               "BOUNCEBOT_INDEX_DIR": str(tmp / "unused")}
        assert run(["ingest"], env).returncode == 0
        with Serve(env, ["--workers", "2"], free_port(), tmp / "serve.log") as serve:
            yield serve


def test_three_agents_chat_through_two_workers_every_turn_answered(workers, browser: Browser):
    pages = [browser.new_context().new_page() for _ in range(3)]  # three agents: separate connection pools
    try:
        with Loop(workers.url, [BOUNCE_LIST]) as load:
            for page in pages:
                page.goto(f"{workers.url}/")
            for page in pages:
                expect(page.locator("#question textarea")).to_be_editable()
            for turn, (code, meaning) in enumerate(TURNS):
                for page in pages:  # all three ask before any answer is awaited
                    page.locator("#question textarea").fill(f"What does {code} mean?")
                    page.locator("#ask").click()
                for page in pages:
                    bots = page.get_by_test_id("bot")
                    expect(bots).to_have_count(turn + 1)
                    expect(bots.nth(turn)).to_contain_text(meaning)
                    expect(page.locator(f'#cards .bb-card.bb-exact[data-code="{code}"]')).to_be_visible()
            # a follow-up reads the conversation the chat's process holds for this session
            pages[0].locator("#question textarea").fill("ok so what now?")
            pages[0].locator("#ask").click()
            expect(pages[0].get_by_test_id("bot")).to_have_count(len(TURNS) + 1)
            expect(pages[0].get_by_test_id("bot").nth(len(TURNS))).to_contain_text("554-5.4.4")
        assert load.failures == [] and load.answers
        for page in pages:
            expect(page.locator(".toast-body.error")).to_have_count(0)
    finally:
        for page in pages:
            page.context.close()
