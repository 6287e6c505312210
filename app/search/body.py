"""Each passage's own words as a vector, without its heading path (issue 14: many articles a topic).

What is embedded and searched is a passage under its heading path (``app.knowledge.chunks.search_text``):
headings carry much of a section's meaning. Among thousands of articles, though, a hundred a topic
name it in their titles, so a passage that says nothing about a question ("Open Settings. Click
Save.") sits near it by its title alone, and outranks the article whose passage answers. With these
vectors the retriever caps a passage's cosine at its body's own plus ``body_margin``
(``app.search.retrieval``) when the results come from several articles: a heading may lift a
passage, it cannot make it relevant. One article's knowledge base never reads them.

One row per distinct text, keyed by the lexical index's ``passage`` hash (the same words: one
vector), kept per index version beside the lexical index (``<index dir>/body``; with a Chroma
server ``<model dir>/../body/<server>``), written by ``bouncebot ingest`` (a text a previous
version held takes its vector from that version's file: at 10,000 articles 43,000 documents hold
13,500 texts, two minutes to embed once; one article's 15 passages too, so that its second
article costs only its own), published whole or
not at all (``app.search.published``) and memory-mapped when the index is opened; the matrix's
checksum is read on the first search that needs it. A version without them (an index written
before them, a replica on another machine before an ingest there) ranks without the cap, and logs
once how to make them.

The same files hold the vectors of the passages' units (``app.knowledge.units``: the sentences and
list items an answer is focused on, ``app.answering.focus``), keyed by ``unit_key`` of their exact
text: among thousands of articles most answers quote a passage the process has not met yet, and
embedding its sentences was the slowest part of such an answer (7-25 ms at 10,000 articles).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.search.published import CheckedOnUse, _Lock, kept_versions, publish, published

log = logging.getLogger(__name__)

FORMAT = "body-vectors/1"  # bump when the files change
DTYPE = np.float32
BATCH = 64  # texts per call to the encoder (and per step of the progress bar)
PROGRESS_FROM = 64
_FILES = ("keys.npy", "vectors.npy")
MEMORY = "memory"  # a retriever's ``body_dir``: computed in memory at start (tests, small collections)


def body_dir(settings) -> Path:
    """Beside the lexical index (``app.search.lexical.lexical_dir``), as the multilingual vectors are."""
    from app.search.lexical import lexical_dir

    lex = lexical_dir(settings)
    return lex.parent.parent / "body" / lex.name if settings.chroma_url else lex.parent / "body"


def unit_key(text: str) -> int:
    """A unit's key: 64 bits of a hash of its exact text, apart from the passages' (``passage_hash``)."""
    return int.from_bytes(hashlib.blake2b(b"unit\x00" + text.encode(), digest_size=8).digest(), "little")


def cache_key(name: str, fingerprint: str, encoder: str) -> str:
    return hashlib.sha256(f"{FORMAT}\x00{name}\x00{fingerprint}\x00{encoder}".encode()).hexdigest()[:24]


def encoder_id(embedder) -> str:
    return str(getattr(embedder, "name", type(embedder).__name__))


@dataclass
class BodyVectors(CheckedOnUse):
    keys: np.ndarray  # uint64, sorted: ``app.search.lexical.passage_hash`` of each distinct text
    matrix: np.ndarray  # (texts, dimension), normalised as the encoder gives them
    pending: tuple[Path, str] | None = None  # the matrix's file and checksum, while not yet checked
    units: int | None = None  # how many of the texts are units (None: written before units were)

    def __len__(self) -> int:
        return len(self.keys)

    def cosines(self, hashes, query) -> np.ndarray:
        """Each passage hash's body cosine with ``query``; NaN for a text these vectors lack."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        out = np.full(len(hashes), np.nan)
        if not len(self.keys) or not len(hashes):
            return out
        pos = np.minimum(np.searchsorted(self.keys, hashes), len(self.keys) - 1)
        found = self.keys[pos] == hashes
        if found.any():
            out[found] = self.matrix[pos[found]] @ np.asarray(query, dtype=self.matrix.dtype)
        return out

    def vectors(self, keys) -> list:
        """The stored vector of each key (``unit_key``, ``passage_hash``), None for a key these lack."""
        keys = np.asarray(keys, dtype=np.uint64)
        if not len(self.keys) or not len(keys):
            return [None] * len(keys)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return [self.matrix[p] if k == self.keys[p] else None for k, p in zip(keys, pos)]

    def cap(self, rows, passage: np.ndarray, similarity: np.ndarray, query, margin: float) -> None:
        """``similarity[rows]`` (a search's cosines, by lexical row) capped at each passage's body cosine
        plus ``margin``; ``passage``: the lexical index's hashes by row. A text these lack keeps its own."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        cos = self.cosines(passage[rows], query)
        ok = ~np.isnan(cos)
        similarity[rows[ok]] = np.minimum(similarity[rows[ok]], cos[ok] + margin)


def body_vectors_for(index, collection, embedder, where) -> BodyVectors | None:
    """A retriever's body vectors: none for one article's KB (never read) or an index without passage
    hashes; ``MEMORY``: computed from the collection; a folder: the version's, when written there."""
    if where is None or not index.knows_passages or len(index.article_names or ()) < 2:
        return None
    if where == MEMORY:
        from app.search.lexical import collection_documents

        return compute(collection_documents(collection), embedder)
    got = try_open(collection, where, embedder)
    if got is None:
        log.warning("no passage body vectors for this index version: passages are ranked without the cap by "
                    "their own words (run `bouncebot ingest` on this machine to write them)")
    return got


def _texts(documents) -> dict[int, str]:
    """One text per passage hash (the first by id: the same words whatever order they come in)."""
    from app.search.lexical import passage_hash

    texts: dict[int, str] = {}
    for _, text, _ in sorted(documents, key=lambda d: d[0]):
        texts.setdefault(passage_hash(text or ""), text or "")
    return texts


def compute(documents, embedder, folder: Path | None = None, progress: bool = False,
            skip: Path | None = None, units=()) -> BodyVectors:
    """The vectors of ``documents``' distinct texts and of the distinct ``units`` (texts, keyed by
    ``unit_key``): those a previous version's file in ``folder`` holds are taken from it, the others
    embedded ``BATCH`` at a time."""
    texts = _texts(documents)
    passages = len(texts)
    for unit in dict.fromkeys(units):
        texts.setdefault(unit_key(unit), unit)
    n_units = len(texts) - passages
    keys = np.array(sorted(texts), dtype=np.uint64)
    matrix: np.ndarray | None = None
    have = np.zeros(len(keys), dtype=bool)
    for prev in _previous(folder, encoder_id(embedder), skip):
        if have.all():
            break
        if not len(prev):  # nothing to take; an older version may hold them
            continue
        if matrix is None:
            matrix = np.zeros((len(keys), prev.matrix.shape[1]), dtype=DTYPE)
        pos = np.minimum(np.searchsorted(prev.keys, keys), len(prev.keys) - 1)
        take = ~have & (prev.keys[pos] == keys)
        matrix[take] = prev.matrix[pos[take]]
        have |= take
    todo = np.flatnonzero(~have)
    batches = range(0, len(todo), BATCH)
    if progress and len(todo) >= PROGRESS_FROM:
        from tqdm import tqdm

        batches = tqdm(batches, desc="Embedding (passage bodies)", unit="batch", file=__import__("sys").stderr)
    for start in batches:
        part = todo[start : start + BATCH]
        got = np.asarray(embedder.embed_documents([texts[int(k)] for k in keys[part]]), dtype=DTYPE)
        if matrix is None:
            matrix = np.zeros((len(keys), got.shape[1]), dtype=DTYPE)
        matrix[part] = got
    if matrix is None:
        matrix = np.zeros((0, 384), dtype=DTYPE)
    log.info("passage body and unit vectors: %d reused, %d embedded", len(keys) - len(todo), len(todo))
    return BodyVectors(keys, matrix, units=n_units)


def _previous(folder: Path | None, encoder: str, skip: Path | None = None):
    """The vectors of the other versions kept in ``folder`` by the same encoder, newest first."""
    return kept_versions(folder, lambda p: load(p, encoder), skip)


def save(folder: Path, key: str, vectors: BodyVectors, about: dict) -> Path:
    def write(tmp: Path) -> None:
        np.save(tmp / "keys.npy", np.ascontiguousarray(vectors.keys))
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors.matrix, dtype=DTYPE))

    return publish(folder, key, write, {"format": FORMAT, **about, "texts": len(vectors.keys), "units": vectors.units or 0,
                                        "dimension": int(vectors.matrix.shape[1]), "dtype": np.dtype(DTYPE).name})


def load(path: Path, encoder: str | None = None, check_matrix: bool = True) -> BodyVectors:
    """The vectors in ``path``, memory-mapped; ``ValueError`` when a file is missing, damaged or of
    another format or encoder. ``check_matrix=False`` leaves the matrix's checksum to ``check``."""
    manifest = published(path, FORMAT, list(_FILES), unchecked=() if check_matrix else ("vectors.npy",))
    if encoder is not None and manifest.get("encoder") != encoder:
        raise ValueError(f"{path} holds vectors of {manifest.get('encoder')!r}, not {encoder!r}")
    keys = np.load(path / "keys.npy", allow_pickle=False)
    matrix = np.load(path / "vectors.npy", mmap_mode="r" if manifest.get("texts") else None,
                     allow_pickle=False).view(np.ndarray)
    if keys.dtype != np.uint64 or len(keys) != manifest.get("texts") or matrix.ndim != 2 or matrix.shape[0] != len(keys):
        raise ValueError(f"{path}'s files disagree with its manifest")
    pending = None if check_matrix else (path / "vectors.npy", str(manifest["files"]["vectors.npy"].get("sha256")))
    return BodyVectors(keys, matrix, pending, manifest.get("units"))


def write_version(folder: Path, name: str, fingerprint: str, documents, embedder, progress: bool = False,
                  only_missing: bool = False, units=()) -> Path:
    """Compute and save the vectors of the version ``name`` (for ``bouncebot ingest``), its passages'
    ``units`` too (an iterable, read only when the vectors are written); ``only_missing``: unless they
    are there whole already (units included)."""
    folder = Path(folder)
    enc = encoder_id(embedder)
    key = cache_key(name, fingerprint, enc)
    documents = list(documents)
    skip: Path | None = folder / key  # a version's own file is no source for itself ...
    with _Lock(folder / f".{key}.lock"):
        if only_missing:
            try:
                if load(folder / key, enc, check_matrix=False).units is not None or not units:
                    return folder / key
                skip = None  # ... unless it is whole, written before units were: its passages' vectors stand
            except ValueError:
                pass
        vectors = compute(documents, embedder, folder, progress, skip=skip, units=units)
        return save(folder, key, vectors, {"collection": name, "fingerprint": fingerprint, "encoder": enc})


def try_open(collection, folder: Path | None, embedder) -> BodyVectors | None:
    """The version's vectors from ``folder`` (milliseconds: mapped, the matrix's checksum left to
    ``BodyVectors.check``), or None when it does not hold them whole."""
    fingerprint = (getattr(collection, "metadata", None) or {}).get("fingerprint")
    if folder is None or not fingerprint:
        return None
    path = Path(folder) / cache_key(collection.name, fingerprint, encoder_id(embedder))
    try:
        return load(path, encoder_id(embedder), check_matrix=False)
    except ValueError as e:
        if path.exists():
            log.warning("the passage body vectors are not used (%s): run `bouncebot ingest` to write them", e)
        return None
