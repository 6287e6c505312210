"""Article-aware ranking (issue 14): in a help centre of many articles, prefer the passages of
the article a question is about. Pure functions over fused scores; ``HybridRetriever.search``
applies them."""

from __future__ import annotations

import re

__all__ = ["article_of", "article_order", "distinct", "passage_key", "shared_by", "top_article"]


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
