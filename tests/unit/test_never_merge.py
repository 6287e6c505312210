"""A code that several articles' tables hold is exact, and every row is shown,
each with its own article and section citation: never a merge. The same words
twice in one article are one row. And the "belongs to another article" hint
knows the articles the KB holds: their titles are no other article.

The export beside the real article is ``data/zendesk/`` (SYNTHETIC)."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest

from app.answering import render
from app.answering.contract import Code, Lookup
from app.answering.services import lookup_contract
from app.codes.table import CodeTable
from app.knowledge.articles import ErrorRow
from app.search.other_articles import OtherArticles

from ..fakes import KB, FakeEmbedder, fake_services, kb_rows, wording

EXPORT = Path(__file__).parent / "data" / "zendesk"
REAL = "Common Email Delivery Errors"
QUOTAS = "Mailbox Quotas for Shared Inboxes (synthetic)"
CONNECT = "Connect your custom email address"  # article 9003's title, one of other_articles.yaml's


def row(code, meaning, article="A", path=None, action="Act.", section="Codes"):
    path = path or f"{article}.md"
    return ErrorRow(code, meaning, action, article, section, f"https://h.test/{article}#codes", path, 1)


# (the table's rows, the question, the rows the answer must show as (article, meaning); [] = not exact)
CASES = [
    ("one row", [row("550-5.1.1", "Unknown.")], "550 5.1.1", [("A", "Unknown.")]),
    ("two articles, other words", [row("552-5.2.2", "Full.", "A"), row("552-5.2.2", "Over quota.", "B")],
     "552 5.2.2", [("A", "Full."), ("B", "Over quota.")]),
    ("two articles, the same words", [row("552-5.2.2", "Full.", "A"), row("552-5.2.2", "Full.", "B")],
     "552-5.2.2", [("A", "Full."), ("B", "Full.")]),
    ("one article, the same words twice", [row("552-5.2.2", "Full."), row("552-5.2.2", "Full.")],
     "552 5.2.2", [("A", "Full.")]),
    ("one article, two rows of one code", [row("552-5.2.2", "Full."), row("552-5.2.2", "Over quota.")],
     "552 5.2.2", [("A", "Full."), ("A", "Over quota.")]),
    ("the enhanced code alone, one code in two articles",
     [row("552-5.2.2", "Full.", "A"), row("552-5.2.2", "Over quota.", "B")], "5.2.2",
     [("A", "Full."), ("B", "Over quota.")]),
    # an enhanced code alone under two reply codes: each row under its own code and citation (issue 14)
    ("the enhanced code alone, two codes", [row("550-5.1.1", "Unknown.", "A"), row("551-5.1.1", "Moved.", "B")],
     "5.1.1", [("A", "Unknown."), ("B", "Moved.")]),
    ("the enhanced code alone, two codes in one article",
     [row("550-5.7.1", "Refused.", "A"), row("554-5.7.1", "Policy.", "A")], "5.7.1",
     [("A", "Refused."), ("A", "Policy.")]),
    ("the enhanced code alone, three rows in KB order",
     [row("554-5.7.1", "Policy.", "B"), row("550-5.7.1", "Refused.", "A"), row("550-5.7.1", "Blocked.", "C")],
     "5.7.1", [("B", "Policy."), ("A", "Refused."), ("C", "Blocked.")]),
    ("the full code still picks its own rows", [row("550-5.7.1", "Refused.", "A"), row("554-5.7.1", "Policy.", "B")],
     "554 5.7.1", [("B", "Policy.")]),
    ("the enhanced code alone, another enhanced code", [row("550-5.7.1", "Refused.", "A"), row("554-5.7.10", "X.", "B")],
     "5.7.1", [("A", "Refused.")]),
    ("cells written two ways", [row("552-5.2.2", "Full.", "A"), row("552 5.2.2", "Over quota.", "B")],
     "552 5.2.2", [("A", "Full."), ("B", "Over quota.")]),
    ("a bare reply code in two articles", [row("552", "Full.", "A"), row("552", "Over quota.", "B")], "552",
     [("A", "Full."), ("B", "Over quota.")]),
    ("two articles, one code each", [row("552-5.2.2", "Full.", "A"), row("550-5.1.1", "Unknown.", "B")],
     "552 5.2.2", [("A", "Full.")]),
    ("an export article and a file with one title",
     [row("552-5.2.2", "Full.", "A", "a.md"), row("552-5.2.2", "Full.", "A", "p.json#7")], "552 5.2.2",
     [("A", "Full."), ("A", "Full.")]),
]


@pytest.mark.parametrize("rows,question,shown", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_row_of_a_code_is_kept_with_its_article(rows, question, shown):
    (m,) = CodeTable(rows).lookup(question)
    assert m.exact == bool(shown)
    assert [(r.article, r.meaning) for r in m.rows] == shown
    if shown:
        assert m.row is m.rows[0] and m.explanation is None and m.related == ()
    else:
        assert m.row is None and m.rows == ()
    c = Code.of(m)  # the contract: row is the first row (what older clients read), rows all of them
    assert [(r.article, r.meaning) for r in c.rows] == shown
    assert c.row == (c.rows[0].plain() if shown else None)
    assert m.as_contract()["rows"] == [r.model_dump() for r in c.rows]


@pytest.fixture()
def two_article_kb(tmp_path) -> Path:
    kb = tmp_path / "kb"
    kb.mkdir()
    shutil.copy(KB / "common-email-delivery-errors.md", kb)
    shutil.copytree(EXPORT, kb / "export")
    return kb


def test_the_lookup_shows_each_row_with_its_citation(two_article_kb):
    table = CodeTable.from_kb(two_article_kb)
    got = lookup_contract(table, "What does 552-5.2.2 mean?")
    assert Lookup.model_validate(got.model_dump(mode="json")) == got
    (c,) = got.codes
    assert c.match == "exact" and [r.article for r in c.rows] == [REAL, QUOTAS]
    assert (c.rows[0].meaning, c.rows[0].action) == kb_rows()["552-5.2.2"]
    assert c.rows[0].url.endswith("#common-delivery-errors")
    assert c.rows[1].url == "https://help.example.test/hc/en-us/articles/9001-mailbox-quotas#quota-errors"
    text = render.lookup_text(got)
    for r in c.rows:
        assert r.meaning in text and r.action in text and r.article in text and r.url in text
    assert text.count(wording()["meaning_label"]) == 2


def test_one_row_renders_as_it_always_did(two_article_kb):
    table = CodeTable.from_kb(two_article_kb)
    alone = render.lookup_text(lookup_contract(CodeTable.from_kb(KB), "550 5.1.1"))
    assert render.lookup_text(lookup_contract(table, "550 5.1.1")) == alone


def test_the_answer_quotes_and_cites_every_row(tmp_path, two_article_kb):
    services = fake_services(tmp_path / "index", kb_dir=two_article_kb)
    a = services.answerer.ask("What does 552-5.2.2 mean?")
    (c,) = a.codes
    assert a.answered and c.match == "exact" and [r.article for r in c.rows] == [REAL, QUOTAS]
    rows = [s for s in a.sources if s.kind == "row"]
    assert [(s.article, s.row.meaning, s.url) for s in rows] == [(r.article, r.meaning, r.url) for r in c.rows]
    for r in c.rows:  # each row whole, under its own article's link
        assert r.meaning in a.answer and r.action in a.answer and f"[{r.article} › {r.section}]({r.url})" in a.answer
    assert a.answer.index(c.rows[0].meaning) < a.answer.index(c.rows[1].url) < a.answer.index(c.rows[1].meaning)


def test_a_code_only_the_export_holds_is_answered_from_it(tmp_path, two_article_kb):
    services = fake_services(tmp_path / "index", kb_dir=two_article_kb)
    a = services.answerer.ask("what is 452 4.2.2?")
    (c,) = a.codes
    assert c.match == "exact" and [r.article for r in c.rows] == [QUOTAS] and c.row.meaning in a.answer
    assert "9001-mailbox-quotas#quota-errors" in a.answer


# (the help centre's titles, the KB's titles, the titles still "other")
TITLES = [
    (["Single Sign-On", "Roles and Permissions"], ["Single Sign-On"], ["Roles and Permissions"]),
    (["Single Sign-On"], ["single sign on"], []),
    (["Single Sign-On"], ["  SINGLE   SIGN-ON  "], []),
    (["Single Sign\u2011On"], ["Single Sign-On"], []),  # a non-breaking hyphen is a hyphen
    (["Export Conversations as CSV"], ["Export conversations as CSV."], []),
    (["A", "a", "B"], [], ["A", "B"]),
    (["Roles and Permissions"], [], ["Roles and Permissions"]),
    ([], ["Anything"], []),
]


@pytest.mark.parametrize("titles,kb_titles,other", TITLES)
def test_titles_of_articles_in_the_kb_are_no_other_article(titles, kb_titles, other):
    assert OtherArticles.without(titles, kb_titles) == other


def test_the_services_point_to_other_articles_the_kb_does_not_hold(tmp_path, two_article_kb):
    alone = fake_services(tmp_path / "one").answerer
    both = fake_services(tmp_path / "two", kb_dir=two_article_kb).answerer
    before, after = alone._other_articles().titles, both._other_articles().titles
    assert CONNECT in before and CONNECT not in after
    assert [t for t in before if t != CONNECT] == after
    assert REAL not in after and QUOTAS not in after


def test_a_kb_holding_every_title_has_no_other_article(tmp_path):
    other = OtherArticles(OtherArticles.without(["Single Sign-On"], ["Single Sign-On"]), FakeEmbedder())
    assert other.closest([1.0, 0.0]) == (None, 0.0)


def test_the_chat_card_shows_every_row_under_its_own_link(tmp_path, two_article_kb):
    from app.web.chat import _card

    services = fake_services(tmp_path / "index", kb_dir=two_article_kb)
    (c,) = services.answerer.ask("What does 552-5.2.2 mean?").codes
    card = _card(c)
    for r in c.rows:  # each row's words, after its own article's link
        assert html.escape(r.meaning) in card and html.escape(r.url) in card
        assert card.index(html.escape(r.url)) < card.index(html.escape(r.meaning))
    assert card.count('class="bb-cite"') == 2


def test_rows_of_several_full_codes_each_name_their_code_on_every_surface():
    """An enhanced code alone that two reply codes table (5.1.1 under 550 and 551): the agent must
    see which row is which, in the Markdown answer, the CLI and the chat card alike."""
    from app.web.chat import _card

    table = CodeTable([row("550-5.1.1", "Unknown.", "A"), row("551-5.1.1", "Moved.", "B")])
    got = lookup_contract(table, "what is 5.1.1?")
    (c,) = got.codes
    assert c.match == "exact" and [r.code for r in c.rows] == ["550-5.1.1", "551-5.1.1"]
    markdown = render._exact(c)
    cli = render.lookup_text(got)
    card = _card(c)
    for text in (markdown, cli, card):
        for r in c.rows:  # each row's code before its words, after its citation
            at = text.index(render.table_row(r.code))
            assert text.index(r.url) < at < text.index(r.meaning), (text, r.code)
    assert render.table_row("550-5.1.1") not in markdown.split("\n")[0]  # no single "via" row in the heading


# (the rows of a code, in KB order; the groups of the same words each surface shows: (meaning, articles linked,
# how many more), in order). A row a hundred articles' tables hold word for word is quoted once, with its tables;
# different words are never merged.
SAME_WORDS = [
    ("two articles, the same words", [row("552-5.2.2", "Full.", "A"), row("552-5.2.2", "Full.", "B")],
     [("Full.", ["A", "B"], 0)]),
    ("five articles, the same words", [row("552-5.2.2", "Full.", a) for a in "ABCDE"],
     [("Full.", ["A", "B", "C"], 2)]),
    ("the same words and other words, in the order each first comes",
     [row("552-5.2.2", "Full.", "A"), row("552-5.2.2", "Quota.", "B"), row("552-5.2.2", "Full.", "C"),
      row("552-5.2.2", "Full.", "D"), row("552-5.2.2", "Full.", "E")],
     [("Full.", ["A", "C", "D"], 1), ("Quota.", ["B"], 0)]),
    ("the same meaning, another action: two rows", [row("552-5.2.2", "Full.", "A"),
                                                   row("552-5.2.2", "Full.", "B", action="Wait.")],
     [("Full.", ["A"], 0), ("Full.", ["B"], 0)]),
]


@pytest.mark.parametrize("rows, groups", [c[1:] for c in SAME_WORDS], ids=[c[0] for c in SAME_WORDS])
def test_the_same_row_in_several_tables_is_quoted_once_with_its_tables_on_every_surface(rows, groups):
    from app.web.chat import _card

    got = lookup_contract(CodeTable(rows), "what is 552 5.2.2?")
    (c,) = got.codes
    assert len(c.rows) == len(rows)  # the contract keeps every row, each with its citation
    assert [[r.article for r in g] for g in render.same_words(c.rows)] == [
        [r.article for r in c.rows if (r.meaning, r.action) == (g[0].meaning, g[0].action)] for g in
        render.same_words(c.rows)]
    for text in (render._exact(c), render.lookup_text(got), _card(c)):
        assert text.count(wording()["meaning_label"]) == len(groups), text
        at = 0
        for meaning, linked, more in groups:
            for a in linked:  # each linked table before the words it holds
                url = f"https://h.test/{a}#codes"
                assert text.index(url, at) < text.index(meaning, at), (text, a)
            words = text.index(meaning, at)
            cited = text[at:words]
            assert sum(f"https://h.test/{a}#codes" in cited for a in "ABCDE") == len(linked), (text, linked)
            assert (f"and {more} more" in cited) is (more > 0)
            at = words + len(meaning)
