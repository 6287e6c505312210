"""The answering article ranked as it ranks alone (issue 14): among many articles, the passages of
the article that answers are ordered by their fused scores with that article's own BM25 (its word
statistics alone, as a knowledge base of that article has them), so adding unrelated articles to the
collection reorders nothing within the article that answers. ``HybridRetriever.search`` applies it."""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.search.ranking import article_of
from app.search.text import tokenize

__all__ = ["ArticleAlone", "refill"]


def refill(order: list[int], articles: list[str], own: str, ranked_own: list[int]) -> list[int]:
    """``order`` with the places of ``own``'s passages taken, in turn, by ``ranked_own`` (those
    passages in the article's own order); any of them ``order`` lacks follow at the end."""
    rest = iter(ranked_own)
    out = [next(rest) if articles[j] == own else j for j in order]
    return out + list(rest)


class ArticleAlone:
    """Each article's passages and their own BM25 (the article's word statistics alone), read once
    per article and kept (the newest ``size``): the answering article's passages are ranked as a
    knowledge base of that article alone would rank them, whatever else the collection holds.

    ``read(where)`` gives the article's ``(ids, texts, metadatas, vectors)``; ``build(documents)`` a
    lexical index over ``(id, text, metadata)`` triples."""

    def __init__(self, read, build, size: int = 256):
        self._read, self._build, self.size = read, build, size
        self._kept: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]):
        """(lexical index, {id: (text, metadata)}, {id: unit vector}) of the article whose metadata
        ``key[0]`` is ``key[1]``: its own BM25, documents and vectors (the article's nearest passages
        are a dot product away, not a filtered query: at 43,000 documents Chroma's took 70 ms)."""
        import numpy as np

        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        ids, texts, metas, vectors = self._read({key[0]: key[1]})
        got = (self._build(list(zip(ids, texts, metas))), {i: (t, m) for i, t, m in zip(ids, texts, metas)},
               {i: np.asarray(v, dtype=np.float32) for i, v in zip(ids, vectors)})
        with self._lock:
            self._kept[key] = got
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return got

    def nearest(self, key: tuple[str, str], vector, n: int, kinds=None) -> tuple[list[str], list[float]]:
        """The article's ``n`` passages nearest ``vector`` (of ``kinds``, when given) and their cosines,
        nearest first: what a dense search filtered to the article finds, exactly."""
        import numpy as np

        _, docs, vectors = self.get(key)
        ids = [i for i in vectors if not kinds or docs[i][1].get("kind") in kinds]
        if not ids or n <= 0:
            return [], []
        sims = np.stack([vectors[i] for i in ids]) @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-sims, kind="stable")[:n]
        return [ids[j] for j in top], [float(sims[j]) for j in top]


    def rerank(self, retriever, query, kinds, pool, ids, scores, order, docs, similarity, lexical, w):
        """``order`` (positions of ``pool``/``ids``, article-aware) with the first hit's article's
        passages in their article's own order, its passages that match words joining; other
        articles' passages keep their places. ``lexical`` (this search's array) takes the
        article's own BM25 for its passages, ``scores`` their fused scores with it."""
        import numpy as np

        meta = docs[ids[order[0]]][1]
        own = article_of(meta)
        alone, own_docs, _ = self.get(("article_path", own) if meta.get("article_path") else ("article", own))
        raw = alone.scores(tokenize(query))
        half = retriever._lexical_half(len(alone))
        own_lex = {alone.id_at(j): float(raw[j] / (raw[j] + half)) for j in np.flatnonzero(raw > 0)}
        known = set(ids)
        extra = [i for i in own_lex if i not in known and (not kinds or own_docs[i][1].get("kind") in kinds)]
        rows = retriever.lexical.rows_held(extra)
        docs.update((i, own_docs[i]) for i in extra)
        pool, ids = pool + list(rows), ids + extra
        scores = scores + [float(w * similarity[r] + (1 - w) * lexical[r]) for r in rows]
        articles = [article_of(docs[i][1]) for i in ids]
        mine = [j for j, a in enumerate(articles) if a == own]
        for j in mine:
            lexical[pool[j]] = own_lex.get(ids[j], 0.0)
            scores[j] = float(w * similarity[pool[j]] + (1 - w) * lexical[pool[j]])
        ranked = sorted(mine, key=lambda j: (-scores[j], docs[ids[j]][1].get("order", 0), pool[j]))
        return pool, ids, scores, refill(order + list(range(len(order), len(ids))), articles, own, ranked)
