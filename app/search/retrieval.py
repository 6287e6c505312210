"""Hybrid retrieval: dense search in Chroma fused with BM25.

Embeddings miss exact tokens such as ``5.7.1`` or ``SPF``; BM25 catches
them. Both run over the same documents (BM25's corpus is read from the
collection at start-up, so an embedded store and a Chroma server behave
alike). Scores are fused as ``w * cosine + (1 - w) * bm25 / (bm25 + K)``:
the saturating BM25 term keeps a weak lexical match weak, where dividing by
the query's best BM25 score would lift it to 1 (chosen on the dev split:
fact recall 0.90 -> 0.95).

``best_similarity`` (the top dense cosine) is what decides whether the
knowledge base has anything relevant at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rank_bm25 import BM25Okapi

from app.knowledge.chunks import search_text

_TOKEN = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+(?:['’][a-z]+)?")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i if in is it its me my of on or "
    "our so that the their there this to was we what when where which who why will with you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased words and dotted codes; '550-5.1.1' gives '550' and '5.1.1'."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: dict
    score: float  # fused
    similarity: float  # dense cosine, 0 when the dense search did not return it
    lexical: float  # BM25, saturated into 0..1


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    best_similarity: float
    vector: tuple[float, ...] = ()  # the query's embedding, for further checks


BM25_HALF = 5.0  # the BM25 score that counts as half a lexical match


class HybridRetriever:
    """``guard`` (an ``app.search.guard.SearchGuard``) bounds every call to the
    collection in time; without one, calls go straight to the store."""

    def __init__(self, collection, embedder, dense_weight: float = 0.7, candidates: int = 12, guard=None):
        self.collection = collection
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.candidates = candidates
        self._call = guard.call if guard is not None else (lambda what, fn, *a, **kw: fn(*a, **kw))
        got = collection.get(include=["documents", "metadatas"])
        self._ids: list[str] = got["ids"]
        self._docs: dict[str, tuple[str, dict]] = {
            i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
        }
        self._bm25 = (
            BM25Okapi([tokenize(search_text(d, m)) for d, m in zip(got["documents"], got["metadatas"])])
            if self._ids
            else None
        )

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, query: str, k: int = 3, kinds: tuple[str, ...] | None = None) -> SearchResult:
        if not self._ids:
            return SearchResult([], 0.0)
        n = min(self.candidates, len(self._ids))
        vector = self.embedder.embed_query(query)
        res = self._call("the search", self.collection.query, query_embeddings=[vector], n_results=n,
                         include=["distances"])
        dense = {i: 1.0 - d for i, d in zip(res["ids"][0], res["distances"][0])}
        if kinds:
            dense = {i: s for i, s in dense.items() if self._docs[i][1].get("kind") in kinds}
        best_similarity = max(dense.values(), default=0.0)

        raw = self._bm25.get_scores(tokenize(query))
        lexical = {i: float(s / (s + BM25_HALF)) if s > 0 else 0.0 for i, s in zip(self._ids, raw)}

        w = self.dense_weight
        hits = []
        for i in set(dense) | {i for i, s in lexical.items() if s > 0}:
            text, meta = self._docs[i]
            if kinds and meta.get("kind") not in kinds:
                continue
            sim, lex = dense.get(i, 0.0), lexical.get(i, 0.0)
            hits.append(Hit(i, text, meta, w * sim + (1 - w) * lex, sim, lex))
        hits.sort(key=lambda h: (-h.score, h.metadata.get("order", 0)))
        return SearchResult(hits[:k], best_similarity, tuple(vector))


class OtherArticles:
    """The help centre's other article titles, embedded once. A question
    closer to one of them than to any passage of the KB (by more than the
    margin) belongs to that article, not to this knowledge base."""

    def __init__(self, titles: list[str], embedder):
        import numpy as np

        self.titles = list(titles)
        self._matrix = np.array(embedder.embed_documents(self.titles)) if self.titles else None

    def closest(self, vector) -> tuple[str | None, float]:
        import numpy as np

        if self._matrix is None or not len(vector):
            return None, 0.0
        sims = self._matrix @ np.asarray(vector)
        j = int(sims.argmax())
        return self.titles[j], float(sims[j])
