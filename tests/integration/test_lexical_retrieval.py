"""The retriever over the on-disk lexical index ranks the real KB as the
in-memory rank_bm25 retriever did: same top 3, same scores, on the dev split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rank_bm25 import BM25Okapi

from app.knowledge.chunks import search_text
from app.search import lexical
from app.search.retrieval import BM25_HALF, HybridRetriever, tokenize

pytestmark = pytest.mark.slow

DEV = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "dev.jsonl"


class Reference:
    """The retriever as it was: every document in memory, rank_bm25 over them all."""

    def __init__(self, retriever: HybridRetriever):
        got = retriever.collection.get(include=["documents", "metadatas"])
        self.r = retriever
        self.ids = got["ids"]
        self.docs = {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
        self.bm25 = BM25Okapi([tokenize(search_text(d, m)) for d, m in zip(got["documents"], got["metadatas"])])

    def search(self, query: str, k: int = 3, kinds=None):
        r, w = self.r, self.r.dense_weight
        query = r.synonyms.expand(r.spelling.fix(query))
        res = r.collection.query(query_embeddings=[list(r.embedder.embed_query(query))],
                                 n_results=min(r.candidates, len(self.ids)), include=["distances"])
        dense = {i: 1.0 - d for i, d in zip(res["ids"][0], res["distances"][0])}
        if kinds:
            dense = {i: s for i, s in dense.items() if self.docs[i][1].get("kind") in kinds}
        raw = self.bm25.get_scores(tokenize(query))
        lex = {i: float(s / (s + BM25_HALF)) if s > 0 else 0.0 for i, s in zip(self.ids, raw)}
        hits = []
        for i in set(dense) | {i for i, s in lex.items() if s > 0}:
            if kinds and self.docs[i][1].get("kind") not in kinds:
                continue
            hits.append((w * dense.get(i, 0.0) + (1 - w) * lex[i], self.docs[i][1].get("order", 0), i))
        hits.sort(key=lambda h: (-h[0], h[1], h[2]))
        return [(i, s) for s, _, i in hits[:k]], max(dense.values(), default=0.0)


@pytest.fixture(scope="module")
def retriever(services):
    return HybridRetriever(services.answerer.retriever.collection, services.embedder, multilingual=None,
                           lexical_dir=lexical.lexical_dir(services.settings))


def dev_questions() -> list[str]:
    return [json.loads(line)["question"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("kinds", [None, ("section",), ("row",)])
@pytest.mark.parametrize("dense_weight", [0.7, 0.0, 1.0])
def test_dev_split_top3_is_unchanged(retriever, dense_weight, kinds):
    retriever.dense_weight = dense_weight
    try:
        ref = Reference(retriever)
        for q in dev_questions():
            got = retriever.search(q, k=3, kinds=kinds)
            want, best = ref.search(q, k=3, kinds=kinds)
            assert [(h.id, h.score) for h in got.hits] == want, q
            assert got.best_similarity == best, q
    finally:
        retriever.dense_weight = 0.7


def test_ingest_wrote_the_lexical_index_the_server_loads(services):
    folder = lexical.lexical_dir(services.settings)
    col = services.answerer.retriever.collection
    path = folder / lexical.cache_key(col.name, col.metadata["fingerprint"])
    assert len(lexical.load(path)) == col.count()


def test_hits_texts_come_from_the_collection_once(retriever, monkeypatch):
    calls = []
    real = retriever.collection.get

    def counting(*a, **kw):
        calls.append(kw.get("ids"))
        return real(*a, **kw)

    fresh = HybridRetriever(retriever.collection, retriever.embedder, multilingual=None)
    monkeypatch.setattr(fresh.collection, "get", counting)
    first = fresh.search("how do I get an address removed from the suppression list?")
    again = fresh.search("how do I get an address removed from the suppression list?")
    assert len(calls) == 1 and sorted(calls[0]) == sorted(h.id for h in first.hits)
    assert [(h.id, h.text, h.metadata) for h in again.hits] == [(h.id, h.text, h.metadata) for h in first.hits]
