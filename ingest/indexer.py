"""Sync the knowledge base into the Chroma collection.

Everything that can fail on the user's input (parsing) or on the machine
(embedding) happens before the collection is touched. Then new documents
are added, vanished ones deleted, and the fingerprint written last: an
interrupted run leaves an index that reports itself as stale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.config import Settings
from app.store import COSINE, fingerprint

from .articles import load_articles
from .chunks import Chunk, chunk_articles

PROGRESS_FROM = 64  # show a progress bar when embedding at least this many documents


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
    articles = load_articles(settings.kb_dir)
    chunks = chunk_articles(articles, model_name)
    return chunks, len(articles), sum(len(a.rows) for a in articles)


def kb_fingerprint(settings: Settings, model_name: str) -> str:
    chunks, _, _ = plan(settings, model_name)
    return fingerprint([c.id for c in chunks])


def ingest(settings: Settings, client, embedder, progress: bool = True) -> IngestReport:
    t0 = time.perf_counter()
    chunks, n_articles, n_rows = plan(settings, embedder.name)  # raises before anything is written
    desired = {c.id: c for c in chunks}

    col = client.get_or_create_collection(
        settings.collection, configuration=COSINE, embedding_function=None, metadata={"model": embedder.name}
    )
    existing = set(col.get(include=[])["ids"])
    new = [c for c in chunks if c.id not in existing]
    gone = sorted(existing - desired.keys())

    vectors = embedder.embed_documents([c.search_text for c in new], progress=progress and len(new) >= PROGRESS_FROM)
    if new:
        col.add(
            ids=[c.id for c in new],
            embeddings=vectors,
            documents=[c.text for c in new],
            metadatas=[c.metadata for c in new],
        )
    if gone:
        col.delete(ids=gone)
    col.modify(metadata={"model": embedder.name, "fingerprint": fingerprint(list(desired))})

    return IngestReport(
        articles=n_articles,
        chunks=len(chunks),
        rows=n_rows,
        added=len(new),
        kept=len(chunks) - len(new),
        removed=len(gone),
        seconds=time.perf_counter() - t0,
    )
