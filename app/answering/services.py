"""Build the services once, frozen, and hand them to whoever needs them.

``build()`` is the one start-up: every command, the server, the evals, the
bench and the tests' fixtures get their ``Services`` from it, and nothing in
them changes afterwards. With ``ingest_first=True`` it first brings the index
up to date with the knowledge base (building it when missing or stale).

Nothing heavy happens at import time or in ``build()`` itself: the model and
the vector store are created only when a question actually needs retrieval
(or eagerly with ``warm()`` for a server). The embedder, the Chroma client and
the retriever are injected parts, typed by ``app.answering.ports``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.knowledge.articles import article_cache, load_articles

from app.answering.ports import Embedder, Retriever
from app.config import Settings
from app.errors import KBNotFound
from app.codes.table import CodeTable

if TYPE_CHECKING:  # imported where used: `bouncebot lookup` needs neither the answerer nor the guard
    from app.answering import contract  # (nor pydantic: it prints app.answering.lookup_plain's object)
    from app.answering.answerer import Answerer
    from app.answering.live import IndexWatch
    from app.search.guard import SearchGuard

OPEN_TIMEOUT_FACTOR = 10  # opening the index reads every document: it may take this many query timeouts


@dataclass(frozen=True)
class Services:
    settings: Settings
    table: CodeTable
    answerer: Answerer
    embedder: Embedder
    guard: SearchGuard | None = None  # None: retrieval is not bounded (a test's stand-in retriever)
    watch: IndexWatch | None = None  # build(live=True): follows the index head; start() it (a server does)

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

    def lookup_contract(self, text: str) -> contract.Lookup:
        """The look-up contract for a text (what `bouncebot lookup --json` prints)."""
        return lookup_contract(self.answerer.table, text)  # the version being served (it may have moved)

    def warm(self) -> "Services":
        """Load the model and open the index now (a server does this at start-up)."""
        self.embedder.load().embed_query("warm up")
        self.answerer.ask("warm up: how do I get an address off the bounce list?")  # builds what the first question needs
        return self


def load_kb(settings: Settings):
    
    try:
        return load_articles(settings.kb_dir, cache=article_cache(settings))
    except FileNotFoundError as e:
        raise KBNotFound(str(e)) from None


def lookup_contract(table: CodeTable, text: str) -> contract.Lookup:
    """What GET /api/lookup answers; its ``model_dump(mode="json")`` is what `bouncebot lookup --json`
    prints (built there without pydantic: ``app.answering.lookup_plain``)."""
    from app.answering import contract

    result = table.analyse(text)
    return contract.Lookup(text=text, codes=[contract.Code.of(m) for m in result.matches],
                           recipients=[contract.Recipient.of(r) for r in result.recipients],
                           limits=contract.Limits.of(result.limits), message_kind=result.kind)


def build(settings: Settings, *, embedder: Embedder | None = None, client=None,
          ingest_first: bool = False, chat_model=None, live: bool = False) -> Services:
    """The services for ``settings``; ``embedder`` and ``client`` (a Chroma client)
    default to the ones the settings name, made when first needed.

    ``ingest_first``: index the knowledge base first, embedding only what the
    index lacks (nothing when it is up to date), as ``bouncebot ingest`` does.
    Without it a missing or stale index is refused on the first search
    (``IndexNotReady``: "run `bouncebot ingest`").

    With ``BOUNCEBOT_LLM`` on (``settings.llm``), or a ``chat_model`` given (a LangChain chat model),
    the answerer is the language-model mode's (``app.answering.llm``); the model is made and its
    prompt prefix warmed here, once. With it off nothing of the model's stack is imported.

    ``live``: the answerer follows re-indexes without a restart (``app.answering.live``): the
    returned ``watch`` swaps in the next KB version when the index head moves; a server starts it."""
    from app.answering.answerer import Answerer, Support, once
    from app.search.embeddings import Embedder as MiniLMEmbedder
    from app.search.guard import SearchGuard

    embedder = embedder if embedder is not None else MiniLMEmbedder.from_settings(settings)
    if ingest_first:
        from ingest.indexer import ingest
        from app.search.chroma import make_client

        client = client if client is not None else make_client(settings)
        ingest(settings, client, embedder, progress=False)
    guard = SearchGuard(timeout=settings.store_timeout)

    def make_chroma():
        from app.search.chroma import make_client

        return client if client is not None else make_client(settings)

    chroma = once(make_chroma)  # the Chroma client: made once, when first searched

    def answerer_for(articles) -> Answerer:
        """An answerer over one version of the KB: its table, articles and the index built from them."""
        table = CodeTable.from_articles(articles)

        def retriever() -> Retriever:
            from app.knowledge.chunks import chunk_articles

            from app.search.body import body_dir
            from app.search.retrieval import HybridRetriever
            from app.search.chroma import fingerprint, open_collection
            from app.search.lexical import lexical_dir
            from app.search.multilingual import multilingual_dir
            from app.search.multilingual_space import multilingual_embedder

            expected = fingerprint([c.id for c in chunk_articles(articles, embedder.name)])

            def open_index():
                col = open_collection(chroma(), settings, expected)
                return HybridRetriever(col, embedder, dense_weight=settings.dense_weight, guard=guard,
                                       lexical_dir=lexical_dir(settings),
                                       multilingual=multilingual_embedder if settings.multilingual else None,
                                       multilingual_dir=multilingual_dir(settings),
                                       multilingual_max_docs=settings.multilingual_max_docs,
                                       body_dir=body_dir(settings))

            return guard.call("opening the index", open_index, timeout=settings.store_timeout * OPEN_TIMEOUT_FACTOR)

        def other_articles():
            from app._data import data_file
            from app.search.other_articles import OtherArticles
            from app.search.multilingual_space import multilingual_embedder

            # The help centre's other articles: those the KB holds are answered from, not pointed to.
            titles = OtherArticles.without(data_file("app.search", "other_articles.yaml"),
                                           [a.title for a in articles])
            return OtherArticles(titles, embedder, multilingual=multilingual_embedder if settings.multilingual else None)

        return Answerer(
            table,
            retriever,
            support=Support.from_articles(articles),
            top_k=settings.top_k,
            min_similarity=settings.min_similarity,
            max_question_bytes=settings.max_question_bytes,
            other_articles=other_articles,
            off_topic_margin=settings.off_topic_margin,
            articles=articles,
            max_history_turns=settings.max_history_turns,
            support_email=settings.support_email,
        )

    llm = chat_model is not None or settings.llm.enabled
    answerer = answerer_for(load_kb(settings))
    table = answerer.table
    if llm:
        answerer = with_llm(settings, answerer, embedder, chat_model)
    watch = None
    if live:  # a version is swapped whole: the language-model mode's prompt (the article) included
        from app.answering.live import live_answerer

        model = answerer.model if llm else None

        def version_for(articles):
            new = answerer_for(articles)
            return with_llm(settings, new, embedder, model) if llm else new  # the same model, not warmed again

        answerer = live_answerer(answerer)
        watch = _index_watch(settings, answerer, chroma, version_for, embedder)
    return Services(settings, table, answerer, embedder, guard, watch)


def _index_watch(settings: Settings, live, chroma, answerer_for, embedder):
    """The thread that moves ``live`` to each new index version (``app.answering.live``); not started."""
    from app.answering.live import WARM_QUESTION, IndexWatch
    from app.knowledge.chunks import chunk_articles
    from app.search.chroma import fingerprint, get_collection, head_version, retire_previous

    def rebuild(name: str):
        articles = load_kb(settings)
        version = get_collection(chroma(), name)
        recorded = ((version.metadata or {}) if version is not None else {}).get("fingerprint")
        if recorded != fingerprint([c.id for c in chunk_articles(articles, embedder.name)]):
            return None  # kb_dir is not that version's: keep serving the one opened
        new = answerer_for(articles)
        getattr(new, "inner", new).ask(WARM_QUESTION)  # opens the index (checked against this KB); no model call
        return new

    return IndexWatch(live, settings.index_poll, version=lambda: head_version(chroma(), settings), rebuild=rebuild,
                      retire=lambda: retire_previous(chroma(), settings))


def with_llm(settings: Settings, answerer: Answerer, embedder: Embedder, chat_model=None):
    """The language-model mode over ``answerer``: ``chat_model``, or the one ``settings.llm`` names,
    made and warmed now (the fixed prefix processed once, or restored from its saved KV cache)."""
    from app.answering.llm.guard import Guard
    from app.answering.llm.mode import LLMAnswerer
    from app.llm.prefix import build_prefix

    prefix = build_prefix(answerer.articles if answerer.articles is not None else load_kb(settings))
    if chat_model is None:
        from app.llm.door import make_chat_model, warm

        chat_model = make_chat_model(settings.llm)
        warm(chat_model, prefix.messages)
    return LLMAnswerer(answerer, chat_model, Guard(embedder.embed_documents), prefix.messages,
                       timeout=settings.llm.timeout, name=settings.llm.model, in_prefix=prefix.articles)
