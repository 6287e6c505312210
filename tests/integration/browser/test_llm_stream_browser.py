"""The language-model mode streamed in a real browser (Debian's Chromium): the real local model
(the verified GGUF, in-process) behind the whole app on loopback, asked in the chat and in the widget.

A MutationObserver installed before each page loads records, on every change of the DOM, whether
the exact row is shown and whether the "the model is writing" mark is still there: the row must be
seen while the answer is still being written, then the final answer shows the row's words verbatim
and either the model's lead or the fallback mark. Skipped like the other LLM tests when the model
cannot be installed, failed under CI."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import Page, expect

from app.answering.render import WORDING, plain
from ...servers import LiveServer
from ..test_llm_door import settings as door_settings  # noqa: F401  (the door's check that the model is installed)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
QUESTION = "What does 552-5.2.2 mean?"
LONG = 150_000  # ms: the first answer pays for the model's prompt on a busy machine
FALLBACK = plain(WORDING["llm"]["fallback"]).split("{why}")[0].strip()  # "Shown without the ... summary:"

# Records every state of the page (and of the widget's frame: init scripts run in every frame).
RECORDER = """
window.__bbStates = [];
new MutationObserver(function () {
  var d = document, row = window.__bbRow, text = d.body ? d.body.textContent : "";
  window.__bbStates.push({
    row: !!row && !!Array.prototype.some.call(d.querySelectorAll("#cards [data-code], .msg.bot .card.exact"),
      function (c) { return c.textContent.indexOf(row) >= 0; }),
    writing: text.indexOf(%(chat)s) >= 0 || text.indexOf(%(widget)s) >= 0
  });
}).observe(document, { subtree: true, childList: true, characterData: true });
""" % {"chat": repr(WORDING["chat"]["llm_writing"]), "widget": repr(WORDING["widget"]["llm_writing"])}


@pytest.fixture(scope="module")
def row(services):
    (code,) = services.answerer.ask(QUESTION).codes
    return code.row


@pytest.fixture(scope="module")
def llm_server(services, feedback_log, door_settings):
    """The whole app with ``BOUNCEBOT_LLM=local``, as ``build`` makes it (the model loaded, its prefix warmed)."""
    from app.answering.services import with_llm
    from app.llm import runtime
    from app.web.server import create_app

    settings = services.settings.with_(llm=door_settings.with_(mode="local", threads=2, timeout=90.0))
    live = dataclasses.replace(services, settings=settings,
                               answerer=with_llm(settings, services.answerer, services.embedder))
    with LiveServer(create_app(live, feedback_log, settings=settings)) as s:
        yield s
    runtime.unload_all()


def recording(page: Page, row) -> Page:
    page.add_init_script(f"window.__bbRow = {row.meaning!r};\n{RECORDER}")
    return page


def streamed_first(frame_or_page) -> None:
    """The row was on the page while the model was still writing, before the final answer."""
    states = frame_or_page.evaluate("window.__bbStates")
    assert any(s["row"] and s["writing"] for s in states), states[-5:]
    assert not states[-1]["writing"] and states[-1]["row"]


def test_the_chat_shows_the_row_while_the_model_writes_then_the_final_answer(llm_server, page: Page, row):
    recording(page, row).goto(f"{llm_server.url}/")
    expect(page.locator("#question textarea")).to_be_editable()
    page.locator("#question textarea").fill(QUESTION)
    page.locator("#ask").click()
    bubble = page.get_by_test_id("bot").last
    expect(page.locator("#cards")).to_contain_text(row.meaning)
    expect(bubble).to_contain_text(WORDING["chat"]["llm_writing"], timeout=LONG)  # the draft, still growing
    expect(bubble).not_to_contain_text(WORDING["chat"]["llm_writing"], timeout=LONG)  # replaced by the final answer
    expect(bubble).to_contain_text(row.meaning)
    expect(bubble).to_contain_text(row.action)
    streamed_first(page)
    text = " ".join(bubble.inner_text().split())
    first = " ".join(bubble.locator("p").first.inner_text().split())
    assert first.startswith(FALLBACK) or row.meaning not in first, text  # the model's lead above the row, or the mark


def test_the_widget_shows_the_row_while_the_model_writes_then_the_final_answer(llm_server, page: Page, row):
    recording(page, row).goto(f"{llm_server.url}/demo")
    page.get_by_role("button", name="Open chat: Email delivery help").click()
    frame = page.frame_locator("bouncebot-widget iframe")
    frame.get_by_label("Your question").fill(QUESTION)
    frame.get_by_role("button", name="Send", exact=True).click()
    answer = frame.locator("article.msg.bot").last
    expect(answer.locator(".card.exact .meaning")).to_have_text(row.meaning, timeout=LONG)
    expect(frame.locator("article.msg.bot.streaming")).to_have_count(0, timeout=LONG)  # the final answer in its place
    expect(answer.locator(".card.exact .meaning")).to_have_text(row.meaning)
    expect(answer.locator(".card.exact .action")).to_have_text(row.action)
    expect(answer.locator(".lead, .llm-fallback")).to_have_count(1)
    if answer.locator(".llm-fallback").count():
        expect(answer.locator(".llm-fallback")).to_contain_text(FALLBACK)
    panel = page.locator("bouncebot-widget iframe").element_handle().content_frame()
    streamed_first(panel)
