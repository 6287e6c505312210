"""A KB of two sources, the real article and a help-centre JSON export
(``tests/unit/data/zendesk/``, SYNTHETIC), through the real embedding model,
a real Chroma and the real ``bouncebot`` command: questions about an exported
article are answered from it with its own citations, no longer pointed to as
"another article"; a code both tables hold shows both rows; a broken export
stops ``bouncebot ingest`` with the file and the article id, the index untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .test_cli import run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "kb"
EXPORT = ROOT / "tests" / "unit" / "data" / "zendesk"
QUESTION = "How do I connect my custom email address?"
TITLE = "Connect your custom email address"  # article 9003's title, one of other_articles.yaml's
URL = "https://help.example.test/hc/en-us/articles/9003-connect-your-custom-email-address"


@pytest.fixture(scope="module")
def two_article_kb(tmp_path_factory) -> Path:
    kb = tmp_path_factory.mktemp("kb2")
    shutil.copy(KB / "common-email-delivery-errors.md", kb)
    shutil.copytree(EXPORT, kb / "export")
    return kb


@pytest.fixture(scope="module")
def both(tmp_path_factory, embedder, two_article_kb):
    from app.answering.services import build
    from app.config import Settings

    settings = Settings().with_(kb_dir=two_article_kb, index_dir=tmp_path_factory.mktemp("index2"),
                                collection="two_articles")
    return build(settings, embedder=embedder, ingest_first=True)


def test_the_kb_alone_points_the_question_to_the_other_article(answerer):
    a = answerer.ask(QUESTION)
    assert not a.answered and a.other_article == TITLE
    assert TITLE in a.answer


def test_once_the_kb_holds_the_article_it_answers_from_it(both):
    a = both.answerer.ask(QUESTION)
    assert a.answered and a.other_article is None
    top = a.sources[0]
    assert top.article == TITLE and top.url.startswith(URL)
    assert URL in a.answer


def test_a_code_both_tables_hold_shows_both_rows_with_their_citations(both):
    a = both.answerer.ask("What does 552-5.2.2 mean?")
    (c,) = a.codes
    assert [r.article for r in c.rows] == ["Common Email Delivery Errors", "Mailbox Quotas for Shared Inboxes (synthetic)"]
    assert [s.article for s in a.sources if s.kind == "row"] == [r.article for r in c.rows]
    for r in c.rows:
        assert r.meaning in a.answer and r.url in a.answer


def test_a_broken_export_stops_ingest_with_the_file_and_article(tmp_path, two_article_kb):
    kb = tmp_path / "kb"
    shutil.copytree(two_article_kb, kb)
    env = {"BOUNCEBOT_KB_DIR": str(kb), "BOUNCEBOT_INDEX_DIR": str(tmp_path / "idx")}
    r = run(["ingest"], env)
    assert r.returncode == 0, r.stderr
    page = kb / "export" / "articles-page-2.json"
    page.write_text(page.read_text().replace(f'"title": "{TITLE}"', '"title": ""'))
    r = run(["ingest"], env)
    assert r.returncode == 4
    assert "export/articles-page-2.json:" in r.stderr and "article 9003" in r.stderr and "'title'" in r.stderr
    assert "left as it was" in r.stderr
    page.write_text(page.read_text().replace('"title": ""', f'"title": "{TITLE}"'))
    r = run(["ingest"], env)  # the index was left as it was: nothing to add
    assert r.returncode == 0 and " 0 added" in r.stdout, r.stdout


def test_each_passage_s_own_words_are_embedded_at_ingest_and_read_by_the_retriever(both, embedder):
    """The body vectors (app.search.body) of a KB of several articles: written by ingest with the real
    model, each the passage's words without its heading path, and read by the search's cap."""
    import numpy as np

    from app.search.lexical import passage_hash

    r = both.answerer.retriever
    assert r._body is not None and r._body.check()
    got = r.collection.get(include=["documents"], limit=5)
    q = np.asarray(embedder.embed_query("the customer's mailbox is full"), dtype=np.float32)
    want = np.asarray(embedder.embed_documents(got["documents"]), dtype=np.float32) @ q
    assert r._body.cosines([passage_hash(t) for t in got["documents"]], q) == pytest.approx(want, abs=1e-5)
