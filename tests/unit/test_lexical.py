"""The on-disk BM25 index (app.search.lexical): Okapi scores equal to
rank_bm25's, persisted and memory-mapped, keyed by the index version, and a
missing or damaged cache rebuilt rather than read."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from app.errors import IndexNotReady
from app.search import lexical
from app.search.chroma import fingerprint


def words(text, metadata=None):
    return text.split()


class PagedCollection:
    """What the lexical index reads of a Chroma collection: name, metadata,
    count and ``get`` in pages (``limit``/``offset``), in insertion order."""

    def __init__(self, name, docs, fingerprint_of=None, kinds=None):
        self.name = name
        self.docs = [(f"d{i:03d}", text, {"kind": (kinds or {}).get(i, "section"), "order": i}) for i, text in enumerate(docs)]
        ids = [d[0] for d in self.docs] if fingerprint_of is None else fingerprint_of
        self.metadata = {"fingerprint": fingerprint(ids)} if ids is not False else {}
        self.reads = 0

    def count(self):
        return len(self.docs)

    def get(self, include=(), limit=None, offset=0, ids=None):
        self.reads += 1
        page = self.docs[offset : offset + limit if limit else None]
        return {"ids": [d[0] for d in page], "documents": [d[1] for d in page], "metadatas": [d[2] for d in page]}


CORPORA = {
    "one document": ["bounce list removal"],
    "codes and words": ["550 5.1.1 address does not exist", "552 5.2.2 mailbox full", "421 4.7.28 rate limited",
                        "mailbox full try again later", "remove address from bounce list"],
    # "mail" is in more than half the documents: a negative IDF, floored at epsilon x the average IDF
    "common term floored": ["mail sent", "mail bounced", "mail delayed mail", "mail", "spf record", "mail dkim"],
    "every document shares a term": ["error a", "error b", "error c"],
    "an empty document": ["", "retry later", "retry soon retry", "suppression list"],
    "repeated words": ["spam spam spam spam", "spam filter", "filter rules rules", "inbox"],
}
QUERIES = ["mailbox full", "mail mail", "5.1.1", "retry", "spam filter rules", "unknown words only", "",
           "error", "mail spf", "list bounce removal list"]


def reference(corpus):
    return BM25Okapi([d.split() for d in corpus])


@pytest.mark.parametrize("name", CORPORA)
def test_scores_equal_rank_bm25_okapi(name):
    corpus = CORPORA[name]
    ref = reference(corpus)
    col = PagedCollection("v1", corpus)
    index = lexical.in_memory(lexical.collection_documents(col), words)
    rows = index.rows_of([d[0] for d in col.docs])
    for q in QUERIES:
        assert index.scores(q.split())[rows] == pytest.approx(ref.get_scores(q.split()), abs=0, rel=1e-12), q


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
def test_reading_in_pages_builds_the_same_index(page):
    corpus = CORPORA["codes and words"]
    whole = lexical.in_memory(lexical.collection_documents(PagedCollection("v1", corpus), page=1000), words)
    paged = lexical.in_memory(lexical.collection_documents(PagedCollection("v1", corpus), page=page), words)
    for q in QUERIES:
        assert np.array_equal(whole.scores(q.split()), paged.scores(q.split()))


def test_rows_metadata_and_unknown_ids():
    col = PagedCollection("v1", ["a b", "b c", "c d"], kinds={1: "row"})
    index = lexical.in_memory(lexical.collection_documents(col), words)
    rows = index.rows_of(["d001", "nope", "d002-longer-than-any-id", "d000"])
    assert rows[1] == -1 and rows[2] == -1 and index.id_at(rows[0]) == "d001" and index.id_at(rows[3]) == "d000"
    assert index.kind_names[index.kinds[rows[0]]] == "row" and index.order[rows[0]] == 1
    assert index.document_frequencies() == {"a": 1, "b": 2, "c": 2, "d": 1}


def test_saved_index_is_memory_mapped_and_scores_alike(tmp_path):
    corpus = CORPORA["codes and words"]
    col = PagedCollection("bouncebot-v1", corpus)
    built = lexical.open_for(col, tmp_path, words)
    reads = col.reads
    loaded = lexical.open_for(col, tmp_path, words)  # a second process: loads, does not read the collection
    assert col.reads == reads
    assert isinstance(loaded.postings.base, np.memmap) or isinstance(getattr(loaded.postings.base, "base", None), np.memmap)
    for q in QUERIES:
        assert np.array_equal(built.scores(q.split()), loaded.scores(q.split()))
    manifest = json.loads((tmp_path / lexical.cache_key(col.name, col.metadata["fingerprint"]) / "manifest.json").read_text())
    assert manifest["collection"] == "bouncebot-v1" and manifest["documents"] == len(corpus)


def test_each_version_has_its_own_index(tmp_path):
    old = PagedCollection("bouncebot-v1", ["mailbox full", "bounce list"])
    new = PagedCollection("bouncebot-v2", ["mailbox full", "rate limited", "spf record"])
    a, b = lexical.open_for(old, tmp_path, words), lexical.open_for(new, tmp_path, words)
    assert (len(a), len(b)) == (2, 3)
    assert len(lexical.open_for(old, tmp_path, words)) == 2  # the old version still opens as itself
    same_name = PagedCollection("bouncebot-v1", ["spf record"])  # a legacy head rewritten in place
    assert len(lexical.open_for(same_name, tmp_path, words)) == 1
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3


def test_ingest_writes_the_index_a_replica_then_loads(tmp_path):
    col = PagedCollection("bouncebot-v3", CORPORA["repeated words"])
    lexical.write_version(tmp_path, col.name, col.metadata["fingerprint"], col.docs, words)
    index = lexical.open_for(col, tmp_path, words)
    assert col.reads == 0 and len(index) == 4


def _truncate(p):
    p.write_bytes(p.read_bytes()[:-8])


def _flip(p):
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))


DAMAGE = {
    "postings missing": lambda d: (d / "postings.npy").unlink(),
    "postings truncated": lambda d: _truncate(d / "postings.npy"),
    "idf byte flipped": lambda d: _flip(d / "idf.npy"),
    "terms changed": lambda d: (d / "terms.txt").write_text("zzz\nyyy"),
    "manifest garbage": lambda d: (d / "manifest.json").write_text("{not json"),
    "manifest missing": lambda d: (d / "manifest.json").unlink(),
    "other format": lambda d: (d / "manifest.json").write_text(json.dumps({"format": "bm25-okapi/0"})),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_rebuilt_never_read(tmp_path, damage):
    corpus = CORPORA["common term floored"]
    col = PagedCollection("bouncebot-v1", corpus)
    lexical.open_for(col, tmp_path, words)
    folder = tmp_path / lexical.cache_key(col.name, col.metadata["fingerprint"])
    DAMAGE[damage](folder)
    with pytest.raises(ValueError):
        lexical.load(folder)
    index = lexical.open_for(col, tmp_path, words)
    ref, rows = reference(corpus), index.rows_of([d[0] for d in col.docs])
    for q in QUERIES:
        assert index.scores(q.split())[rows] == pytest.approx(ref.get_scores(q.split()), abs=0, rel=1e-12)
    lexical.load(folder)  # whole again on disk


def test_no_fingerprint_builds_in_memory_and_writes_nothing(tmp_path):
    col = PagedCollection("scratch", ["a b", "b c"], fingerprint_of=False)
    assert len(lexical.open_for(col, tmp_path, words)) == 2
    assert list(tmp_path.iterdir()) == []


def test_documents_that_disagree_with_the_fingerprint_are_refused(tmp_path):
    col = PagedCollection("bouncebot-v1", ["a b", "b c"], fingerprint_of=["d000"])  # one document added behind it
    with pytest.raises(IndexNotReady, match="bouncebot ingest"):
        lexical.open_for(col, tmp_path, words)
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


def test_old_versions_are_pruned(tmp_path):
    for v in range(lexical.KEEP + 3):
        lexical.open_for(PagedCollection(f"bouncebot-v{v}", ["a b", f"c{v}"]), tmp_path, words)
    kept = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(kept) == lexical.KEEP
    newest = PagedCollection(f"bouncebot-v{lexical.KEEP + 2}", ["a b", f"c{lexical.KEEP + 2}"])
    assert (tmp_path / lexical.cache_key(newest.name, newest.metadata["fingerprint"])).is_dir()


def test_empty_collection():
    index = lexical.in_memory(lexical.collection_documents(PagedCollection("empty", [])), words)
    assert len(index) == 0 and index.scores(["a"]).shape == (0,) and list(index.rows_of(["x"])) == [-1]


@pytest.mark.parametrize(
    "url,under",
    [(None, "index/lexical"), ("http://127.0.0.1:8000", "cache/lexical/"), ("http://10.0.0.5:8000/", "cache/lexical/")],
)
def test_where_the_index_is_kept(tmp_path, url, under):
    from app.config import Settings

    settings = Settings().with_(index_dir=tmp_path / "index", model_dir=tmp_path / "cache" / "model", chroma_url=url)
    assert under in lexical.lexical_dir(settings).relative_to(tmp_path).as_posix() + ("/" if url else "")
    if url:  # one folder per server, never the embedded store's
        other = settings.with_(chroma_url="http://127.0.0.2:8000")
        assert lexical.lexical_dir(settings) != lexical.lexical_dir(other)


# --- each document's passage hash and article (what a search asks of every candidate) ----------------

PASSAGES = [  # (id, text, article_path)
    ("p0", "550-5.1.1: The address does not exist.", "a.md"),
    ("p1", "550-5.1.1: the address  does not exist", "b.md"),  # the same words as p0, other case and spacing
    ("p2", "Mailbox is full.", "a.md"),
    ("p3", "", "c.md"),
    ("p4", "Need more help?\n\nContact support.", "b.md"),
    ("p5", "need more help contact support", "c.md"),
]


def with_articles(rows=PASSAGES):
    return [(i, text, {"article_path": path, "kind": "section"}) for i, text, path in rows]


def test_each_document_keeps_its_passage_hash_and_article(tmp_path):
    from app.search.ranking import passage_key

    built = lexical.in_memory(with_articles(), words)
    lexical.write_version(tmp_path, "v1", "f1", with_articles(), words)
    loaded = lexical.load(tmp_path / lexical.cache_key("v1", "f1"))
    for index in (built, loaded):
        assert index.knows_passages
        rows = index.rows_of([i for i, _, _ in PASSAGES])
        keys = index.passage_keys(rows)
        for (_, a, _), ka in zip(PASSAGES, keys):  # the same key exactly when passage_key is the same
            assert passage_key(ka) == ka  # a key is what ranking.distinct keys a text by: left as it is
            for (_, b, _), kb in zip(PASSAGES, keys):
                assert (ka == kb) is (passage_key(a) == passage_key(b)), (a, b)
        assert index.articles_at(rows) == [path for _, _, path in PASSAGES]
        assert [index.id_at(r) for r in index.article_rows("a.md")] == ["p0", "p2"]
        assert len(index.article_rows("nowhere.md")) == 0
    assert lexical.complete(tmp_path, "v1", "f1") and not lexical.complete(tmp_path, "v2", "f1")


def test_documents_without_an_article_path_keep_no_articles():
    docs = with_articles() + [("p9", "an older chunk", {"article": "Old title"})]
    index = lexical.in_memory(docs, words)
    assert not index.knows_passages and index.article_rows("a.md") is None
    assert len(index) == len(docs)  # BM25 as before


def _written_before_passages(folder):
    """The folder as a version of the code before passage hashes wrote it: no such files, nor in the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("passage.npy", "article.npy", lexical.ARTICLES):
        (folder / name).unlink()
        del manifest["files"][name]
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_written_before_passage_hashes_is_read_as_before_and_ingest_completes_it(tmp_path):
    docs = with_articles()
    lexical.write_version(tmp_path, "v1", "f1", docs, words)
    folder = tmp_path / lexical.cache_key("v1", "f1")
    whole = lexical.load(folder)
    _written_before_passages(folder)
    old = lexical.load(folder)  # read, not rebuilt: the search asks Chroma for what it lacks
    assert not old.knows_passages and old.article_rows("a.md") is None
    for q in QUERIES:
        assert np.array_equal(old.scores(q.split()), whole.scores(q.split()))
    assert not lexical.complete(tmp_path, "v1", "f1")  # so `bouncebot ingest` writes it again
    lexical.write_version(tmp_path, "v1", "f1", docs, words)
    assert lexical.complete(tmp_path, "v1", "f1") and lexical.load(folder).knows_passages


@pytest.mark.parametrize("damage", ["passage.npy", "article.npy", lexical.ARTICLES])
def test_a_damaged_passage_file_is_rebuilt_never_read(tmp_path, damage):
    docs = with_articles()
    lexical.write_version(tmp_path, "v1", "f1", docs, words)
    folder = tmp_path / lexical.cache_key("v1", "f1")
    _flip(folder / damage)
    with pytest.raises(ValueError):
        lexical.load(folder)
