"""Article-aware ranking (issue 14): in a help centre of many articles, prefer the passages of
the article a question is about. Pure functions over fused scores; ``HybridRetriever.search``
applies them."""

from __future__ import annotations

__all__ = ["article_of", "article_order", "top_article"]


def article_of(metadata: dict) -> str:
    """Which article a document belongs to (its path in the KB; the title for older indexes)."""
    return str(metadata.get("article_path") or metadata.get("article") or "")


def article_order(scores: list[float], articles: list[str], support: float, penalty: float,
                  depth: int = 2, sections: list[str] | None = None) -> list[int]:
    """Positions of ``scores`` (fused scores, best first) in their article-aware order.

    An article's evidence is the scores of its ``depth`` best passages, the i-th (from 0) weighed
    ``support ** i``: the article a question is about usually answers it in more than one place,
    where an unrelated article that happens to share one sentence's words has one passage near
    the top. With ``sections`` (each score's section), only each section's best passage counts:
    the rows of one table, or the pieces of one long section, are one place. Passages of every
    article but the one with the most evidence lose ``penalty``; within that, the fused order
    stands. With one article among the results the order is unchanged."""
    if len(set(articles)) < 2 or penalty <= 0:
        return list(range(len(scores)))
    first = top_article(scores, articles, support, depth, sections)
    adjusted = [s - (0.0 if a == first else penalty) for s, a in zip(scores, articles)]
    return sorted(range(len(scores)), key=lambda j: (-adjusted[j], j))


def top_article(scores: list[float], articles: list[str], support: float, depth: int = 2,
                sections: list[str] | None = None) -> str:
    """The article with the most evidence (see ``article_order``); ties: the one met first."""
    best: dict[str, list[float]] = {}
    seen: set[tuple[str, str]] = set()
    for j, (s, a) in enumerate(zip(scores, articles)):
        place = (a, sections[j] if sections is not None else str(j))
        top = best.setdefault(a, [])
        if len(top) < depth and place not in seen:
            top.append(s)
        seen.add(place)
    evidence = {a: sum(s * support ** i for i, s in enumerate(v)) for a, v in best.items()}
    return max(evidence, key=lambda a: (evidence[a], -articles.index(a)))

