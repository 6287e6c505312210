"""Fakes for the fast unit tests: what stands in for the slow parts, through
the same doors as the real ones.

- ``FakeEmbedder``: the interface of ``app.search.embeddings.Embedder``
  (``name``, ``load()``, ``loaded``, ``embed_query``, ``embed_documents(texts,
  progress=False)``, ``dimension``), with deterministic, normalised vectors: a
  signed, hashed bag of words, so texts sharing words are similar and texts
  sharing none are close to orthogonal. No model, no torch, no onnxruntime.
  ``pin(text, vector)`` makes a question embed to a chosen vector, and
  ``vector_at(target, similarity)`` builds one at an exact cosine from a
  document (through a dimension no word ever hashes to), so a test controls
  what the real retrieval over a real Chroma sees.
- ``fake_services(index_dir)``: the real services (``app.answering.services.build``)
  over the real KB in ``kb/``, ingested by the real indexer into a real
  embedded Chroma in ``index_dir`` with a ``FakeEmbedder``: the whole pipeline
  but the model, in well under a second.
- ``FakeRetriever``: ``HybridRetriever.search(query, k, kinds) -> SearchResult``
  answering exactly what the test says (hits from the real KB's documents, a
  ``best_similarity``, a query vector), or raising (``SearchUnavailable``);
  ``FakeOtherArticles``: ``OtherArticles.closest(vector)`` answering a chosen
  title and similarity. ``services_with(services, retriever, other_articles)``
  puts them behind a real ``Answerer`` built as ``build`` builds it.
- ``BrokenChromaClient``: a vector store that refuses every call;
  ``broken_services(index_dir)`` builds the real services on it (search is
  unavailable through the real ``SearchGuard``).
- ``FakeFeedbackLog``: ``app.web.feedback.FeedbackLog``'s ``add``, ``count``,
  ``problem`` and ``all``, kept in a list; it can be told to fail.

Nothing here imports torch or loads the ONNX model (``tests/unit/test_fakes.py``
checks ``sys.modules``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "kb"

__all__ = [
    "KB", "FAKE_MIN_SIMILARITY", "FakeEmbedder", "FakeRetriever", "FakeOtherArticles", "FakeCollection",
    "FakeFeedback", "FakeFeedbackLog", "BrokenChromaClient", "fake_settings", "fake_services", "broken_services",
    "services_with", "kb_articles", "kb_chunks", "kb_rows", "chunk", "hit", "result", "cells", "wording", "words",
    "cosine",
]

# The fake's cosines run lower than MiniLM's (a bag of words shares nothing with a paraphrase), so
# the services built on it use this floor; policy tests that need the real floor set it themselves.
FAKE_MIN_SIMILARITY = 0.15

_WORD = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i if in is it its me my of on or "
    "our so that the their there this to was we what when where which who why will with you your "
    "not no any all get got s t".split()
)
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """The fake's features: lower-cased words and dotted codes, stop words out, crude stems."""
    return [_stem(w) for w in _WORD.findall(str(text).lower()) if w not in _STOP]


# ----------------------------------------------------------------- embedder

class FakeEmbedder(Embeddings):
    """A deterministic stand-in for ``Embedder``: no model, same interface.

    A text's vector is its words hashed into ``dimension - 1`` signed buckets
    (weight ``1 + log(count)``), normalised. Dimension 0 is kept out of the
    hashing: no text uses it, so a pinned vector can lean on it to sit at an
    exact cosine from a document and at a known one from every other.
    A text without words gets the unit vector of dimension 0.
    """

    name = "fake-hashed-bag-of-words"

    def __init__(self, dimension: int = 4096):
        if dimension < 8:
            raise ValueError("dimension: at least 8")
        self.dimension = dimension
        self._loaded = False
        self._pinned: dict[str, tuple[float, ...]] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many times load() was called
        self.queries: list[str] = []  # every text embed_query was asked for, in order
        self.documents = 0  # how many texts embed_documents embedded

    @classmethod
    def from_settings(cls, settings=None) -> "FakeEmbedder":
        return cls()

    # The real model's interface ---------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> "FakeEmbedder":
        with self._lock:
            self.loads += 1
            self._loaded = True
        return self

    def embed_documents(self, texts: Iterable[str], progress: bool = False) -> list[list[float]]:
        texts = list(texts)
        if not texts:
            return []
        self.load()
        with self._lock:
            self.documents += len(texts)
        return [list(self._vector(t)) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.load()
        with self._lock:
            self.queries.append(text)
            pinned = self._pinned.get(text)
        return list(pinned if pinned is not None else self._vector(text))

    # Control --------------------------------------------------------------------------

    def vector(self, text: str) -> tuple[float, ...]:
        """``text``'s own vector (pins ignored), without counting a call."""
        return self._vector(text)

    def pin(self, text: str, vector: Iterable[float]) -> "FakeEmbedder":
        """From now on ``embed_query(text)`` gives ``vector`` (normalised)."""
        self._pinned[text] = _normalised(list(vector))
        return self

    def unpin(self, text: str | None = None) -> None:
        if text is None:
            self._pinned.clear()
        else:
            self._pinned.pop(text, None)

    def vector_at(self, target: str | Iterable[float], similarity: float, toward: str | None = None) -> tuple[float, ...]:
        """A unit vector whose cosine with ``target`` (a text, or a vector) is exactly ``similarity``.

        The rest of it points along dimension 0 (no document uses it), so its
        cosine with any other document ``d`` is ``similarity * cos(target, d)``:
        ``target`` stays the closest. With ``toward`` (a text whose vector has a
        part orthogonal to ``target``), the rest points that way instead."""
        if not -1.0 <= similarity <= 1.0:
            raise ValueError("similarity: between -1 and 1")
        t = self._vector(target) if isinstance(target, str) else _normalised(list(target))
        if toward is None:
            rest = [0.0] * self.dimension
            rest[0] = 1.0
        else:
            u = self._vector(toward)
            dot = sum(a * b for a, b in zip(u, t))
            rest = [a - dot * b for a, b in zip(u, t)]
            norm = math.sqrt(sum(a * a for a in rest))
            if norm < 1e-6:
                raise ValueError("toward: its vector has no part orthogonal to the target's")
            rest = [a / norm for a in rest]
        other = math.sqrt(max(0.0, 1.0 - similarity * similarity))
        return tuple(similarity * a + other * b for a, b in zip(t, rest))

    # -----------------------------------------------------------------------------------

    def _vector(self, text: str) -> tuple[float, ...]:
        counts = Counter(words(text))
        v = [0.0] * self.dimension
        if not counts:
            v[0] = 1.0
            return tuple(v)
        for word, n in counts.items():
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            bucket = 1 + (h >> 1) % (self.dimension - 1)
            v[bucket] += (1.0 + math.log(n)) * (1.0 if h & 1 else -1.0)
        return _normalised(v)


def _normalised(v: list[float]) -> tuple[float, ...]:
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0:
        raise ValueError("a zero vector has no direction")
    return tuple(x / norm for x in v)


def cosine(a: Iterable[float], b: Iterable[float]) -> float:
    a, b = list(a), list(b)
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# ------------------------------------------------------------ the real KB

def kb_articles():
    from app.knowledge.articles import load_articles

    return load_articles(KB)


def kb_rows() -> dict[str, tuple[str, str]]:
    """The article's error table, verbatim: {code: (meaning, action)}."""
    return {r.code: (r.meaning, r.action) for a in kb_articles() for r in a.rows}


def kb_chunks(model: str = FakeEmbedder.name):
    """The index documents the real KB makes (what ingest writes), for ``model``."""
    from app.knowledge.chunks import chunk_articles

    return chunk_articles(kb_articles(), model)


def chunk(section: str | None = None, code: str | None = None, model: str = FakeEmbedder.name):
    """The first document of ``section`` (a heading), or the row document of ``code``."""
    for c in kb_chunks(model):
        md = c.metadata
        if code is not None and md.get("kind") == "row" and md.get("code") == code:
            return c
        if code is None and md.get("kind") == "section" and md.get("section") == section:
            return c
    raise LookupError(f"no KB document for section={section!r} code={code!r}")


def cells(row: dict) -> dict:
    """A contract row's three table cells (``code``, ``meaning``, ``action``): what must be verbatim."""
    return {k: row[k] for k in ("code", "meaning", "action")}


def wording() -> dict:
    """The answers' fixed wording (app/answering/data/wording.yaml)."""
    from app._data import data_file

    return data_file("app.answering", "wording.yaml")


# ---------------------------------------------------------------- services

def fake_settings(index_dir: Path, **changes):
    """Settings for services on fakes: the real KB, an index in ``index_dir``."""
    from app.config import Settings

    base = dict(kb_dir=KB, index_dir=Path(index_dir), collection="fake_kb", min_similarity=FAKE_MIN_SIMILARITY,
                feedback_db=Path(index_dir) / "feedback.sqlite3")
    base.update(changes)
    return Settings().with_(**base)


def fake_services(index_dir: Path, embedder: FakeEmbedder | None = None, **settings_changes):
    """The real services over a real embedded Chroma in ``index_dir``, the real
    KB ingested into it by the real indexer, with a ``FakeEmbedder``.

    ``services.embedder`` is the fake: pin questions on it to steer retrieval."""
    from app.answering.services import build
    from app.search.chroma import make_client
    from ingest.indexer import ingest

    embedder = embedder or FakeEmbedder()
    settings = fake_settings(index_dir, **settings_changes)
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    return build(settings, client=client, embedder=embedder)


def services_with(services, retriever, other_articles=None, **settings_changes):
    """A copy of ``services`` whose answerer asks ``retriever`` (a ``FakeRetriever``)
    and ``other_articles`` (a ``FakeOtherArticles``, or None for no such check),
    built with the same arguments ``app.answering.services.build`` gives it.
    ``settings_changes`` (``min_similarity``, ``top_k``, ...) apply to the copy."""
    from app.answering.answerer import Answerer

    settings = services.settings.with_(**settings_changes)
    answerer = Answerer(
        services.table,
        lambda: retriever,
        support=services.answerer.support,
        top_k=settings.top_k,
        min_similarity=settings.min_similarity,
        max_question_bytes=settings.max_question_bytes,
        other_articles=(lambda: other_articles) if other_articles is not None else None,
        off_topic_margin=settings.off_topic_margin,
    )
    return dataclasses.replace(services, settings=settings, answerer=answerer, guard=None)


class BrokenChromaClient:
    """A Chroma client whose every call fails as a store that went away does:
    behind the real ``SearchGuard`` that is search being unavailable."""

    def __init__(self, error: BaseException | None = None):
        self.error = error or ConnectionError("[Errno 111] Connection refused")
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def fail(*args, **kwargs):
            self.calls.append(name)
            raise self.error

        return fail


def broken_services(index_dir: Path, error: BaseException | None = None, **settings_changes):
    """The real services built by ``build`` on a ``FakeEmbedder`` and a ``BrokenChromaClient``."""
    from app.answering.services import build

    return build(fake_settings(index_dir, **settings_changes), client=BrokenChromaClient(error), embedder=FakeEmbedder())


# --------------------------------------------------------------- retrieval

def hit(doc, similarity: float, score: float | None = None, lexical: float = 0.0):
    """A search hit on a KB document (a ``Chunk``) at the given dense similarity."""
    from app.search.retrieval import Hit

    return Hit(doc.id, doc.text, dict(doc.metadata), similarity if score is None else score, similarity, lexical)


def result(hits: list, best_similarity: float | None = None, vector: Iterable[float] = ()):
    from app.search.retrieval import SearchResult

    best = max((h.similarity for h in hits), default=0.0) if best_similarity is None else best_similarity
    return SearchResult(list(hits), best, tuple(vector))


class FakeCollection:
    """What ``/healthz`` asks of the retriever's collection."""

    def __init__(self, documents: int):
        self.documents = documents

    def count(self) -> int:
        return self.documents


class FakeRetriever:
    """``HybridRetriever``'s ``search`` answering what the test says.

    ``answer`` is a ``SearchResult``, a list of hits, a callable
    ``(query, k, kinds) -> SearchResult`` or an exception (instance or class)
    to raise. Hits are filtered by ``kinds`` and cut to ``k`` as the real one
    does; a result without a vector gets ``embedder.embed_query(query)`` when an
    embedder is given. Every call is kept in ``calls``."""

    def __init__(self, answer=(), embedder: FakeEmbedder | None = None, documents: int | None = None):
        self.answer = answer
        self.embedder = embedder or FakeEmbedder()
        self.calls: list[tuple[str, int, tuple[str, ...] | None]] = []
        self.collection = FakeCollection(len(kb_chunks()) if documents is None else documents)

    def __len__(self) -> int:
        return self.collection.count()

    def search(self, query: str, k: int = 3, kinds: tuple[str, ...] | None = None):
        from app.search.retrieval import SearchResult

        self.calls.append((query, k, tuple(kinds) if kinds else None))
        answer = self.answer
        if isinstance(answer, BaseException) or (isinstance(answer, type) and issubclass(answer, BaseException)):
            raise answer
        if callable(answer):
            got = answer(query, k, kinds)
        elif isinstance(answer, SearchResult):
            got = answer
        else:
            got = result(list(answer))
        kept = [h for h in got.hits if not kinds or h.metadata.get("kind") in kinds]
        best = got.best_similarity
        if len(kept) < len(got.hits):  # as the real one: the best of the documents of those kinds
            best = max((h.similarity for h in kept), default=0.0)
        hits = kept[:k]
        vector = got.vector or tuple(self.embedder.embed_query(query))
        return SearchResult(hits, best, vector)


class FakeOtherArticles:
    """``OtherArticles.closest(vector) -> (title, similarity)``, as the test says:
    a fixed pair, or a callable of the vector."""

    def __init__(self, title: str | None = None, similarity: float = 0.0,
                 closest: Callable[[tuple], tuple[str | None, float]] | None = None):
        self.title, self.similarity, self._closest = title, similarity, closest
        self.titles = [title] if title else []
        self.calls = 0

    def closest(self, vector):
        self.calls += 1
        if self._closest is not None:
            return self._closest(tuple(vector))
        return self.title, self.similarity


# ---------------------------------------------------------------- feedback

@dataclasses.dataclass(frozen=True)
class FakeFeedback:
    id: int
    rating: str
    question: str
    answer: str
    comment: str
    answered: bool | None
    codes: list
    sources: list


class FakeFeedbackLog:
    """``FeedbackLog``'s interface in memory. ``fail_with`` (an exception) makes
    ``add`` raise it and ``problem()`` say it, as a database that cannot be
    written would."""

    def __init__(self, fail_with: BaseException | None = None):
        self.fail_with = fail_with
        self.items: list[FakeFeedback] = []
        self._lock = threading.Lock()

    def add(self, rating: str, question: str, answer: str, comment: str = "", answered: bool | None = None,
            codes: list | None = None, sources: list | None = None) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            item = FakeFeedback(len(self.items) + 1, rating, question, answer, comment, answered,
                                list(codes or []), list(sources or []))
            self.items.append(item)
            return item.id

    def count(self) -> int:
        return len(self.items)

    def problem(self) -> str | None:
        return None if self.fail_with is None else str(self.fail_with)

    def all(self, rating: str | None = None) -> list[FakeFeedback]:
        return [i for i in self.items if rating is None or i.rating == rating]
