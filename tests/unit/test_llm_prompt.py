"""What the model is asked per message (app/answering/llm/prompt.py): short, because each token of it
is processed per question: sections named, not quoted (the cached prefix holds the whole article),
only the cited rows' own two sentences, the newest turns cut short.
Real default answers on the fake embedder; no model."""

from __future__ import annotations

import pytest

from app.answering.contract import Turn
from app.answering.llm.prompt import HISTORY_TURNS, MAX_TOKENS, QUESTION_CHARS, TURN_CHARS, task_for

from ..fakes import fake_services, kb_articles, kb_rows, wording

W = wording()["llm"]["prompt"]


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("llm_prompt_index")).answerer


def _task(answerer, question, history=()):
    turns = [Turn(role=r, content=c) for r, c in history]
    return task_for(answerer.ask(question, [t.model_dump() for t in turns]), answerer.bounded(turns))


def _passage_texts() -> list[str]:
    return [b.text for a in kb_articles() for s in a.sections for b in s.blocks if len(b.text) > 80]


@pytest.mark.parametrize("question", ["What does 552-5.2.2 mean?", "bounced with 421 4.7.28",
                                      "How do I get an address off the bounce list?",
                                      "her mailbox is full, what can I do?"])
def test_the_prompt_names_sections_and_holds_only_the_cited_rows(answerer, question):
    task = _task(answerer, question)
    assert task is not None and task.kind == "lead"
    assert task.text.startswith(W["lead"])  # the same first words for every lead: the slot's cache covers them
    assert task.text.endswith(W["question"].format(question=question))
    for code, (meaning, action) in kb_rows().items():
        cited = code in task.codes
        assert (meaning in task.text, action in task.text) == (cited, cited), code
    assert not [p for p in _passage_texts() if p in task.text]  # no passage quoted: they are in the prefix
    assert task.reference  # the guard still checks against the whole rows and passages
    rows = sum(len(m) + len(a) for code, (m, a) in kb_rows().items() if code in task.codes)
    assert len(task.text) - len(W["lead"]) - rows < 300  # the rest a question pays for beyond the instruction


def test_a_cited_row_is_named_by_code_and_a_section_by_its_heading(answerer):
    row = _task(answerer, "What does 552-5.2.2 mean?")
    assert "table row 552-5.2.2 (" in row.text and "552-5.2.2" in row.codes
    section = _task(answerer, "How do I get an address off the bounce list?")
    assert '"' in section.text.split("\n")[1] and section.codes == ()
    assert W["no_codes"] in section.text


def test_only_the_newest_turns_are_read_each_cut_short(answerer):
    old = "What does 550-5.1.1 mean? " * 3
    history = [("user", old), ("assistant", "x " * 400), ("user", "What does 552-5.2.2 mean?"),
               ("assistant", "552-5.2.2: the mailbox is full. " * 20)]
    task = _task(answerer, "ok so what now?", history)
    assert task is not None and task.kind == "lead"
    assert old.strip() not in task.text  # older than the newest HISTORY_TURNS
    turns = [line for line in task.text.split("\n") if line.startswith(("user:", "assistant:"))]
    assert len(turns) == HISTORY_TURNS and all(len(t) <= TURN_CHARS + len("assistant: …") + 2 for t in turns)


def test_a_long_question_is_cut_in_the_prompt_only(answerer):
    question = "How do I get an address off the bounce list? " + "please help " * 100
    task = _task(answerer, question)
    assert task is not None and len(task.text.split("Question: ", 1)[1]) <= QUESTION_CHARS + 2


def test_a_lead_is_short_and_one_paragraph(answerer):
    task = _task(answerer, "What does 552-5.2.2 mean?")
    assert task.max_tokens == MAX_TOKENS["lead"] <= 100 and task.stop == ["\n\n"]
    draft_history = [("user", "What does 552-5.2.2 mean?"), ("assistant", "…")]
    draft = _task(answerer, "can you write something I can text the customer about this?", draft_history)
    assert draft.kind == "draft" and draft.stop == []  # a message may have paragraphs


def test_a_section_of_an_article_the_prefix_does_not_hold_is_quoted(answerer):
    """Many articles do not fit the context: the prefix holds some (app/llm/prefix.py) and the
    message quotes the cited passages of the others instead of naming a section the model never read."""
    a = answerer.ask("How do I get an address off the bounce list?")
    section = next(s for s in a.sources if s.kind == "section")
    named = task_for(a, [], frozenset({section.article})).text
    quoted = task_for(a, [], frozenset()).text
    assert W["section"].format(section=section.section) in named and section.article not in named
    assert f'of "{section.article}"' in quoted and " ".join((section.focused or section.text).split())[:60] in quoted


def test_the_prefix_holds_the_articles_that_fit_those_with_error_tables_first():
    from app.llm.prefix import INSTRUCTIONS, _tokens, article_text, build_prefix

    real = kb_articles()[0]
    room = _tokens(INSTRUCTIONS) + _tokens(article_text(real))
    other = real.__class__(path="other.md", title="Merging conversations", subtitle="", url="https://x.invalid/m",
                           sections=real.sections[:1], rows=[])
    both = build_prefix([other, real], budget=room + _tokens(article_text(other)))
    assert both.articles == {real.title, other.title}
    assert both.messages[0].content.index(other.title) < both.messages[0].content.index(real.title)  # KB order kept
    only = build_prefix([other, real], budget=room)  # room for one: the article with the error table
    assert only.articles == {real.title} and other.title not in only.messages[0].content
    assert build_prefix([other, real], budget=10).articles == frozenset()
