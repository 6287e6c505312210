"""The agents' chat, fast, at its edges: ``ChatUI.respond`` over the real answerer on fake services
(no model, no server), for the messages it refuses, hostile text (shown as text, reaching no card),
the feedback it saves or says it cannot, and the Gradio app it builds. What it shows for a question
(cards, sources, recipients, the conversation, the language-model stream) is in ``test_chat_fast.py``,
whose helpers read the HTML as a browser would."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest

from app.errors import EmptyQuestion
from app.web.chat import ChatUI

from ..fakes import FakeFeedbackLog, FakeRetriever, chunk, hit, services_with
from .test_chat_fast import ARTICLE, Page, feedback, last, like, render, services, squash, ui  # noqa: F401 - fixtures


# ------------------------------------------------------------------ refusals

@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
def test_an_empty_message_is_answered_with_what_to_do(ui, message):
    history, cards, sources, _, answers = last(ui.respond(message, [], {}))
    assert len(history) == 2 and answers == {}
    assert squash(str(EmptyQuestion())) in render(history[-1]["content"]).shown


def test_a_message_over_the_limit_is_refused_as_text(ui, services):
    limit = services.settings.max_question_bytes
    question = "![p](http://evil.example/too-long.png) " + "x" * limit
    history, *_ = last(ui.respond(question, [], {}))
    bubble, refusal = render(history[0]["content"]), render(history[1]["content"])
    assert bubble.tags == ["p"] and not bubble.attrs
    assert refusal.tags == ["p"] and f"{limit:,}" in refusal.shown


# ------------------------------------------------------------- hostile text

HOSTILE = [
    "<img src=x onerror=alert(1)> what is 550-5.1.1",
    "<script>alert(1)</script> 550 5.7.26",
    "![p](http://evil.example/one.png) 552 5.2.2",
    "[link](http://evil.example) and [y](javascript:alert(1)) 554",
    "<a href='http://evil.example'>click</a> <svg onload=alert(1)> 421 4.7.28",
    "&lt;img src=http://evil.example/e.png&gt; &#60;b&#62; 5.1.1",
    "http://evil.example/bare www.evil.example pat@evil.example",
    "Delivery failed\n<b>550 5.1.1</b> <img src=http://evil.example/x.png>\n```\n<script>x</script>",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_text_is_shown_as_text_and_reaches_no_card(ui, payload):
    history, cards, sources, _, answers = last(ui.respond(payload, [], {}))
    bubble = render(history[0]["content"])
    assert set(bubble.tags) <= {"p", "pre", "code"} and not [a for a in bubble.attrs if a[0] != "class"]
    answer = render(history[1]["content"])
    assert not {"img", "script", "svg", "iframe", "form", "input"} & set(answer.tags)
    hrefs = [v for k, v in answer.attrs if k == "href"]
    assert all(h.startswith(ARTICLE.url) for h in hrefs), hrefs
    for html in (cards, sources):
        page = Page(html)
        assert not {"img", "script", "svg", "iframe", "form", "input"} & set(page.tags)
        assert "evil" not in " ".join(str(v) for _, v in page.attrs)
        assert not [k for k, _ in page.attrs if k.startswith("on")]


def test_hostile_text_in_a_passage_is_escaped_in_the_sources(services):
    """Sources and cards are built as text, whatever the passage holds."""
    doc = chunk("Troubleshooting message delivery failures")
    hostile = dataclasses.replace(doc, text="<script>alert(1)</script> <img src=x onerror=alert(2)> & more",
                                  metadata={**doc.metadata, "section": "<b onmouseover=alert(3)>Trouble</b>"})
    chat = ChatUI(services_with(services, FakeRetriever([hit(hostile, 0.9)])).answerer)
    _, _, sources, _, answers = last(chat.respond("the error keeps happening, what should I check?", [], {}))
    assert answers["1"]["sources"][0]["text"] == hostile.text
    page = Page(sources)
    assert not {"script", "img", "b"} & set(page.tags) and not [k for k, _ in page.attrs if k.startswith("on")]
    assert "<script>alert(1)</script>" in page.shown and "<b onmouseover=alert(3)>Trouble</b>" in page.shown


# ------------------------------------------------------------------ feedback

def test_thumbs_down_stores_the_answer_as_shown(ui, feedback):
    _, _, _, _, answers = last(ui.respond("how much does a seat cost?", [], {}))
    before = feedback.count()
    status = ui.on_feedback(answers, "should name the billing article", like(1, False))
    assert "saved" in status and feedback.count() == before + 1
    saved = feedback.all("down")[-1]
    a = answers["1"]
    assert (saved.question, saved.answer, saved.answered, saved.comment) == (
        a["question"], a["answer"], a["answered"], "should name the billing article")
    assert saved.codes == a["codes"] and saved.sources == a["sources"]


def test_feedback_that_cannot_be_saved_says_so(services):
    from app.web import feedback as fb

    log = FakeFeedbackLog(fail_with=fb.FeedbackUnavailable("The feedback database was deleted or replaced."))
    chat = ChatUI(services.answerer, feedback_log=log)
    _, _, _, _, answers = last(chat.respond("What does 550 5.1.1 mean?", [], {}))
    status = chat.on_feedback(answers, "", like(1, True))
    assert status.startswith("⚠️") and "deleted" in status and log.count() == 0
    assert "no answer" in chat.on_feedback(answers, "", like(7, True))


def test_the_chat_builds_without_a_server(services):
    demo = ChatUI(services.answerer).create_app()
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"chat", "question", "ask", "cards", "sources", "comment"} <= ids
    chatbot = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "chat")
    assert chatbot.sanitize_html is True and chatbot.latex_delimiters == []
