"""Build the clients once and hand them to whoever needs them.

Nothing heavy happens at import time. ``Services`` holds what a command or
the server needs; the model and the vector store are created only when a
question actually needs retrieval (or eagerly with ``warm()`` for a server).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.knowledge.articles import load_articles

from app.answering.answerer import Answerer, Support
from app.config import Settings
from app.errors import BouncebotError
from app.codes.table import CodeTable
from app.search.guard import SearchGuard

OPEN_TIMEOUT_FACTOR = 10  # opening the index reads every document: it may take this many query timeouts


@dataclass
class Services:
    settings: Settings
    table: CodeTable
    answerer: Answerer
    embedder: object
    _client: object = None
    guard: SearchGuard | None = None

    @property
    def client(self):
        if self._client is None:
            from app.search.chroma import make_client

            self._client = make_client(self.settings)
        return self._client

    def search_status(self) -> dict:
        """The vector store as last seen (never waits); starts a background check when due."""
        if self.guard is None:
            return {"state": "unknown"}
        retriever = self.answerer.retriever_if_open()
        if retriever is None:  # not opened yet, or opening failed: try (again) in the background
            self.guard.probe(lambda: self.answerer.retriever)
        else:
            self.guard.probe(lambda: self.guard.call("a health check", retriever.collection.count))
        return self.guard.status()

    @property
    def where(self) -> str:
        from app.search.chroma import where

        return where(self.settings)

    def lookup(self, text: str) -> dict:
        """The look-up contract for a text (what `bouncebot lookup --json` prints)."""
        return lookup_contract(self.table, text)

    def warm(self) -> "Services":
        """Load the model and open the index now (a server does this at start-up)."""
        self.answerer.retriever.embedder.load().embed_query("warm up")
        self.answerer.ask("warm up: how do I get an address off the bounce list?")  # builds what the first question needs
        return self


def load_kb(settings: Settings):
    try:
        return load_articles(settings.kb_dir)
    except FileNotFoundError as e:
        raise BouncebotError(f"{e} Set BOUNCEBOT_KB_DIR to the folder holding the articles.") from None


def lookup_contract(table: CodeTable, text: str) -> dict:
    """What `bouncebot lookup --json` prints and GET /api/lookup answers."""
    result = table.analyse(text)
    return {"text": text, "codes": [m.as_contract() for m in result.matches],
            "recipients": [r.to_dict() for r in result.recipients], "limits": result.limits.as_contract()}


def build(settings: Settings, client=None, embedder=None) -> Services:
    from app.search.embeddings import Embedder

    articles = load_kb(settings)
    table = CodeTable.from_articles(articles)
    embedder = embedder or Embedder.from_settings(settings)
    guard = SearchGuard(timeout=settings.store_timeout)
    services = Services(settings, table, None, embedder, client, guard)  # type: ignore[arg-type]

    def retriever():
        from app.knowledge.chunks import chunk_articles

        from app.search.retrieval import HybridRetriever
        from app.search.chroma import fingerprint, open_collection

        expected = fingerprint([c.id for c in chunk_articles(articles, embedder.name)])

        def open_index():
            col = open_collection(services.client, settings, expected)
            return HybridRetriever(col, embedder, dense_weight=settings.dense_weight, guard=guard)

        return guard.call("opening the index", open_index, timeout=settings.store_timeout * OPEN_TIMEOUT_FACTOR)

    def other_articles():
        from app._data import data_file
        from app.search.retrieval import OtherArticles

        titles = data_file("app.search", "other_articles.yaml")
        return OtherArticles(titles, embedder)

    services.answerer = Answerer(
        table,
        retriever,
        support=Support.from_articles(articles),
        top_k=settings.top_k,
        min_similarity=settings.min_similarity,
        max_question_bytes=settings.max_question_bytes,
        other_articles=other_articles,
        off_topic_margin=settings.off_topic_margin,
    )
    return services
