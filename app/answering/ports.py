"""The parts handed in from outside, as the little they must do.

``build()`` takes an embedder, the answerer a retriever (through a provider,
opened on first use), and the web layer a feedback log. These Protocols say
what each must offer, so a test or a bench can hand in its own. The
implementations are ``app.search.embeddings.Embedder`` (MiniLM via ONNX),
``app.search.retrieval.HybridRetriever`` (dense + BM25 over Chroma) and
``app.web.feedback.FeedbackLog`` (SQLite); they satisfy these structurally,
without importing this module (``tests/unit/test_ports.py`` holds that).

Nothing here is imported at run time beyond ``typing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.search.results import SearchResult


class Embedder(Protocol):
    """Turns text into unit vectors; loads its model on first use (or on ``load()``)."""

    name: str  # the model's name: part of every index document's ID

    @property
    def loaded(self) -> bool: ...

    def load(self) -> "Embedder": ...

    def embed_query(self, text: str) -> list[float]: ...

    def embed_documents(self, texts: list[str], progress: bool = False) -> list[list[float]]: ...


class Retriever(Protocol):
    """Searches the open index: the passages for a question, best first."""

    collection: Any  # the Chroma collection it reads (for counts and health checks)

    def __len__(self) -> int: ...

    def search(self, query: str, k: int = 3, kinds: tuple[str, ...] | None = None) -> "SearchResult": ...


class FeedbackLog(Protocol):
    """Where agents' thumbs up/down go; ``add`` returns only once the row is kept."""

    def add(self, rating: str, question: str, answer: str, comment: str = "", answered: bool | None = None,
            codes: list | None = None, sources: list | None = None) -> int: ...

    def count(self) -> int: ...

    def all(self, rating: str | None = None) -> list: ...

    def problem(self) -> str | None:
        """None, or why an ``add`` would not be kept right now."""
        ...
