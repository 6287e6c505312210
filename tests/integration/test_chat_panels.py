"""The chat's code cards, recipients and cited sections: built from the answer's
fields (``codes[].row``, ``sources[].kind``...), never from its Markdown or by
matching texts, with the labels of ``wording.yaml`` (no model needed)."""

from __future__ import annotations

import html

import gradio as gr
import pytest

from app.answering.contract import Answer, Code, Explanation, Recipient, RelatedRow, Row, Source
from app.answering.render import LABELS, WORDING
from app.web.chat import ChatUI, code_cards_html, recipients_html, sources_html

from .test_chat import FakeAnswerer

URL = "https://help.example.com/a#errors"
ROW = Row(code="552-5.2.2", meaning="Mailbox <full> & closed.", action="Try later.", section="Errors", url=URL)
OTHER = Row(code="550", meaning="General failure.", action="Check it.", section="Errors", url=URL)


def e(text: str) -> str:
    return html.escape(text, quote=True)


def answer(**parts) -> Answer:
    # The Markdown says nothing the panels could use: they must not need it.
    return Answer(question="q", answer="(Markdown the panels never read)", answered=True, **parts)


def exact_code() -> Code:
    return Code(text="5.2.2", code="5.2.2", match="exact", row=ROW, severity="permanent", explanation=None,
                related=[], reason="mailbox_full")


def untabled_code(explained: bool = True) -> Code:
    x = Explanation(meaning="Auth <failed>.", action="Set up SPF.", basis="provider", sources=["https://x.example"])
    return Code(text="550 5.7.26", code="550-5.7.26", match="none", row=None, severity="temporary",
                explanation=x if explained else None, related=[RelatedRow(**OTHER.model_dump(), shares="reply code")],
                reason=None)


def row_source(text: str) -> Source:
    return Source(kind="row", code=ROW.code, row=ROW, article="Delivery Errors", section="Errors", url=URL, text=text,
                  score=1.0)


def section_source(text: str) -> Source:
    return Source(kind="section", article="Delivery Errors", section="Bounce list", url=URL + "-list", text=text,
                  score=0.5)


def test_cards_are_the_codes_fields():
    cards = code_cards_html(answer(codes=[exact_code(), untabled_code()]))
    exact, untabled = cards.split("\n")
    assert 'class="bb-card bb-exact" data-code="5.2.2"' in exact and e(LABELS["in_table"]) in exact
    assert e(LABELS["table_row"].format(row_code="552-5.2.2")) in exact  # matched through that row
    assert f'<span class="bb-meaning">{e(ROW.meaning)}</span>' in exact and ROW.action in exact  # verbatim, escaped
    assert e(WORDING["severity_labels"]["permanent"]) in exact and "bb-permanent" in exact
    assert 'class="bb-card bb-none" data-code="550-5.7.26"' in untabled and e(LABELS["not_in_table"]) in untabled
    assert e("550-5.7.26 (temporary failure) is not in the article's table of error codes") in untabled
    assert e(f"General guidance, not from the article (from {WORDING['basis_labels']['provider']}):") in untabled
    assert e("Auth <failed>.") in untabled and "<failed>" not in untabled
    assert e("Closest in the article's table (different codes, not an exact match): 550 (reply code).") in untabled
    assert OTHER.meaning not in untabled  # a related row by its code only, never its words
    no_general = code_cards_html(answer(codes=[untabled_code(explained=False)]))
    assert e(WORDING["no_general"]) in no_general and "General guidance" not in no_general


def test_a_source_is_shown_as_what_it_says_it_is_whatever_its_text():
    sources = sources_html(answer(sources=[row_source("text that matches no row"),
                                           section_source("552-5.2.2: Mailbox <full> & closed. Try later.")]))
    row, section = sources.split("\n")
    assert "bb-source-row" in row and f'<span class="bb-meaning">{e(ROW.meaning)}</span>' in row
    assert "text that matches no row" not in row  # the row's fields are shown, not its text
    assert "bb-source-section" in section and "bb-meaning" not in section  # reads like a row: still a passage
    assert f"<blockquote>{e('552-5.2.2: Mailbox <full> & closed. Try later.')}</blockquote>" in section
    assert f'href="{URL}-list"' in section and e("Delivery Errors › Bounce list") in section


def test_the_recipients_panel_lists_each_failed_recipient_with_its_code():
    named = Recipient(recipient="pat@example.org", status="5.1.1", reply_code="550", diagnostic="d", decisive="why")
    unnamed = Recipient(recipient=None, status="5.2.2", reply_code=None, diagnostic=None, decisive="other")
    out = recipients_html(answer(recipients=[named, unnamed]))
    assert e(LABELS["recipients"]) in out and "pat@example.org" in out and "550 5.1.1" in out
    assert e(LABELS["recipient_not_named"]) in out and "(other)" in out
    assert recipients_html(answer(recipients=[unnamed])) == ""  # one unnamed recipient: nothing to list
    assert recipients_html(answer()) == ""


def test_empty_panels_say_so():
    assert e(LABELS["no_codes"]) in code_cards_html(answer()) and e(LABELS["no_sources"]) in sources_html(answer())


def test_the_panels_labels_are_the_wording_files(monkeypatch):
    for key in ("meaning_label", "action_label", "general_action_label", "no_general"):
        monkeypatch.setitem(WORDING, key, f"{key.upper()}-X")
    monkeypatch.setitem(WORDING, "not_in_table", "NOT-X **{code}** {severity_label}")
    monkeypatch.setitem(WORDING, "general_heading", "**GENERAL-X** ({basis_label}):")
    monkeypatch.setitem(WORDING, "related_line", "RELATED-X: {codes}.")
    monkeypatch.setitem(WORDING["severity_labels"], "temporary", "SEVERITY-X")
    monkeypatch.setitem(WORDING["basis_labels"], "provider", "BASIS-X")
    for key in LABELS:
        monkeypatch.setitem(LABELS, key, f"{key.upper()}-X" + (" {row_code}" if key == "table_row" else ""))
    unnamed = Recipient(recipient=None, status=None, reply_code=None, diagnostic=None, decisive="x")
    named = Recipient(recipient="a@b.example", status=None, reply_code="550", diagnostic=None, decisive="y")
    shown = (code_cards_html(answer(codes=[exact_code(), untabled_code(), untabled_code(explained=False)]))
             + sources_html(answer(sources=[row_source("t")])) + code_cards_html(answer()) + sources_html(answer())
             + recipients_html(answer(recipients=[Recipient(**{**unnamed.model_dump(), "status": "5.0.0"}), named,
                                                  Recipient(**{**named.model_dump(), "reply_code": None})])))
    expected = ["MEANING_LABEL-X:", "ACTION_LABEL-X:", "GENERAL_ACTION_LABEL-X:", "NO_GENERAL-X",
                "NOT-X 550-5.7.26 SEVERITY-X", "GENERAL-X (BASIS-X):", "RELATED-X: 550 (reply code).", "SEVERITY-X",
                "TABLE_ROW-X 552-5.2.2", "IN_TABLE-X", "NOT_IN_TABLE-X", "NO_CODES-X", "NO_SOURCES-X",
                "RECIPIENTS-X", "RECIPIENT_NOT_NAMED-X", "NO_CODE-X"]
    assert [x for x in expected if e(x) not in shown] == []


def _component(demo, kind, **attrs):
    return [b for b in demo.blocks.values() if isinstance(b, kind)
            and all(getattr(b, k, None) == v for k, v in attrs.items())]


def test_the_page_texts_are_the_wording_files(monkeypatch):
    texts = WORDING["chat"]
    for key in ("intro", "conversation", "question", "placeholder", "ask", "clear", "comment", "codes", "sources"):
        monkeypatch.setitem(texts, key, f"{key.upper()}-X")
    demo = ChatUI(FakeAnswerer(), title="Desk").create_app()
    assert _component(demo, gr.Button, value="ASK-X", elem_id="ask") and _component(demo, gr.Button, value="CLEAR-X")
    assert _component(demo, gr.Textbox, label="QUESTION-X", placeholder="PLACEHOLDER-X", elem_id="question")
    assert _component(demo, gr.Textbox, label="COMMENT-X") and _component(demo, gr.Chatbot, label="CONVERSATION-X")
    markdown = [b.value for b in _component(demo, gr.Markdown)]
    assert "## Desk\nINTRO-X" in markdown and "### CODES-X" in markdown and "### SOURCES-X" in markdown


@pytest.mark.parametrize("liked,key", [(True, "feedback_up"), (False, "feedback_down")])
def test_feedback_statuses_are_the_wording_files(tmp_path, liked, key):
    from app.web.feedback import FeedbackLog

    answers = {"1": FakeAnswerer().ask("550 5.1.1").to_dict()}
    like = gr.LikeData(target=None, data={"index": 1, "value": "a", "liked": liked})
    assert ChatUI(FakeAnswerer()).on_feedback(answers, "", like) == WORDING["chat"]["feedback_off"]
    ui = ChatUI(FakeAnswerer(), feedback_log=FeedbackLog(tmp_path / "fb.sqlite3"))
    assert ui.on_feedback(answers, "", like) == WORDING["chat"][key]
    assert ui.on_feedback({}, "", like) == WORDING["chat"]["feedback_no_answer"]


def test_a_turn_keeps_the_answer_as_json_for_feedback():
    *_, answers = list(ChatUI(FakeAnswerer()).respond("What does 550 5.1.1 mean?", [], {}))[-1]
    assert Answer.model_validate(answers["1"]).question == "What does 550 5.1.1 mean?"
