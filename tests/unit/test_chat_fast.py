"""The agents' chat, fast: ``ChatUI.respond`` over the real answerer on fake
services (no model, no server), for what it shows: cards, sources, a pasted
bounce's recipients, the conversation kept, and the language-model mode's
stream. Cards and sources are read as a browser would (parsed HTML, text
unescaped); Markdown is rendered with CommonMark. Refusals, hostile text,
feedback and the app's build are in ``test_chat_fast_guards.py`` (which uses
the helpers here). The same chat over the real model and served for real is in
``tests/integration/test_chat.py``."""

from __future__ import annotations

import dataclasses
import inspect
from html.parser import HTMLParser

import gradio as gr
import pytest

from app.errors import SearchUnavailable
from app.web.chat import STREAM_STEPS, ChatUI

from ..fakes import FakeFeedbackLog, FakeRetriever, fake_services, kb_articles, kb_rows, services_with, wording
from .test_lookup import DSN

ROWS = kb_rows()
(ARTICLE,) = kb_articles()


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("chat_index"))


@pytest.fixture(scope="module")
def feedback():
    return FakeFeedbackLog()


@pytest.fixture(scope="module")
def ui(services, feedback):
    return ChatUI(services.answerer, feedback_log=feedback)


# ------------------------------------------------------------------ helpers

def last(updates):
    out = None
    for out in updates:
        pass
    return out


class Page(HTMLParser):
    """Tags, attributes and text of an HTML fragment; the text of each element with a ``data-code``."""

    VOID = {"br", "img", "input", "hr", "meta", "link", "wbr", "source", "area", "col", "embed"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.cards: dict[str, list[str]] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, data-code of the card it opens)
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag in self.VOID:
            return
        code = dict(attrs).get("data-code")
        if code is not None:
            self.cards[code] = []
        self._open.append((tag, code))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        self.text.append(data)
        for _, code in self._open:
            if code is not None:
                self.cards[code].append(data)

    @property
    def shown(self) -> str:
        return " ".join("".join(self.text).split())

    def card(self, code: str) -> str:
        return " ".join("".join(self.cards[code]).split())


def squash(text: str) -> str:
    return " ".join(text.split())


def render(markdown: str) -> Page:
    """``markdown`` as the chat's renderer would turn it into HTML (CommonMark, raw HTML allowed)."""
    from markdown_it import MarkdownIt

    return Page(MarkdownIt("commonmark").render(inspect.cleandoc(markdown)))


def like(index: int, liked: bool) -> gr.LikeData:
    return gr.LikeData(target=None, data={"index": index, "value": "", "liked": liked})


# -------------------------------------------------------------------- cards

def test_an_exact_code_streams_in_with_its_card_and_sources(ui, services):
    question = "What does 550 5.1.1 mean?"
    updates = list(ui.respond(question, [], {}))
    lengths = [len(u[0][-1]["content"]) for u in updates]
    assert 1 < len(updates) <= STREAM_STEPS and lengths == sorted(lengths)
    history, cards, sources, cleared, answers = updates[-1]
    expected = services.answerer.ask(question).to_dict()
    assert answers == {"1": expected} and cleared == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert render(history[0]["content"]).shown == question and history[1]["content"] == expected["answer"]
    meaning, action = ROWS["550-5.1.1"]
    card = Page(cards).card("550-5.1.1")
    assert squash(meaning) in card and squash(action) in card and "permanent" in card
    shown = Page(sources).shown
    assert "Common delivery errors" in shown and ARTICLE.title in shown
    assert ARTICLE.section_url("Common delivery errors") in [v for k, v in Page(sources).attrs if k == "href"]
    # The link names the section alone (the answer's "— " citation dash is not part of it).
    assert f"{ARTICLE.title} › Common delivery errors" in [t.strip() for t in Page(sources).text]


@pytest.mark.parametrize("question,code", [("what is 550 5.7.26?", "550-5.7.26"), ("error 554", "554"),
                                           ("got 450 4.2.2", "450-4.2.2")])
def test_an_untabled_code_gets_a_card_marked_not_in_the_table(ui, services, question, code):
    _, cards, _, _, answers = last(ui.respond(question, [], {}))
    c = answers["1"]["codes"][0]
    card = Page(cards).card(code).lower()
    assert c["match"] == "none" and "not in the" in card and "table" in card
    assert "not from the article" in card  # the general guidance says what it is
    assert squash(c["explanation"]["meaning"]).lower() in card
    for meaning, action in ROWS.values():  # none of the table's words on the card
        assert squash(meaning).lower() not in card and squash(action).lower() not in card
    for r in c["related"]:  # the closest rows by code, offered as such
        assert r["code"].lower() in card


def test_a_question_with_both_kinds_gets_one_card_each_in_order(ui):
    _, cards, _, _, answers = last(ui.respond("550 5.1.1 then 550 5.7.26", [], {}))
    page = Page(cards)
    assert list(page.cards) == ["550-5.1.1", "550-5.7.26"]
    assert squash(ROWS["550-5.1.1"][0]) in page.card("550-5.1.1")
    assert squash(ROWS["550-5.1.1"][0]) not in page.card("550-5.7.26")


def test_a_question_without_codes_shows_no_card_but_its_sources(ui):
    _, cards, sources, _, answers = last(ui.respond("How do I get an address off the bounce list?", [], {}))
    assert Page(cards).cards == {} and answers["1"]["codes"] == []
    assert "Email address is on a bounce list" in Page(sources).shown


def test_a_pasted_bounce_lists_its_recipients(ui):
    history, cards, _, _, answers = last(ui.respond(DSN, [], {}))
    assert history[0]["content"].startswith("```") and "<pat@example.org>" in history[0]["content"]
    assert [r["recipient"] for r in answers["1"]["recipients"]] == ["pat@example.org"]
    shown = Page(cards).shown
    assert "pat@example.org" in shown and "5.1.1" in shown
    assert answers["1"]["codes"][0]["row"]["code"] == "550-5.1.1"


def test_each_recipient_shows_its_verdicts_badges_and_sentence_as_text(services):
    """Issue 12: per recipient a badge (hard/soft; suppress/keep) and one sentence, labelled as ours."""
    from app.answering.answerer import Answerer

    from .test_verdict_surfaces import HOSTILE, USER_UNKNOWN, verdict_table

    verdict = dataclasses.replace(USER_UNKNOWN, evidence=HOSTILE)
    answerer = Answerer(verdict_table(services.table, verdict=verdict), lambda: FakeRetriever(),
                        support=services.answerer.support)
    history, cards, _, _, answers = last(ChatUI(answerer).respond(DSN, [], {}))
    v, page = wording()["verdict"], Page(cards)
    assert answers["1"]["recipients"][0]["verdict"] == dataclasses.asdict(verdict)
    classes = [value for name, value in page.attrs if name == "class"]
    assert "bb-badge bb-verdict bb-hard" in classes and "bb-badge bb-verdict bb-suppress" in classes
    for text in (v["label"], v["hard"], v["suppress"], v["reasons"]["userunknown"], v["retry"]["no"],
                 " ".join(HOSTILE.split())):  # the evidence on one line, as it was pasted
        assert text in page.shown
    assert {"img", "a", "h1", "em", "strong"}.isdisjoint(page.tags) and "code" in page.tags
    answer = render(history[1]["content"])  # the bubble: the same verdict, the evidence as code
    assert v["reasons"]["userunknown"] in answer.shown and "img" not in answer.tags and "h1" not in answer.tags


def test_a_delay_warning_and_an_autoreply_say_what_they_are():
    from app.answering.contract import Answer, Recipient
    from app.web.chat import recipients_html

    w = wording()
    delayed = Recipient(recipient="pat@example.org", status="4.2.2", reply_code="452", diagnostic=None,
                        decisive="why", action="delayed",
                        verdict={"reason": "mailboxfull", "hard": False, "retry": "wait", "suppress": False,
                                 "evidence": None, "basis": "status"})
    page = Page(recipients_html(Answer(question="q", answer="", answered=True, recipients=[delayed],
                                       message_kind="delay")))
    assert page.text[:2] == [w["message_kinds"]["delay"], w["labels"]["recipients_delayed"]]
    classes = [value for name, value in page.attrs if name == "class"]
    assert "bb-badge bb-verdict bb-delayed" in classes and "bb-badge bb-verdict bb-keep" in classes
    assert w["verdict"]["hard"] not in page.shown and w["verdict"]["soft"] not in page.shown
    auto = Page(recipients_html(Answer(question="q", answer="", answered=False, message_kind="autoreply")))
    assert auto.shown == w["message_kinds"]["autoreply"]
    assert recipients_html(Answer(question="q", answer="", answered=False, message_kind="failure")) == ""


def test_the_conversation_is_kept(ui):
    history, _, _, _, answers = last(ui.respond("What does 550 5.1.1 mean?", [], {}))
    history, cards, _, _, answers = last(ui.respond("and 550 5.7.26?", history, answers))
    assert len(history) == 4 and set(answers) == {"1", "3"}
    assert answers["1"]["codes"][0]["code"] == "550-5.1.1" and answers["3"]["codes"][0]["code"] == "550-5.7.26"
    assert list(Page(cards).cards) == ["550-5.7.26"]


def test_a_long_answer_streams_in_a_bounded_number_of_updates(ui):
    paste = "; ".join(f"450 4.{i // 10}.{i % 10}" for i in range(60))
    updates = list(ui.respond(paste, [], {}))
    assert len(updates) <= STREAM_STEPS and updates[-1][0][-1]["content"] == updates[-1][4]["1"]["answer"]


def test_without_search_a_code_is_still_shown_with_the_notice(services):
    problem = "the vector store did not answer the search within 2 s"
    chat = ChatUI(services_with(services, FakeRetriever(SearchUnavailable(problem))).answerer)
    history, cards, _, _, _ = last(chat.respond("what is 550 5.7.26?", [], {}))
    assert "550-5.7.26" in Page(cards).cards
    assert wording()["search_unavailable"].format(problem=problem) in history[-1]["content"]


# ------------------------------------------------------------------ the language-model mode: streamed token by token

HOSTILE_LEAD = "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1)) `code`"


class Scripted:
    """A stand-in for the language-model answerer: the real default answer as the skeleton, then
    ``tokens``, then a final answer with the model's lead kept (``fallback=None``) or marked."""

    def __init__(self, inner, tokens: list[str], fallback: str | None = None):
        self.inner, self.tokens, self.fallback = inner, list(tokens), fallback

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def final(self, base):
        from app.answering import render
        from app.answering.contract import LLMReport

        generated = "".join(self.tokens).strip()
        if self.fallback:
            report = LLMReport(model="scripted", used=False, fallback=self.fallback, generated=generated)
            return base.model_copy(update={"mode": "default", "llm": report,
                                           "answer": render.fallback_mark(self.fallback, base.answer)})
        report = LLMReport(model="scripted", used=True, generated=generated)
        return base.model_copy(update={"mode": "llm", "llm": report, "answer": render.with_lead(generated, base.answer)})

    def stream_ask(self, question, history=None):
        base = self.inner.ask(question, history)  # raises BadQuestion before the first event, as the real one
        yield {"type": "answer_skeleton", "answer": base.to_dict()}
        for t in self.tokens:
            yield {"type": "token", "text": t}
        yield {"type": "final", "answer": self.final(base).to_dict()}


CODE = "550-5.1.1"
ASK_CODE = "What does 550 5.1.1 mean?"


def words(n: int) -> list[str]:
    return [f"word{i} " for i in range(n)]


def test_the_default_answerer_does_not_stream_tokens(services):
    from app.web.chat_stream import streams_tokens

    assert not streams_tokens(services.answerer) and streams_tokens(Scripted(services.answerer, []))


def test_llm_mode_shows_the_rows_first_then_the_tokens_then_the_final_answer(services):
    from app.web.chat_stream import FLUSH_TOKENS

    chat = ChatUI(Scripted(services.answerer, words(40)))
    updates = [(h[-1]["content"], cards, sources) for h, cards, sources, _, _ in chat.respond(ASK_CODE, [])]
    first, *middle, (final, cards, _) = updates
    writing = wording()["chat"]["llm_writing"]
    assert squash(ROWS[CODE][0]) in Page(first[1]).card(CODE) and Page(first[2]).shown and writing in first[0]  # cards and sources at once
    assert len(updates) <= 2 + 40 // FLUSH_TOKENS  # batched: not one update per token
    grown = [render(m).shown for m, _, _ in middle]
    assert grown and all(a in b or len(a) <= len(b) for a, b in zip(grown, grown[1:]))
    assert writing not in final and final.startswith("word0 word1") and squash(ROWS[CODE][0]) in render(final).shown
    assert all(c == cards for _, c, _ in updates[1:])


def test_the_batches_flush_on_count_or_on_time():
    from app.web.chat_stream import batched

    times = iter([0.0, 0.01, 0.05, 0.09, 0.10, 0.18])  # the stream starts, then five tokens come
    events = [{"type": "token", "text": "a"}] * 5
    shown = [v for k, v in batched(iter(events), clock=lambda: next(times), seconds=0.08, tokens=8) if k == "text"]
    assert shown == ["aaa", "aaaaa"]  # 90 ms, then 90 ms more: one update each; 8 tokens at once flush anyway
    events = events[:3]
    assert [v for k, v in batched(iter(events * 4), clock=lambda: 0.0, tokens=4) if k == "text"] == ["aaaa", "a" * 8, "a" * 12]


def test_a_fallback_is_shown_marked_in_place_of_the_draft(services):
    chat = ChatUI(Scripted(services.answerer, words(5), fallback="unsupported_sentence"))
    final = last(chat.respond(ASK_CODE, []))[0][-1]["content"]
    mark = wording()["llm"]["fallback"].format(why=wording()["llm"]["fallback_reasons"]["unsupported_sentence"])
    assert final.startswith(mark) and "word0" not in final and squash(ROWS[CODE][1]) in render(final).shown


def test_the_models_text_is_never_html_in_the_draft_or_the_final_answer(services):
    chat = ChatUI(Scripted(services.answerer, [HOSTILE_LEAD[:20], HOSTILE_LEAD[20:]] * 8))
    rows = services.answerer.ask(ASK_CODE).answer  # the program's Markdown, below the model's text
    for history, *_ in chat.respond(ASK_CODE, []):
        content = history[-1]["content"]
        assert content.endswith(rows)
        page = render(content[:-len(rows)])  # the model's text (and the "writing" mark)
        assert set(page.tags) <= {"p", "em"}, page.tags
    assert HOSTILE_LEAD in render(content[:-len(rows)]).shown


def test_a_bad_question_is_refused_before_any_stream(services):
    chat = ChatUI(Scripted(services.answerer, words(3)))
    (history, cards, sources, kept, _), = list(chat.respond("   ", []))
    assert kept == "   " and cards == "" and history[-1]["role"] == "assistant" and "word0" not in history[-1]["content"]
