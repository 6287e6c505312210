"""Issue 12, the surfaces: a recipient's verdict and a pasted message's kind in the
contract, the wording, the Markdown answer and the CLI (the chat's and the API's
are in ``test_chat_fast.py`` and ``test_api_fast.py``).

The codes layer's ``decide`` and kind are not what is tested here: the real
table's analysis is given verdicts and a kind of the test's choosing
(``verdict_table``), as the codes layer will give them, and every surface must
show exactly those."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from markdown_it import MarkdownIt

from app.answering import render, render_bounce
from app.answering.answerer import Answerer
from app.answering.contract import Answer, Lookup, Recipient
from app.answering.render_bounce import code_span, kind_sentence
from app.codes import bounce
from app.codes.table import CodeTable
from app.codes.verdict import RETRY, Verdict

from ..fakes import FakeRetriever, fake_services, kb_articles, wording
from .test_lookup import DSN

W = wording()
V = W["verdict"]
# Sisimai's reasons (what app.codes.verdict names); each needs a sentence of ours.
REASONS = ("userunknown mailboxfull filtered blocked expired hostunknown authfailure rejected spamdetected "
           "policyviolation suspend toomanyconn speeding networkerror systemerror notaccept norelaying securityerror "
           "mesgtoobig exceedlimit contenterror hasmoved syntaxerror virusdetected requireptr badreputation onhold "
           "mailererror notcompliantrfc systemfull failedstarttls feedback vacation delivered undefined").split()
KINDS = ("delay", "success", "autoreply", "challenge", "complaint", "not_report")  # every kind but failure
HOSTILE = "550 5.1.1 <img src=x onerror=alert(1)> **gone** [here](http://evil.example) `tick` ``two``\n# no"
USER_UNKNOWN = Verdict("userunknown", True, "no", True, "550 5.1.1 <pat@example.org>: User unknown", "text")
MAILBOX_FULL = Verdict("mailboxfull", False, "wait", False, None, "status")


def with_verdicts(a, verdict=USER_UNKNOWN, kind: str | None = None, action: str = "failed",
                  recipients: int | None = None):
    """An ``Analysis`` whose recipients have ``verdict`` and ``action`` (and the message ``kind``), as the
    codes layer will give them; ``recipients`` copies the first recipient that many times."""
    rs = [dataclasses.replace(r, action=action, verdict=verdict) for r in a.recipients]
    if recipients is not None:
        rs = [dataclasses.replace(rs[0], recipient=f"r{i}@example.org") for i in range(recipients)]
    return dataclasses.replace(a, recipients=rs, kind=kind or a.kind)


def verdict_table(table: CodeTable, **verdicts) -> CodeTable:
    """``table`` whose analysis is ``with_verdicts(analysis, **verdicts)``."""

    class WithVerdicts(CodeTable):
        def analyse(self, text):
            return with_verdicts(CodeTable.analyse(self, text), **verdicts)

    return WithVerdicts(table.rows)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("verdict_index"))


def answer(services, text=DSN, **verdicts) -> Answer:
    table = verdict_table(services.table, **verdicts)
    return Answerer(table, lambda: FakeRetriever(), support=services.answerer.support).ask(text)


def html_of(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


# ---------------------------------------------------------------- contract

def test_a_recipient_carries_its_action_and_verdict_after_the_old_fields():
    r = bounce.Recipient("pat@example.org", "5.1.1", "550", "d", "why", action="failed", verdict=USER_UNKNOWN)
    c = Recipient.of(r)
    assert list(c.model_dump())[:5] == ["recipient", "status", "reply_code", "diagnostic", "decisive"]
    assert c.action == "failed" and c.verdict.model_dump() == dataclasses.asdict(USER_UNKNOWN)
    assert Recipient.of(dataclasses.replace(r, verdict=None, action="delayed")).model_dump()["verdict"] is None
    old = {"recipient": None, "status": "5.2.2", "reply_code": None, "diagnostic": None, "decisive": "x"}
    assert Recipient.model_validate(old).model_dump() == {**old, "action": "failed", "verdict": None}


def test_the_answer_and_the_lookup_say_what_the_message_is_after_their_old_fields():
    assert list(Answer.model_fields)[-3:] == ["message_kind", "mode", "llm"]  # issue 13's two after it
    assert list(Lookup.model_fields)[-1] == "message_kind"
    assert Answer(question="q", answer="a", answered=True).message_kind is None


def test_the_answerer_and_the_lookup_carry_the_codes_layers_verdict_and_kind(services):
    d = answer(services, kind="delay", action="delayed", verdict=MAILBOX_FULL).to_dict()
    assert d["message_kind"] == "delay" and d["recipients"][0]["action"] == "delayed"
    assert d["recipients"][0]["verdict"] == dataclasses.asdict(MAILBOX_FULL)
    from app.answering.services import lookup_contract

    lookup = lookup_contract(verdict_table(services.table, kind="failure"), DSN).model_dump(mode="json")
    assert lookup["message_kind"] == "failure" and lookup["recipients"][0]["verdict"]["reason"] == "userunknown"
    assert lookup_contract(services.table, "how do I get off the bounce list?").message_kind is None  # a question


# ----------------------------------------------------------------- wording

def test_every_reason_retry_value_and_kind_has_its_own_sentence():
    assert set(REASONS) <= set(V["reasons"]) and set(V["retry"]) == set(RETRY)
    assert set(W["message_kinds"]) == set(KINDS) and kind_sentence("failure") is None and kind_sentence(None) is None
    assert {V["hard"], V["soft"], V["suppress"], V["keep"]} == {"hard bounce", "soft bounce", "suppress this address",
                                                                 "keep the address"}
    assert "not from the article" in V["label"] and V["label"] in V["heading"].format(label=V["label"])
    assert V["reasons"]["userunknown"] == "The address does not exist at the receiving server."
    assert V["retry"]["no"] == "Resending will not help: use another address or channel."
    assert W["message_kinds"]["delay"].startswith("This is a delay warning")


def test_the_verdict_wording_is_our_own_not_the_articles():
    article = " ".join(" ".join(b.text for s in a.sections for b in s.blocks) for a in kb_articles()).lower()
    article_words = re.findall(r"[a-z’']+", article)
    runs = {" ".join(article_words[i:i + 6]) for i in range(len(article_words) - 5)}
    ours = [*V["reasons"].values(), *V["retry"].values(), *W["message_kinds"].values()]
    for sentence in ours:
        words = re.findall(r"[a-z’']+", sentence.lower())
        shared = [" ".join(words[i:i + 6]) for i in range(len(words) - 5) if " ".join(words[i:i + 6]) in runs]
        assert shared == [], sentence


# ----------------------------------------------------------------- Markdown

def test_a_pasted_bounce_leads_with_each_recipient_and_its_verdict(services):
    a = answer(services)
    block, item, *_ = a.answer.split("\n\n")
    assert block == V["heading"].format(label=V["label"])  # labelled as ours, like general guidance
    assert item.split("\\\n") == [  # one list item, its lines held by hard line breaks
        "- `pat@example.org` (550 5.1.1): **hard bounce**, **suppress this address**",
        f"  {V['reasons']['userunknown']} **{V['next_label']}:** {V['retry']['no']}",
        "  Read from the bounce (the server's words): `550 5.1.1 <pat@example.org>: User unknown`"]
    html = html_of(block + "\n\n" + item)
    assert html.count("<li>") == 1 and html.count("<br />") == 2 and html.count("<code>") == 2
    without = answer(services, verdict=None)  # the same bounce with no verdict on its recipient
    assert a.answer.endswith("\n\n" + without.answer)  # the table's words follow, as they were
    assert without.recipients[0].verdict is None and V["label"] not in without.answer  # no verdict: no block


def test_a_code_quoted_in_a_question_gets_its_row_not_a_recipients_list(services):
    a = answer(services, text="What does 550 5.1.1 mean?")  # read as one unnamed recipient, with a verdict
    assert [r.recipient for r in a.recipients] == [None] and a.recipients[0].verdict is not None
    assert V["label"] not in a.answer and a.answer.startswith("**550-5.1.1**")


def test_pasted_text_in_the_verdict_stays_text_in_the_markdown(services):
    hostile = dataclasses.replace(USER_UNKNOWN, evidence=HOSTILE)
    a = answer(services, verdict=hostile)
    named = a.recipients[0].model_copy(update={"recipient": "*pat*@example.org<b>"})  # as a DSN field may name it
    for recipients in (a.recipients, [named]):
        lead = "\n\n".join(render_bounce.lead(a.message_kind, recipients))
        html = html_of(lead)
        assert "hard bounce" in html and "<img" not in html and "<a " not in html and "<h1" not in html
        assert "&lt;img src=x onerror=alert(1)&gt; **gone** [here](http://evil.example) `tick` ``two`` # no" in html
    assert a.answer.startswith("\n\n".join(render_bounce.lead(a.message_kind, a.recipients)))
    assert "<code>*pat*@example.org&lt;b&gt;</code>" in html and "<em>" not in html and "<b>" not in html


@pytest.mark.parametrize("text", ["`", "a`b", "``x``", "x\n\ny", "\x1b[31mred\x07", "   "])
def test_a_code_span_shows_any_text_as_it_is(text):
    html = html_of(f"see {code_span(text)} here")
    inner = re.fullmatch(r"<p>see <code>(.*)</code> here</p>\n", html, re.S)
    shown = render_bounce.one_line(text) or "\ufffd"
    assert inner and inner.group(1) == shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "\x1b" not in code_span(text) and "\n" not in code_span(text)


def test_a_delay_warning_leads_with_its_sentence_and_shows_recipients_delayed(services):
    a = answer(services, kind="delay", action="delayed", verdict=MAILBOX_FULL)
    first, heading, item, *_ = a.answer.split("\n\n")
    assert first == W["message_kinds"]["delay"] and heading == V["heading"].format(label=V["label"])
    assert item.startswith(f"- `pat@example.org` (550 5.1.1): **{V['actions']['delayed']}**, **{V['keep']}**\\\n")
    assert V["hard"] not in a.answer and V["soft"] not in a.answer and V["retry"]["wait"] in a.answer


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_that_is_not_a_failure_is_said_to_be_what_it_is_first(kind):
    decided = Answer(question="q", answer="", answered=False, message_kind=kind)
    assert render.markdown(decided).startswith(W["message_kinds"][kind] + "\n\n")
    assert not render.markdown(decided.model_copy(update={"message_kind": "failure"})).startswith("This is")


def test_past_ten_recipients_the_rest_are_counted(services):
    a = answer(services, recipients=13)
    assert [r.recipient for r in a.recipients][-1] == "r12@example.org"
    assert "`r9@example.org`" in a.answer and "r10@example.org" not in a.answer
    assert V["more"].format(n=3) in a.answer


# --------------------------------------------------------------------- CLI

def lookup_of(services, **verdicts) -> Lookup:
    from app.answering.services import lookup_contract

    return lookup_contract(verdict_table(services.table, **verdicts), DSN)


def test_the_cli_lines_give_each_recipients_verdict_and_the_kind(services):
    lines = render.lookup_text(lookup_of(services, verdict=dataclasses.replace(USER_UNKNOWN, evidence=HOSTILE),
                                         kind="delay")).split("\n")
    assert lines[0] == W["message_kinds"]["delay"]
    assert lines[1].startswith("Recipient pat@example.org: 550 5.1.1 (")
    assert lines[2] == f"  {V['hard']}, {V['suppress']}: {V['reasons']['userunknown']} ({V['label']})"
    assert lines[3] == f"  {V['next_label']}: {V['retry']['no']}"
    assert lines[4] == "  Read from the bounce (the server's words): " + " ".join(HOSTILE.split())  # one line


def test_bouncebot_lookup_prints_the_verdict_and_kind(services, monkeypatch, capsys):
    from app.cli import main

    original = CodeTable.analyse  # the table the command builds for itself, given verdicts
    monkeypatch.setattr(CodeTable, "analyse", lambda self, text: with_verdicts(original(self, text), kind="failure"))
    assert main(["lookup", "--json", DSN]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["message_kind"] == "failure" and d["recipients"][0]["verdict"] == dataclasses.asdict(USER_UNKNOWN)
    assert d["recipients"][0]["action"] == "failed"
    assert main(["lookup", DSN]) == 0
    out = capsys.readouterr().out
    assert f"  {V['hard']}, {V['suppress']}: {V['reasons']['userunknown']}" in out and V["retry"]["no"] in out


# ------------------------------------------------------------------ widget

def test_the_widget_is_sent_the_verdict_labels_and_every_key_panel_js_reads():
    from app.web.widget import widget_labels

    from .test_widget_panel import panel_js

    labels, _ = widget_labels()
    assert labels["verdict"]["reasons"]["userunknown"] == V["reasons"]["userunknown"]
    assert labels["verdict"]["label"] == V["label"] and labels["message_kinds"] == W["message_kinds"]
    js = panel_js()  # all the panel's scripts
    keys = re.findall(r'"((?:verdict|message_kinds|labels)\.[\w.]*\w)"', js)  # all but the "prefix." + ones
    assert {"verdict.label", "verdict.hard", "verdict.suppress", "verdict.next_label", "labels.recipients"} <= set(keys)

    def get(key):
        value = labels
        for part in key.split("."):
            value = value[part]
        return value

    assert all(isinstance(get(k), str) and get(k) for k in keys)
    for prefix, names in (("verdict.actions.", Recipient.model_fields["action"].annotation.__args__),
                          ("verdict.retry.", RETRY), ("message_kinds.", KINDS)):
        assert f'"{prefix}" +' in js and all(get(prefix + n) for n in names)
