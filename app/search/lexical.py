"""BM25 over the index, kept on disk and read memory-mapped (issue 14).

Each process used to read every document of the collection at start-up and
keep them, tokenised, in a ``rank_bm25.BM25Okapi``: at 10,000 articles that
is every document in every replica's memory. The lexical index is instead a
set of flat arrays on disk (an inverted index: for each term, the rows of the
documents holding it and how often), built once per version of the index and
per machine, and mapped into memory; a search touches the postings of its own
terms only, and the pages of the file are shared by every process on the
machine. Documents' texts are not in it: the retriever fetches the few hits'
texts from Chroma by id.

Beside BM25 it keeps two things of each document that a search asks about
every candidate (``passage``: a hash of its words, ``ranking.passage_key``;
``article``: its article's path), so the dense query asks Chroma for ids and
distances alone (at 10,000 articles, 120 candidates with their metadata and
texts took 8-15 ms, without 5-6, most of it the graph search) and an
article's documents are read by id, not by a metadata filter (0.8 ms, not 8). They are optional files: an index
written before them is read as it was (the search then asks Chroma), and the
next ``bouncebot ingest`` writes them (``complete``).

Scores are Okapi BM25 exactly as ``rank_bm25.BM25Okapi`` computes them
(k1 1.5, b 0.75, and its floor for terms in more than half the documents:
``epsilon`` times the average IDF), so rankings do not move.

Where it lives: ``lexical_dir(settings)`` (``<index dir>/lexical`` for the
embedded store, ``<model dir>/../lexical/<server>`` with a Chroma server:
local to the machine either way), one folder per version, named from the
version's collection name and fingerprint. ``bouncebot ingest`` builds it
before switching the head to the new version; a replica
that finds it missing (another machine, a deleted cache) builds it from the
collection, read in pages, under a file lock so one process per machine
does the work. A folder is written aside and renamed into place, and its
files' checksums are checked when it is opened: a damaged or partial one is
rebuilt, never read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import IndexNotReady
from app.search.chroma import fingerprint as _fingerprint
from app.search.published import KEEP, _digest, _Lock, _prune, publish, published  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

K1, B, EPSILON = 1.5, 0.75, 0.25  # rank_bm25.BM25Okapi's defaults
FORMAT = "bm25-okapi/1"  # bump when the files change
PAGE = 5000  # documents per read from Chroma when building from a collection (reads by offset cost O(offset))
_ARRAYS = ("ids", "doc_len", "norm", "kinds", "order", "indptr", "postings", "tf", "idf")
_EXTRA = ("passage", "article")  # optional: absent from indexes written before them (see the module's text)
ARTICLES = "articles.json"  # the article paths ``article`` indexes


def document_tokens(text: str, metadata: dict | None) -> list[str]:
    """What BM25 reads of a document: its heading path and passage, tokenised."""
    from app.knowledge.chunks import search_text
    from app.search.text import tokenize

    return tokenize(search_text(text, metadata or {}))


def lexical_dir(settings) -> Path:
    """Beside the embedded store (``<index dir>/lexical``: removed with it);
    with a Chroma server, in this machine's cache beside the model
    (``<model dir>/../lexical/<server>``), the index folder being the store's."""
    if settings.chroma_url:
        server = hashlib.sha256(settings.chroma_url.rstrip("/").encode()).hexdigest()[:12]
        return Path(settings.model_dir).parent / "lexical" / server
    return Path(settings.index_dir) / "lexical"


def cache_key(name: str, fingerprint: str) -> str:
    return hashlib.sha256(f"{FORMAT}\x00{name}\x00{fingerprint}".encode()).hexdigest()[:24]


@dataclass
class LexicalIndex:
    """Rows are the documents sorted by id; terms are sorted too."""

    ids: np.ndarray  # bytes (S), sorted
    doc_len: np.ndarray  # int32, tokens per document
    norm: np.ndarray  # float64, k1 * (1 - b + b * doc_len / avgdl), as rank_bm25 computes it
    kinds: np.ndarray  # int16, index into kind_names (-1: no kind)
    order: np.ndarray  # int64, the document's "order" metadata (0 when absent)
    indptr: np.ndarray  # int64, term t's postings are postings[indptr[t]:indptr[t+1]]
    postings: np.ndarray  # int32 rows
    tf: np.ndarray  # int32 term frequencies, beside postings
    idf: np.ndarray  # float64, floored like rank_bm25
    terms: dict[str, int]
    kind_names: list[str]
    avgdl: float
    passage: np.ndarray | None = None  # uint64, a hash of each document's words (``ranking.passage_key``)
    article: np.ndarray | None = None  # int32, index into article_names: the document's article path
    article_names: list[str] | None = None
    _by_article: tuple | None = None  # (name -> position, rows sorted by article, starts): made when first asked

    def __len__(self) -> int:
        return len(self.ids)

    # --- what a search asks of every candidate ---------------------------------

    @property
    def knows_passages(self) -> bool:
        """Whether each document's words' hash and article are here (an index written before them: not)."""
        return self.passage is not None and self.article is not None

    def passage_keys(self, rows) -> list[str]:
        """Each row's passage key, as a string ``ranking.passage_key`` leaves as it is (lowercase hex):
        two documents have the same key exactly when their ``passage_key`` is the same (64-bit hashes)."""
        return [f"{k:016x}" for k in self.passage[np.asarray(rows, dtype=np.int64)].tolist()]

    def articles_at(self, rows) -> list[str]:
        """Each row's article (``ranking.article_of`` of its metadata)."""
        names = self.article_names
        return [names[a] for a in self.article[np.asarray(rows, dtype=np.int64)].tolist()]

    def article_rows(self, path: str) -> np.ndarray | None:
        """The rows of the documents whose ``article_path`` is ``path`` (ascending), or None when this
        index does not know documents' articles."""
        if not self.knows_passages:
            return None
        if self._by_article is None:  # a race makes it twice, alike
            by = np.argsort(self.article, kind="stable")
            starts = np.searchsorted(self.article[by], np.arange(len(self.article_names) + 1))
            self._by_article = ({n: i for i, n in enumerate(self.article_names)}, by, starts)
        at, by, starts = self._by_article
        i = at.get(path)
        return np.zeros(0, dtype=np.int64) if i is None else by[starts[i]:starts[i + 1]]

    # --- search ---------------------------------------------------------------

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25Okapi's ``get_scores``: one float per row (duplicated query
        tokens count twice, unknown ones not at all)."""
        score = np.zeros(len(self.ids))
        for q in query_tokens:
            t = self.terms.get(q)
            if t is None:
                continue
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            rows = self.postings[lo:hi]
            f = self.tf[lo:hi]
            score[rows] += self.idf[t] * (f * (K1 + 1) / (f + self.norm[rows]))
        return score

    def rows_of(self, ids: list[str]) -> np.ndarray:
        """Each id's row, -1 for an id the index does not hold."""
        if not ids or not len(self.ids):
            return np.full(len(ids), -1, dtype=np.int64)
        keys = np.array([i.encode() for i in ids], dtype=self.ids.dtype if _fits(ids, self.ids) else None)
        at = np.searchsorted(self.ids, keys)
        found = (at < len(self.ids)) & (self.ids[np.minimum(at, len(self.ids) - 1)] == keys)
        return np.where(found, at, -1)

    def rows_held(self, ids: list[str]) -> np.ndarray:
        """Each id's row, every id one this index holds: else ``IndexNotReady`` (the lexical index and the
        store disagree), saying to rebuild it."""
        rows = self.rows_of(ids)
        if (rows < 0).any():
            raise IndexNotReady("The lexical index does not match the index's documents. "
                                "Run `bouncebot ingest` to rebuild it.")
        return rows

    def id_at(self, row: int) -> str:
        return self.ids[row].decode()

    def kind_codes(self, kinds) -> list[int]:
        return [self.kind_names.index(k) for k in kinds if k in self.kind_names]

    def document_frequencies(self) -> dict[str, int]:
        """Alphabetic terms and how many documents hold each (for ``Spelling``)."""
        df = np.diff(self.indptr)
        return {term: int(df[t]) for term, t in self.terms.items() if term.isalpha()}


def _fits(ids: list[str], arr: np.ndarray) -> bool:
    return max(len(i.encode()) for i in ids) <= arr.dtype.itemsize


# --- building -----------------------------------------------------------------


class _Builder:
    """Streams documents in (the collection's own order, which fixes the
    order rank_bm25 summed its IDFs in) and makes the arrays."""

    def __init__(self):
        from array import array

        self.terms: dict[str, int] = {}  # first-appearance order
        self.docs: list[tuple[str, int, str | None, int]] = []  # id, length, kind, order
        self.tokens = array("i")  # every document's term ids, one after the other
        self.passages = array("Q")  # each document's passage hash (``passage_key``)
        self.articles: list[str | None] = []  # each document's article_path (None: it has none)

    def add(self, doc_id: str, tokens: list[str], metadata: dict | None, text: str | None = None) -> None:
        terms = self.terms
        self.add_ids(doc_id, [terms.setdefault(tok, len(terms)) for tok in tokens], metadata, text)

    def add_ids(self, doc_id: str, ids: list[int], metadata: dict | None, text: str | None = None) -> None:
        """``add`` with the tokens' term ids (``terms``' numbers, in the tokens' order)."""
        self.tokens.extend(ids)
        meta = metadata or {}
        order = meta.get("order", 0)
        self.docs.append((doc_id, len(ids), meta.get("kind"), int(order) if isinstance(order, (int, float)) else 0))
        self.passages.append(passage_hash(text or ""))
        path = meta.get("article_path")
        self.articles.append(str(path) if path else None)

    def _postings(self, n: int, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """(term, document, tf) for each distinct pair, sorted by term then
        document (in the collection's order), and each term's document frequency."""
        term = np.frombuffer(self.tokens, dtype=np.int32).astype(np.int64)
        doc = np.repeat(np.arange(n, dtype=np.int64), [d[1] for d in self.docs])
        pairs, tf = np.unique(term * max(n, 1) + doc, return_counts=True)
        p_term, p_doc = pairs // max(n, 1), pairs % max(n, 1)
        self.tokens = None
        return p_term, p_doc, tf.astype(np.int32), np.bincount(p_term, minlength=v).tolist()

    def finish(self) -> tuple[dict[str, np.ndarray], list[str], dict]:
        n, v = len(self.docs), len(self.terms)
        total = sum(length for _, length, _, _ in self.docs)
        avgdl = total / n if n else 0.0
        first_term, first_doc, p_tf, df = self._postings(n, v)
        # rank_bm25's IDF, summed in its order (the terms' first appearance)
        idf_first = [math.log(n - f + 0.5) - math.log(f + 0.5) for f in df]
        idf_sum = 0.0
        for x in idf_first:
            idf_sum += x
        eps = EPSILON * (idf_sum / v) if v else 0.0
        idf_first = [eps if x < 0 else x for x in idf_first]

        ids = [d[0] for d in self.docs]
        by_id = sorted(range(n), key=lambda i: ids[i])
        row_of_doc = np.empty(n, dtype=np.int64)
        row_of_doc[by_id] = np.arange(n)
        names = sorted(self.terms)
        term_of_first = np.empty(v, dtype=np.int64)
        term_of_first[[self.terms[t] for t in names]] = np.arange(v)
        kind_names = sorted({d[2] for d in self.docs if d[2] is not None})

        p_term, p_row = term_of_first[first_term], row_of_doc[first_doc]
        sort = np.lexsort((p_row, p_term))
        doc_len = np.array([self.docs[i][1] for i in by_id], dtype=np.int32)
        with np.errstate(divide="ignore", invalid="ignore"):  # avgdl 0: no postings use it
            norm = K1 * (1 - B + B * doc_len.astype(np.float64) / avgdl) if n else np.zeros(0)
        arrays = {
            "ids": np.array([ids[i].encode() for i in by_id], dtype=f"S{max((len(i.encode()) for i in ids), default=1) or 1}"),
            "doc_len": doc_len,
            "norm": norm,
            "kinds": np.array([kind_names.index(self.docs[i][2]) if self.docs[i][2] is not None else -1 for i in by_id],
                              dtype=np.int16),
            "order": np.array([self.docs[i][3] for i in by_id], dtype=np.int64),
            "indptr": np.concatenate([[0], np.cumsum(np.bincount(p_term, minlength=v))]).astype(np.int64),
            "postings": p_row[sort].astype(np.int32),
            "tf": p_tf[sort],
            "idf": np.array([idf_first[self.terms[t]] for t in names], dtype=np.float64),
        }
        info = {"avgdl": avgdl, "kind_names": kind_names, "documents": n, "terms": v}
        if None not in self.articles:  # every document names its article_path (older chunkers: not)
            article_names = sorted(set(self.articles))
            code = {a: i for i, a in enumerate(article_names)}
            arrays["passage"] = np.frombuffer(self.passages, dtype=np.uint64)[by_id].copy()
            arrays["article"] = np.array([code[self.articles[i]] for i in by_id], dtype=np.int32)
            info["article_names"] = article_names
        return arrays, names, info


@functools.lru_cache(maxsize=1 << 16)  # an ingest asks twice per text: the lexical index, then the body vectors
def passage_hash(text: str) -> int:
    """64 bits of a hash of ``ranking.passage_key(text)``: what makes two passages the same words."""
    from app.search.ranking import passage_key

    return int.from_bytes(hashlib.blake2b(passage_key(text).encode(), digest_size=8).digest(), "little")


def _index(arrays: dict, names: list[str], info: dict) -> LexicalIndex:
    extra = {k: arrays[k] for k in _EXTRA if arrays.get(k) is not None}
    if len(extra) == len(_EXTRA) and info.get("article_names") is not None:
        extra["article_names"] = list(info["article_names"])
    else:
        extra = {}
    return LexicalIndex(terms={t: i for i, t in enumerate(names)}, kind_names=list(info["kind_names"]),
                        avgdl=float(info["avgdl"]), **{k: arrays[k] for k in _ARRAYS}, **extra)


def build(documents, tokenize_doc=document_tokens) -> tuple[dict, list[str], dict]:
    """``documents``: (id, text, metadata) in the collection's order;
    ``tokenize_doc(text, metadata)``: the document's tokens."""
    b = _Builder()
    if tokenize_doc is document_tokens:  # the same term ids, each distinct passage cut once
        from app.search.text import tokenize

        bodies: dict[str, list[int]] = {}  # a passage's term ids (its terms known once it has been seen)
        terms = b.terms
        for doc_id, text, meta in documents:
            head = [terms.setdefault(t, len(terms)) for t in tokenize(_heading(meta))]
            body = bodies.get(f"{text}")
            if body is None:  # after the heading's: terms are numbered in their first appearance's order
                body = bodies[f"{text}"] = [terms.setdefault(t, len(terms)) for t in tokenize(f"{text}")]
            b.add_ids(doc_id, head + body, meta, text)
        return b.finish()
    for doc_id, text, meta in documents:
        b.add(doc_id, tokenize_doc(text, meta), meta, text)
    return b.finish()


def _heading(metadata: dict | None) -> str:
    """A document's heading path as ``search_text`` writes it before the passage. A token never spans
    the blank line between the two, so a document's tokens are the heading's, then the passage's: at
    10,000 articles 43,000 documents hold 13,500 passages, each cut once (a re-index's lexical build
    spent 0.8 s of its 2 s cutting and numbering the same words again)."""
    return f"{(metadata or {}).get('heading_path', '')}"


def in_memory(documents, tokenize_doc=document_tokens) -> LexicalIndex:
    return _index(*build(documents, tokenize_doc))


def collection_documents(collection, page: int = PAGE):
    """Every (id, text, metadata) of ``collection``, read ``page`` at a time."""
    offset = 0
    while True:
        got = collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
        yield from zip(got["ids"], got["documents"], got["metadatas"] or [None] * len(got["ids"]))
        if len(got["ids"]) < page:
            return
        offset += page


# --- on disk ------------------------------------------------------------------


def save(folder: Path, key: str, arrays: dict, names: list[str], info: dict, about: dict) -> Path:
    """Writes the index into ``folder/key`` (aside, then renamed into place)."""

    def write(tmp: Path) -> None:
        for name in _ARRAYS + tuple(k for k in _EXTRA if k in arrays):
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arrays[name]))
        (tmp / "terms.txt").write_text("\n".join(names), encoding="utf-8")
        if "article_names" in info:  # kept out of the manifest: 10,000 paths
            (tmp / ARTICLES).write_text(json.dumps(info["article_names"]), encoding="utf-8")

    return publish(folder, key, write, {"format": FORMAT, **about, **{k: v for k, v in info.items() if k != "article_names"}})


def load(path: Path) -> LexicalIndex:
    """The index in ``path``, memory-mapped; ``ValueError`` when any file is
    missing, of the wrong size or checksum, or of another format."""
    manifest = published(path, FORMAT, [f"{a}.npy" for a in _ARRAYS] + ["terms.txt"])
    extra = [a for a in _EXTRA if f"{a}.npy" in (manifest.get("files") or {})]
    if extra:  # written with them: they are checked like the others (an index written before them has none)
        published(path, FORMAT, [f"{a}.npy" for a in _EXTRA] + [ARTICLES])
    # plain arrays over the mapping (np.memmap's own slicing costs microseconds a call)
    arrays = {a: np.load(path / f"{a}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray)
              for a in _ARRAYS + tuple(extra)}
    text = (path / "terms.txt").read_text(encoding="utf-8")
    names = text.split("\n") if text else []
    if len(names) != manifest.get("terms") or any(len(arrays[a]) != manifest.get("documents") for a in ("ids", *extra)):
        raise ValueError(f"{path}'s files disagree with its manifest")
    info = dict(manifest)
    if extra:
        info["article_names"] = json.loads((path / ARTICLES).read_text(encoding="utf-8"))
        if int(arrays["article"].max(initial=-1)) >= len(info["article_names"]):
            raise ValueError(f"{path}'s files disagree with its manifest")
    os.utime(path)  # recently used: kept by _prune
    return _index(arrays, names, info)


def complete(folder: Path, name: str, fingerprint: str) -> bool:
    """Whether the version's index in ``folder`` is there with every file this code writes (those
    written before ``passage``/``article`` lack them: ``bouncebot ingest`` writes them again). Reads
    the manifest only."""
    try:
        manifest = json.loads((folder / cache_key(name, fingerprint) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = manifest.get("files") or {}
    return manifest.get("format") == FORMAT and all(f"{a}.npy" in files for a in _EXTRA) and ARTICLES in files


def write_version(folder: Path, name: str, fingerprint: str, documents, tokenize_doc=document_tokens) -> Path:
    """Build and save the index of the version ``name`` (for ``bouncebot ingest``)."""
    key = cache_key(name, fingerprint)
    with _Lock(folder / f".{key}.lock"):
        arrays, names, info = build(documents, tokenize_doc)
        return save(folder, key, arrays, names, info, {"collection": name, "fingerprint": fingerprint})


def open_for(collection, folder: Path | None, tokenize_doc=document_tokens) -> LexicalIndex:
    """The lexical index of ``collection``: from ``folder`` when it holds it
    whole, else built from the collection (and saved there, when the
    collection names its version with a fingerprint)."""
    fingerprint = (collection.metadata or {}).get("fingerprint")
    if folder is None or not fingerprint:
        return in_memory(collection_documents(collection), tokenize_doc)
    key = cache_key(collection.name, fingerprint)
    path = folder / key
    try:
        return load(path)
    except ValueError as e:
        if path.exists():
            log.warning("rebuilding the lexical index: %s", e)
    with _Lock(folder / f".{key}.lock"):
        try:  # another process may have built it while this one waited
            return load(path)
        except ValueError:
            pass
        arrays, names, info = build(collection_documents(collection), tokenize_doc)
        if _fingerprint([i.decode() for i in arrays["ids"]]) != fingerprint:  # changed behind the index
            raise IndexNotReady(
                f"The index '{collection.name}' holds other documents than the set it was built with. "
                "Run `bouncebot ingest` to repair it."
            )
        save(folder, key, arrays, names, info, {"collection": collection.name, "fingerprint": fingerprint})
        del arrays, names, info
    _give_back_memory()
    return load(path)


def _give_back_memory() -> None:
    """Return the build's freed heap to the system (glibc keeps it otherwise:
    a replica that built the index would hold its peak for good)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
