"""Article-aware ranking (issue 14): in a help centre of many articles, prefer the passages of
the article a question is about. Pure functions over fused scores (and, for headings' words, over a
lexical index's statistics); ``HybridRetriever.search`` applies them."""

from __future__ import annotations

import re

__all__ = ["article_of", "article_order", "distinct", "distinct_rows", "heading_shared_bm25", "heading_shared_scores",
           "passage_key", "rescore", "shared_by", "top_article"]


def article_of(metadata: dict) -> str:
    """Which article a document belongs to (its path in the KB; the title for older indexes)."""
    return str(metadata.get("article_path") or metadata.get("article") or "")


def passage_key(text: str) -> str:
    """What makes two passages the same words: their text, case and punctuation ignored."""
    return " ".join(re.sub(r"\W+", " ", text.casefold()).split())


def shared_by(keys: list[str], articles: list[str], known: dict[str, set[str]] | None = None) -> list[int]:
    """For each passage, how many articles hold its words: among ``keys``/``articles`` and the
    article sets ``known`` already holds per key (e.g. from a longer candidate list)."""
    holders: dict[str, set[str]] = {k: set(v) for k, v in (known or {}).items()}
    for k, a in zip(keys, articles):
        holders.setdefault(k, set()).add(a)
    return [len(holders[k]) for k in keys]


def article_order(scores: list[float], articles: list[str], support: float, penalty: float,
                  depth: int = 2, sections: list[str] | None = None, shares: list[int] | None = None) -> list[int]:
    """Positions of ``scores`` (fused scores, best first) in their article-aware order.

    An article's evidence is the scores of its ``depth`` best passages, the i-th (from 0) weighed
    ``support ** i``: the article a question is about usually answers it in more than one place,
    where an unrelated article that happens to share one sentence's words has one passage near
    the top. With ``sections`` (each score's section), only each section's best passage counts:
    the rows of one table, or the pieces of one long section, are one place. With ``shares`` (how
    many articles hold each passage's words, ``passage_key``: 1 for its own), a passage whose words
    several articles hold (a shared code table, a footer, boilerplate) is evidence for none of them
    in particular: its score is shared out among them. Passages of every article but the one with the most evidence
    lose ``penalty``; within that, the fused order stands. With one article among the results the
    order is unchanged."""
    if len(set(articles)) < 2 or penalty <= 0:
        return list(range(len(scores)))
    first = top_article(scores, articles, support, depth, sections, shares)
    adjusted = [s - (0.0 if a == first else penalty) for s, a in zip(scores, articles)]
    return sorted(range(len(scores)), key=lambda j: (-adjusted[j], j))


def top_article(scores: list[float], articles: list[str], support: float, depth: int = 2,
                sections: list[str] | None = None, shares: list[int] | None = None) -> str:
    """The article with the most evidence (see ``article_order``); ties: the one met first."""
    places: dict[str, dict[str, float]] = {}  # article -> place -> its best (shared-out) score
    for j, (s, a) in enumerate(zip(scores, articles)):
        place = sections[j] if sections is not None else str(j)
        weight = s / max(1, shares[j]) if shares is not None else s
        best = places.setdefault(a, {})
        best[place] = max(best.get(place, weight), weight)
    best = {a: sorted(v.values(), reverse=True)[:depth] for a, v in places.items()}
    evidence = {a: sum(s * support ** i for i, s in enumerate(v)) for a, v in best.items()}
    return max(evidence, key=lambda a: (evidence[a], -articles.index(a)))



def distinct(ids: list[str], similarities: list[float], articles: list[str], texts: list[str],
             n: int) -> tuple[dict[str, float], dict[str, set[str]]]:
    """The first ``n`` of a dense result list (best first) with one copy of each text (the best
    one), and the articles seen holding each text: copies of a passage that several articles hold
    do not crowd the other passages out of the candidates."""
    holders: dict[str, set[str]] = {}
    dense: dict[str, float] = {}
    for i, s, a, t in zip(ids, similarities, articles, texts):
        key = passage_key(t or "")
        if key not in holders and len(dense) < n:
            dense[i] = s
        holders.setdefault(key, set()).add(a)
    return dense, holders


def heading_shared_bm25(query: list[str], heads: list[list[str]], bodies: list[list[str]], articles: list[str],
                        idf: dict[str, float], norms: list[float], k1: float) -> list[float]:
    """Okapi BM25 of each passage (its heading path's words ``heads``, its own words ``bodies``) with a
    heading's words shared out: a query word that the heading paths of several articles among the
    passages hold (a topic word in their titles) counts, where it stands in a heading, for one over
    that many, as ``shared_by`` shares out a passage several articles hold. A title names the
    article's topic once, but it heads every passage: among many articles on one topic, the
    title's words say which topic, not which passage answers. Words of the passage itself count
    whole; with one article, or words in one article's headings, this is plain BM25 (``idf``:
    the index's, per word; ``norms``: each passage's length term, ``k1 * (1 - b + b * len / avg)``)."""
    from collections import Counter

    holders: dict[str, set[str]] = {}
    for h, a in zip(heads, articles):
        for t in set(h):
            holders.setdefault(t, set()).add(a)
    out = []
    for h, b, norm in zip(heads, bodies, norms):
        in_head, in_body = Counter(h), Counter(b)
        score = 0.0
        for q in query:  # a word asked twice counts twice, as the index's BM25 has it
            if q not in idf:
                continue
            f = in_body.get(q, 0) + in_head.get(q, 0) / max(1, len(holders.get(q, ())))
            if f:
                score += idf[q] * f * (k1 + 1) / (f + norm)
        out.append(score)
    return out


def heading_shared_scores(index, words: list[str], rows, ids: list[str], docs: dict, kept: dict) -> list[float]:
    """``heading_shared_bm25`` of the passages at ``rows`` of a lexical index (``ids``: theirs; ``docs``:
    id -> (text, metadata)) for the query's ``words``, with the index's IDFs and length terms. ``kept``
    holds each passage's (heading words, own words) once tokenised, and gets the new ones."""
    from app.search.lexical import K1
    from app.search.text import tokenize

    idf = {q: float(index.idf[index.terms[q]]) for q in set(words) if q in index.terms}
    split = []
    for i in ids:
        got = kept.get(i)  # read once: another search may clear the dict meanwhile
        if got is None:
            got = kept[i] = (tokenize(str(docs[i][1].get("heading_path", ""))), tokenize(docs[i][0]))
        split.append(got)
    return heading_shared_bm25(words, [h for h, _ in split], [b for _, b in split],
                               [article_of(docs[i][1]) for i in ids], idf, [float(index.norm[r]) for r in rows], K1)


def distinct_rows(ranked, width: int, keys_of, articles_of, holders: dict[str, set[str]],
                  scan: int) -> list[int]:
    """The first ``width`` rows of ``ranked`` (best first) with one copy of each text, the best one,
    looking at most ``scan`` rows deep; ``holders`` gets the articles seen holding each key.
    ``keys_of(rows)`` / ``articles_of(rows)`` give the rows' ``passage_key`` (or its hash) and
    articles. A row a thousand articles' tables hold word for word (one code's row in a big help
    centre) would otherwise fill every place of the candidates before they are told apart."""
    pool: list[int] = []
    seen: set[str] = set()
    start, step = 0, max(1, 4 * width)
    while len(pool) < width and start < min(len(ranked), scan):
        rows = ranked[start : min(start + step, scan)]
        for r, key, art in zip(rows, keys_of(rows), articles_of(rows)):
            holders.setdefault(key, set()).add(art)
            if key not in seen and len(pool) < width:
                seen.add(key)
                pool.append(r)
        start, step = start + len(rows), step * 2
    return pool


def rescore(index, get, chosen, lexical, similarity, vector, n: int, floor: float) -> None:
    """The best ``n`` word matches (rows of ``chosen`` with a ``lexical`` score) that the dense search did
    not return (``similarity`` 0) get their cosine, read from their stored vectors (``get(ids)``: the
    store's ``get`` with embeddings), when it reaches ``floor``: a word match is then ranked on both
    halves of the fused score, not on its words alone. Among thousands of near-copies the vector
    index's graph also misses passages unlike the rest (at 10,000 articles the real article's two
    nearest passages for one dev question sat outside its 400 nearest). ``similarity`` is changed in place."""
    import numpy as np

    cand = np.flatnonzero(chosen & (similarity == 0) & (lexical > 0))
    top = cand[np.argsort(-lexical[cand], kind="stable")[:n]]
    if not len(top):
        return
    got = get([index.id_at(r) for r in top])
    at = dict(zip(got["ids"], got["embeddings"]))
    rows = [r for r in top if index.id_at(r) in at]
    if rows:
        vectors = np.stack([np.asarray(at[index.id_at(r)], dtype=np.float32) for r in rows])
        cosines = vectors @ np.asarray(vector, dtype=np.float32)
        near = cosines >= floor
        similarity[np.asarray(rows)[near]] = cosines[near]
