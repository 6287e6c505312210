"""The Chroma client: an embedded persistent store by default, a Chroma
server when ``BOUNCEBOT_CHROMA_URL`` is set (replicas then share one index).

The index records a fingerprint of the knowledge base it was built from, so
a stale or missing index is detected without loading the model; it is
written aside and switched to at the end (see "The index's layout" below),
so it is never read half-written.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from urllib.parse import urlparse

from app.config import Settings
from app.errors import BadChromaURL, BouncebotError, IndexNotReady, SearchUnavailable
from app.search.versions import STORE, VersionView, all_ids, delete_records, doc_of, is_manifest, read_manifest

# Cosine space; a search width of 400 (Chroma's default is 100): at 1,000 articles the default missed
# 4 of 1,200 top-10 passages (the real article's two best for "what goes on a bounce list" among them)
# and dev recall@1 rose 0.814 -> 0.822 with 400; it costs about 1.4 ms a query at 30,000 vectors.
EF_SEARCH = 400
COSINE = {"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}}


def make_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        u = urlparse(settings.chroma_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BadChromaURL(settings.chroma_url)
        try:
            client = chromadb.HttpClient(
                host=u.hostname,
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=chroma_settings,
            )
        except ValueError as e:  # "Could not connect to a Chroma server. Are you sure it is running?"
            raise SearchUnavailable(f"the Chroma server at {settings.chroma_url} does not answer: {e}") from None
        _bound_http_calls(client, settings.store_timeout)
        return client
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with reading_store(settings):  # a corrupt store: IndexNotReady saying what to do
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


def _bound_http_calls(client, seconds: float) -> None:
    """Chroma's HTTP client waits forever (``httpx.Client(timeout=None)``);
    give its session a timeout so a worker stuck on a hung server comes back.
    The callers' own limit is ``app.search.guard``'s; this frees the thread."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(max(seconds * 5, 10.0))


def fingerprint(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]


def where(settings: Settings) -> str:
    return settings.chroma_url or str(settings.index_dir)


# --- The index's layout -------------------------------------------------------
#
# The collection named ``settings.collection`` is the index's *head*: it holds
# no documents, only a pointer (``current``) to the current version. Documents
# live in one *store* collection (``<head>-store``) shared by every live version,
# and a version is a small collection listing its documents' store records (its
# manifest) beside its fingerprint (``app.search.versions``). ``bouncebot ingest``
# adds only the documents the store lacks, writes the next version's manifest,
# and switches the pointer at the end: one metadata write, atomic in Chroma. So a
# reader started at any moment opens one whole version, and a replica already
# running keeps reading the version it opened (it stays, as ``previous``, until
# it is retired). An ingest killed midway leaves documents no version lists: a
# reader never sees them, the next ingest reuses their vectors and removes the
# rest. A reader also checks that its version's manifest is exactly the set its
# fingerprint names and that the store holds all of it, so documents removed
# behind the index's back are refused, never served.
#
# A version of the layout before the store (one collection holding its own
# documents) and an index built before versions (its documents in the head
# itself, ``fingerprint`` in the head's metadata) are read as they are, with the
# same check; the next ingest moves their vectors into the store (none embedded).

CURRENT = "current"  # head: the collection holding the current version
PREVIOUS = "previous"  # head: the version before it, kept for replicas still reading it
HEAD = "head"  # a version: the head it belongs to
CREATED = "created"  # a version: when its build started (seconds since the epoch)
SWITCHED = "switched"  # head: when it last moved to a new version (seconds since the epoch)
RETIRE_POLLS = 5  # the previous version is removed this many replicas' poll intervals after a switch


# --- Live re-index --------------------------------------------------------------
#
# A running process checks the head every ``BOUNCEBOT_INDEX_POLL`` seconds
# (``head_version``: one metadata read) and, when it has moved, opens the new
# version and swaps to it (``app.answering.live``). The version it left stays
# until every replica has had ``RETIRE_POLLS`` polls to move, then whoever sees
# it first (a replica already on the current version, or the next ingest)
# deletes it (``retire_previous``). Replicas only ever delete collections; the
# head's metadata is written by ingest alone, so a switch is never undone.


def retire_grace(settings: Settings) -> float:
    """Seconds after a switch before the previous version may be deleted."""
    return RETIRE_POLLS * settings.index_poll


def head_version(client, settings: Settings) -> str | None:
    """The name of the version the head points to now (None: no head, or an index built before versions)."""
    head = get_collection(client, settings.collection)
    return None if head is None else (head.metadata or {}).get(CURRENT) or None


def retire_previous(client, settings: Settings, now: float | None = None) -> str | None:
    """Delete the version the head left, once the grace after the switch has passed; its name, or None."""
    import time

    head = get_collection(client, settings.collection)
    meta = (head.metadata or {}) if head is not None else {}
    previous, switched = meta.get(PREVIOUS), meta.get(SWITCHED)
    if not previous or switched is None or previous == meta.get(CURRENT):
        return None
    if (time.time() if now is None else now) - float(switched) < retire_grace(settings):
        return None
    old = get_collection(client, previous)
    if old is None:
        return None  # already gone
    try:
        if is_manifest(old):  # its documents that the current version does not list leave the store first
            _drop_documents_of(client, old, meta.get(CURRENT))
        client.delete_collection(previous)
    except Exception:  # noqa: BLE001 - another replica deleted it first
        return None
    return previous


def _drop_documents_of(client, old, current_name: str | None) -> None:
    """Delete from the store the documents ``old`` lists and the current version does not."""
    current = get_collection(client, current_name) if current_name else None
    if current is None or not is_manifest(current):
        return  # nothing to compare with: leave them (the next ingest's clean-up removes what nobody lists)
    store = get_collection(client, (old.metadata or {})[STORE])
    if store is None:
        return
    gone = sorted(set(read_manifest(old)) - set(read_manifest(current)))
    delete_records(store, gone)


def version_name(head: str, created: float) -> str:
    import secrets
    import time

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created))
    return f"{head[:470]}-{stamp}-{secrets.token_hex(4)}"


def get_collection(client, name: str):
    """The collection called ``name``, or None when there is none."""
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name, embedding_function=None)
    except (NotFoundError, ValueError):
        return None


def current_version(client, settings: Settings, head=None, strict: bool = True):
    """The collection readers open now (``head`` itself for an index built
    before versions), or None when there is no index at all (or, unless
    ``strict``, when the head points to a version that is gone)."""
    for _ in range(3):  # a switch (and the clean-up of an old version) may happen between two reads
        head = head or get_collection(client, settings.collection)
        if head is None:
            return None
        name = (head.metadata or {}).get(CURRENT)
        if not name:
            return head
        col = get_collection(client, name)
        if col is not None:
            return col
        head = None
    if not strict:
        return None
    raise IndexNotReady(
        f"The index at {where(settings)} is incomplete: its current version '{name}' is missing. "
        "Rebuild it with `bouncebot ingest`."
    )


def open_collection(client, settings: Settings, expected_fingerprint: str | None = None):
    """The collection holding the index's current version, checked against
    the KB's fingerprint and against the documents it actually holds.

    Raises ``IndexNotReady`` (with the command that fixes it) when the index
    is missing, empty, was built from another version of the KB, holds
    other documents than its fingerprint names (an interrupted ingest), or
    cannot be read at all.
    """
    with reading_store(settings):
        col = current_version(client, settings)
        if col is None:
            raise IndexNotReady(
                f"No index '{settings.collection}' at {where(settings)}. Build it with `bouncebot ingest`."
            )
        recorded = (col.metadata or {}).get("fingerprint")
        if not recorded:
            raise IndexNotReady(
                f"The index at {where(settings)} is incomplete. Rebuild it with `bouncebot ingest`."
            )
        if expected_fingerprint and recorded != expected_fingerprint:
            raise IndexNotReady(
                f"The index at {where(settings)} is out of date with the knowledge base in "
                f"{settings.kb_dir}. Update it with `bouncebot ingest`."
            )
        if is_manifest(col):
            return _open_view(client, settings, col, recorded)
        ids = col.get(include=[])["ids"]
    if fingerprint(ids) != recorded:
        raise _incomplete(settings, len(ids))
    return col


def _incomplete(settings: Settings, held: int) -> IndexNotReady:
    return IndexNotReady(
        f"The index at {where(settings)} is incomplete: an ingest was interrupted, or documents were "
        f"changed behind it (it holds {held} documents, not the set it was built with). "
        "Run `bouncebot ingest` to repair it."
    )


def _open_view(client, settings: Settings, version, recorded: str) -> VersionView:
    """A version whose documents are in the shared store (``app.search.versions``), checked like a
    collection of its own: its manifest must be the set its fingerprint names, and all in the store."""
    store = get_collection(client, (version.metadata or {})[STORE])
    records = read_manifest(version)
    if store is None or fingerprint([doc_of(r) for r in records]) != recorded:
        raise _incomplete(settings, 0 if store is None else len(records))
    held = all_ids(store)
    missing = len(set(records).difference(held))
    if missing:
        raise _incomplete(settings, len(records) - missing)
    return VersionView(store, version, records, store_count=len(held))


# --- An unreadable store ------------------------------------------------------


def unreadable_store(error: BaseException) -> bool:
    """Whether ``error`` says the embedded store's files cannot be read: a
    corrupt or foreign ``chroma.sqlite3`` ("file is not a database",
    "database disk image is malformed"), a damaged segment, a store written
    by another Chroma version. Chroma raises ``InternalError`` for all of
    these (and a Rust panic may surface as ``PanicException``)."""
    import sqlite3

    from chromadb.errors import InternalError, VersionMismatchError

    if isinstance(error, InternalError):  # also "already exists", "disk is full", ...: not for deleting the folder
        return any(s in str(error).lower() for s in _CORRUPT)
    if isinstance(error, sqlite3.DatabaseError):  # the Python sqlite3 path; not "locked" or "disk is full"
        return not isinstance(error, sqlite3.OperationalError)
    return isinstance(error, VersionMismatchError) or type(error).__name__ == "PanicException"


_CORRUPT = ("not a database", "malformed", "corrupt", "deserializ", "hnsw segment reader", "no such table")


def unreadable_index(settings: Settings, error: BaseException) -> IndexNotReady:
    detail = (str(error).strip().splitlines() or [""])[0][:200] or "no detail"
    return IndexNotReady(
        f"The index at {settings.index_dir} cannot be read ({type(error).__name__}: {detail}). "
        "Delete the folder and run `bouncebot ingest` to rebuild it."
    )


@contextmanager
def reading_store(settings: Settings):
    """Turns an unreadable embedded store into ``IndexNotReady`` saying what
    to do. A Chroma server's failures pass through unchanged: the caller
    (``app.search.guard``) reports those as search being unavailable."""
    try:
        yield
    except BouncebotError:
        raise
    except BaseException as e:
        if settings.chroma_url or not unreadable_store(e):
            raise
        raise unreadable_index(settings, e) from e
