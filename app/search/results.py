"""What a search returns: its hits, the best similarities the refusal checks read, and the
query's vector in the space it was embedded in (``app.search.retrieval`` makes them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hit", "QueryVector", "SearchResult"]


class QueryVector(tuple):
    """A query's embedding, and the space it lives in (``minilm`` or
    ``multilingual``), so later checks compare it with the right vectors."""

    space = "minilm"

    def __new__(cls, values, space: str = "minilm"):
        self = super().__new__(cls, values)
        self.space = space
        return self


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
    # The best dense cosine of the article that answers (the first hit's), among many articles; None:
    # ``best_similarity`` (one article among the dense results, where the two are the same).
    answer_similarity: float | None = None

    @property
    def answering_similarity(self) -> float:
        """What the refusal checks compare: the answering article's own best cosine (issue 14: another
        article's near passage says nothing about whether this one answers)."""
        return self.best_similarity if self.answer_similarity is None else self.answer_similarity
