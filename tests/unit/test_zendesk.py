"""Help-centre JSON exports (the Zendesk Help Center articles API's shape) read
into the same articles as the KB's files: pages, drafts, URLs, locales, broken
exports refused with file, line and article id, and chunk IDs stable per article.

``data/zendesk/`` is a SYNTHETIC two-page export written for these tests."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from app.errors import MalformedArticle
from app.knowledge.articles import load_articles
from app.knowledge.chunks import chunk_articles

from ..fakes import KB

EXPORT = Path(__file__).parent / "data" / "zendesk"
REAL = "Common Email Delivery Errors"


@pytest.fixture()
def kb(tmp_path) -> Path:
    """The real article beside the synthetic export, as a team would lay out kb/."""
    shutil.copy(KB / "common-email-delivery-errors.md", tmp_path)
    shutil.copytree(EXPORT, tmp_path / "export")
    return tmp_path


def page(path: Path, articles, **extra) -> Path:
    path.write_text(json.dumps({"articles": articles, "page": 1, "page_count": 1, "next_page": None, **extra},
                               indent=2), encoding="utf-8")
    return path


def article(i, **changes) -> dict:
    a = {"id": i, "title": f"Article {i}", "body": f"<p>Body of article {i}.</p><h2>Steps</h2><p>Do {i}.</p>",
         "html_url": f"https://help.example.test/hc/en-us/articles/{i}", "section_id": 1, "locale": "en-us",
         "updated_at": "2026-11-01T00:00:00Z", "draft": False}
    a.update(changes)
    return a


def test_export_pages_are_read_beside_the_files_and_drafts_are_skipped(kb):
    arts = load_articles(kb)
    assert [a.title for a in arts] == [REAL, "Mailbox Quotas for Shared Inboxes (synthetic)", "Connect your custom email address"]
    real, quotas, sso = arts
    assert (real.locale, real.source_id, real.path) == ("en", "", "common-email-delivery-errors.md")
    assert quotas.path == "export/articles-page-1.json#9001" and sso.path == "export/articles-page-2.json#9003"
    assert (quotas.source_id, quotas.locale, quotas.updated_at) == ("zendesk:9001:en-us", "en-us", "2026-11-02T10:00:00Z")
    assert quotas.url == "https://help.example.test/hc/en-us/articles/9001-mailbox-quotas"
    assert [s.heading for s in quotas.sections] == ["Introduction", "Quota errors", "Raising the quota"]
    # Citations use the article's own html_url; a section adds its anchor.
    assert [(r.code, r.article, r.url) for r in quotas.rows] == [
        ("552-5.2.2", quotas.title, quotas.url + "#quota-errors"),
        ("452-4.2.2", quotas.title, quotas.url + "#quota-errors"),
    ]
    assert quotas.rows[0].meaning == "The shared inbox on the receiving side is over its storage quota."
    assert all("Draft" not in a.title for a in arts)


def test_the_real_article_parses_as_it_did_alone(kb):
    alone = load_articles(KB)
    with_export = load_articles(kb)
    assert with_export[: len(alone)] == alone
    assert [c.id for c in chunk_articles(alone, "m")] == [c.id for c in chunk_articles(with_export, "m")][
        : len(chunk_articles(alone, "m"))]


def test_json_that_is_no_export_page_is_ignored(tmp_path):
    (tmp_path / "settings.json").write_text('{"theme": "dark"}')
    (tmp_path / "list.json").write_text("[1, 2]")
    page(tmp_path / "p.json", [article(1)])
    assert [a.title for a in load_articles(tmp_path)] == ["Article 1"]


# (what the page holds, words the message must carry, the article id named or None)
BROKEN = [
    ([article(5, title="")], "'title' must be non-empty text", "5"),
    ([article(5, title=None)], "'title' must be non-empty text", "5"),
    ([article(5, html_url=7)], "'html_url' must be non-empty text", "5"),
    ([article(5, body=["<p>"])], "'body' must be the article's HTML as text", "5"),
    ([article(5, locale=3)], "'locale' must be text", "5"),
    ([article(5, draft="no")], "'draft' must be true or false", "5"),
    ([article(None)], "has no 'id'", None),
    ([article(True)], "has no 'id'", None),
    (["not an object"], "article #2 of 'articles' is not an object", None),
    ([article(5, body="<table><tr><th>Code</th><th>Meaning</th><th>Fix</th></tr><tr><td>550</td><td></td>"
                      "<td>x</td></tr></table>")], "its body, line 1 of the HTML: table row has 2 filled cells", "5"),
]


@pytest.mark.parametrize("articles,words,article_id", BROKEN)
def test_a_broken_export_names_the_file_the_line_and_the_article(tmp_path, articles, words, article_id):
    page(tmp_path / "p.json", [article(1), *articles])
    with pytest.raises(MalformedArticle) as e:
        load_articles(tmp_path)
    assert e.value.path == "p.json" and e.value.article_id == article_id and words in str(e.value)
    assert "bouncebot ingest" in str(e.value)
    if article_id is not None:  # the line is the one holding the article's id
        lines = (tmp_path / "p.json").read_text().splitlines()
        assert f'"id": {article_id}' in lines[e.value.line - 1]


@pytest.mark.parametrize("text,line", [('{"articles": [\n  {"id": 1,}\n]}', 2), ('{"articles": {"id": 1}}', 1),
                                       ("{\n\n  articles: []}", 3)])
def test_a_page_that_is_not_an_export_is_refused_with_its_line(tmp_path, text, line):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(MalformedArticle) as e:
        load_articles(tmp_path)
    assert (e.value.path, e.value.line) == ("p.json", line)


def test_an_article_id_on_two_pages_is_refused_naming_both(tmp_path):
    page(tmp_path / "a.json", [article(1), article(2)])
    page(tmp_path / "b.json", [article(3), article(2, title="Again")])
    with pytest.raises(MalformedArticle) as e:
        load_articles(tmp_path)
    assert e.value.path == "b.json" and e.value.article_id == "2" and "also in a.json" in str(e.value)


def test_a_translation_shares_its_articles_id_and_keeps_its_locale(tmp_path):
    page(tmp_path / "a.json", [article(1), article(1, locale="de", title="Artikel 1", body="<p>Text.</p>")])
    en, de = load_articles(tmp_path)
    assert (en.locale, de.locale) == ("en-us", "de") and en.source_id != de.source_id
    ids = [c.id for c in chunk_articles([en, de], "m")]
    assert len(ids) == len(set(ids))


def test_a_page_with_only_drafts_gives_no_article(tmp_path):
    page(tmp_path / "p.json", [article(1, draft=True)])
    assert load_articles(tmp_path) == []


def test_chunk_ids_are_unique_and_stable_per_article_whichever_page_holds_it(tmp_path):
    same = "<p>Same words.</p><h2>Steps</h2><p>Same steps.</p>"
    page(tmp_path / "p1.json", [article(1, body=same), article(2, body=same)])
    first = chunk_articles(load_articles(tmp_path), "m")
    assert len({c.id for c in first}) == len(first) == 4  # two articles with the same words: 4 documents
    # A re-export paginates differently: article 2 moves to page 2; its IDs do not change.
    (tmp_path / "p1.json").unlink()
    page(tmp_path / "p1.json", [article(1, body=same)])
    page(tmp_path / "p2.json", [article(2, body=same)])
    assert {c.id for c in chunk_articles(load_articles(tmp_path), "m")} == {c.id for c in first}
    # An edited body is new documents.
    page(tmp_path / "p2.json", [article(2, body=same.replace("Same steps", "New steps"))])
    again = {c.id for c in chunk_articles(load_articles(tmp_path), "m")}
    assert len(again - {c.id for c in first}) == 1


def test_identical_rows_in_one_article_are_one_document(tmp_path):
    row = "<tr><td>550-5.1.1</td><td>Unknown.</td><td>Fix it.</td></tr>"
    body = f"<table><tr><th>Code</th><th>What it means</th><th>What you can do</th></tr>{row}{row}</table>"
    page(tmp_path / "p.json", [article(1, body=body)])
    rows = [c for c in chunk_articles(load_articles(tmp_path), "m") if c.metadata["kind"] == "row"]
    assert len(rows) == 1


def synthetic_export(folder: Path, n: int, per_page: int = 100) -> None:
    """``n`` SYNTHETIC articles of about 1.5 KB of HTML each (sections, a list, a two-row code table)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = ("<p>Article {i} explains a part of the help desk in a few sentences of text.</p>"
            "<h2>Setting it up</h2><p>Open Settings, then Channels, and follow the steps for {i}.</p>"
            "<ul><li>Step one.</li><li>Step two.</li><li>Step three.</li></ul>"
            "<h2>Errors</h2><table><tr><th>Error code</th><th>What it means</th><th>What you can do</th></tr>"
            "<tr><td>451-4.3.{k}</td><td>Temporary failure {i}.</td><td>Retry later.</td></tr>"
            "<tr><td>550-5.1.1</td><td>Address unknown in {i}.</td><td>Fix the address.</td></tr></table>"
            "<h2>More</h2><p>" + "Further words about it. " * 30 + "</p>")
    for start in range(0, n, per_page):
        page(folder / f"page-{start // per_page + 1:05d}.json",
             [article(100_000 + i, body=body.format(i=i, k=i % 9)) for i in range(start, min(n, start + per_page))])


def test_parsing_speed_is_printed(tmp_path):
    """Measured, not asserted: articles/s parsing an export (10,000 articles: about 1.7 s on 2 cores)."""
    synthetic_export(tmp_path, 1000)
    t, cpu = time.perf_counter(), time.process_time()
    arts = load_articles(tmp_path)
    parse, parse_cpu = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    chunks = chunk_articles(arts, "m")
    cut = time.perf_counter() - t
    assert len(arts) == 1000 and len({c.id for c in chunks}) == len(chunks)
    print(f"\nexport parse: {len(arts)} articles in {parse:.2f} s wall, {parse_cpu:.2f} s CPU "
          f"({len(arts) / parse_cpu:,.0f} articles per CPU second); {len(chunks)} chunks cut in {cut:.2f} s")
