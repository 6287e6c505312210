"""The Chroma client: an embedded persistent store by default, a Chroma
server when ``BOUNCEBOT_CHROMA_URL`` is set (replicas then share one index).

The index records a fingerprint of the knowledge base it was built from, so
a stale or missing index is detected without loading the model.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

from .config import Settings
from .errors import BouncebotError, IndexNotReady

COSINE = {"hnsw": {"space": "cosine"}}


def make_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        u = urlparse(settings.chroma_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BouncebotError(
                f"BOUNCEBOT_CHROMA_URL={settings.chroma_url!r} is not a URL like http://127.0.0.1:8000"
            )
        return chromadb.HttpClient(
            host=u.hostname,
            port=u.port or (443 if u.scheme == "https" else 8000),
            ssl=u.scheme == "https",
            settings=chroma_settings,
        )
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


def fingerprint(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]


def where(settings: Settings) -> str:
    return settings.chroma_url or str(settings.index_dir)


def open_collection(client, settings: Settings, expected_fingerprint: str | None = None):
    """The index's collection, checked against the KB's fingerprint.

    Raises ``IndexNotReady`` (with the command that fixes it) when the index
    is missing, empty or was built from another version of the KB.
    """
    from chromadb.errors import NotFoundError

    try:
        col = client.get_collection(settings.collection, embedding_function=None)
    except (NotFoundError, ValueError):
        raise IndexNotReady(
            f"No index '{settings.collection}' at {where(settings)}. Build it with `bouncebot ingest`."
        ) from None
    meta = col.metadata or {}
    if not meta.get("fingerprint"):
        raise IndexNotReady(
            f"The index at {where(settings)} is incomplete. Rebuild it with `bouncebot ingest`."
        )
    if expected_fingerprint and meta["fingerprint"] != expected_fingerprint:
        raise IndexNotReady(
            f"The index at {where(settings)} is out of date with the knowledge base in "
            f"{settings.kb_dir}. Update it with `bouncebot ingest`."
        )
    return col
