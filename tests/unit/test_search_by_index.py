"""What a search asks of every candidate comes from the lexical index (each document's passage hash
and article, ``app.search.lexical``): the dense query asks Chroma for ids and distances alone, and an
article's documents are read by id, not by a metadata filter. The results are exactly those of an
index written before those files (which still asks Chroma for them), whatever the question.

Real Chroma in a temp dir, the real indexer, the deterministic ``FakeEmbedder``, a KB of the real
article and 40 synthetic ones (``evals.scale_corpus``)."""

from __future__ import annotations

import shutil

import pytest

from app.search.chroma import make_client, open_collection
from app.search.lexical import lexical_dir
from app.search.retrieval import HybridRetriever
from evals import scale_corpus
from evals.run import load_cases
from evals.scale_scoring import english
from ingest.indexer import ingest
from tests.fakes import FakeEmbedder, fake_settings

QUESTIONS = [c["question"] for c in load_cases(["dev"]) if english(c["question"]) and c["question"].strip()][::4]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("by_index")
    scale_corpus.write_corpus(40, root / "kb")
    settings = fake_settings(root / "index", kb_dir=root / "kb", collection="byindex", multilingual=False)
    client = make_client(settings)
    ingest(settings, client, FakeEmbedder(), progress=False, multilingual=None)
    return settings, client


def retriever(settings, client, knows_passages: bool = True) -> HybridRetriever:
    r = HybridRetriever(open_collection(client, settings), FakeEmbedder(), multilingual=None,
                        lexical_dir=lexical_dir(settings))
    if not knows_passages:  # as an index written before the passage hashes and articles reads
        r.lexical.passage = r.lexical.article = None
    return r


def figures(res):
    return ([(h.id, h.text, h.metadata, h.score, h.similarity, h.lexical) for h in res.hits],
            res.best_similarity, res.answering_similarity)


@pytest.fixture(scope="module")
def pair(kb):
    new, old = retriever(*kb), retriever(*kb, knows_passages=False)
    assert new.lexical.knows_passages and not old.lexical.knows_passages
    return new, old


@pytest.mark.parametrize("kinds", [None, ("section",), ("row",)])
def test_the_results_are_those_of_an_index_without_passage_hashes(pair, kinds):
    new, old = pair
    assert len(QUESTIONS) >= 40
    for q in QUESTIONS:
        assert figures(new.search(q, k=5, kinds=kinds)) == figures(old.search(q, k=5, kinds=kinds)), q


def test_chroma_is_asked_for_ids_and_distances_and_articles_by_id(kb, monkeypatch):
    r = retriever(*kb)
    calls = []
    store = r.collection.store
    for name in ("query", "get"):
        real = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _real=real, _name=name, **kw: calls.append((_name, kw)) or _real(*a, **kw))
    for q in QUESTIONS[:10]:
        r.search(q, k=3)
    queries = [kw for name, kw in calls if name == "query"]
    assert queries and all(kw["include"] == ["distances"] for kw in queries)
    assert not [kw for name, kw in calls if name == "get" and kw.get("where") is not None]
    assert len(r.alone._kept) >= 1  # articles were read (by id)


def test_an_article_read_by_id_comes_in_the_order_a_filtered_read_gives(kb, tmp_path):
    """After a re-ingest that changed part of an article, the store holds its records out of the
    article's order: a read by id gives them as the filtered read does, and ranks alike."""
    settings, _ = kb
    kb_dir = tmp_path / "kb"
    shutil.copytree(settings.kb_dir, kb_dir)
    real = kb_dir / scale_corpus.REAL_ARTICLE.name
    text = real.read_text(encoding="utf-8")
    marker = "bounce list"
    assert marker in text
    real.write_text(text.replace(marker, "bounce-list", 1), encoding="utf-8")  # one passage changes, lines stay
    moved = settings.with_(kb_dir=kb_dir, index_dir=tmp_path / "index")
    shutil.copytree(settings.index_dir, moved.index_dir)
    client = make_client(moved)
    report = ingest(moved, client, FakeEmbedder(), progress=False, multilingual=None)
    assert report.added >= 1 and report.kept > 0
    new, old = retriever(moved, client), retriever(moved, client, knows_passages=False)
    view = new.collection
    path = scale_corpus.REAL_ARTICLE.name
    by_where = view.get(where={"article_path": path}, include=["documents"])
    ids = [new.lexical.id_at(r) for r in new.lexical.article_rows(path)]
    assert sorted(ids) == sorted(by_where["ids"]) and ids != by_where["ids"]  # the store's order is not the ids'
    assert view.get_as_stored(list(reversed(ids)), include=["documents"])["ids"] == by_where["ids"]
    key = ("article_path", path)
    got, want = new.alone.get(key), old.alone.get(key)
    assert list(got[1]) == list(want[1]) and got[1] == want[1]
    assert all((got[2][i] == want[2][i]).all() for i in want[2])
    for q in QUESTIONS[:20]:
        assert figures(new.search(q, k=5)) == figures(old.search(q, k=5)), q


def test_the_next_ingest_completes_an_index_written_before_passage_hashes(kb, tmp_path):
    from app.search.lexical import cache_key, complete
    from tests.unit.test_lexical import _written_before_passages

    settings, _ = kb
    moved = settings.with_(index_dir=tmp_path / "index")
    shutil.copytree(settings.index_dir, moved.index_dir)
    client = make_client(moved)
    version = open_collection(client, moved)
    fp = version.metadata["fingerprint"]
    _written_before_passages(lexical_dir(moved) / cache_key(version.name, fp))
    assert not complete(lexical_dir(moved), version.name, fp)
    assert not retriever(moved, client).lexical.knows_passages  # read as it is, not rebuilt at start-up
    report = ingest(moved, client, FakeEmbedder(), progress=False, multilingual=None)
    assert report.added == 0 and report.removed == 0  # up to date: nothing embedded, the same version
    assert open_collection(client, moved).name == version.name
    assert complete(lexical_dir(moved), version.name, fp) and retriever(moved, client).lexical.knows_passages
