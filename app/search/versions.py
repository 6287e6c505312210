"""Versions that share one store of vectors: a re-ingest costs what changed.

A version used to be a collection holding every document, so building the
next one copied every vector (seconds per thousand articles, linear in the
knowledge base). Now an index has one *store* collection holding the
documents of every live version, each under a record id made of its document
id (a hash of its text and the model) and a hash of its metadata: a document
that did not change is the same record in every version, one that only moved
(its line) is a new record that takes the old one's vector), and a version is a small collection of its own that lists its
documents' ids (its *manifest*, in pages of ``PAGE`` ids) beside its
fingerprint. ``bouncebot ingest`` adds only the new documents to the store,
writes the new version's manifest, and switches the head to it; the
documents only the previous version had are deleted from the store when that
version is retired (after the replicas' grace, ``app.search.chroma``).

A reader opens a ``VersionView``: it looks like a Chroma collection (``name``,
``metadata``, ``count``, ``get``, ``query``) but holds only its version's
documents. While the store also holds another version's documents (between
an ingest and the retirement of the version it replaced), a query asks the
store for that many more results and drops the others', so it returns
exactly what a collection of that version alone would.
"""

from __future__ import annotations

import hashlib

STORE = "store"  # head and version: the collection holding the documents
STORE_OF = "store_of"  # the store: the head it belongs to
DOCUMENTS = "documents"  # a version: how many documents it lists
PAGE = 2000  # record ids per manifest page (about 100 kB of text)
_UNIT = [1.0]  # a manifest page's vector: Chroma stores a vector with every record


def store_name(head: str) -> str:
    return f"{head[:500]}-store"


def record_id(doc_id: str, metadata: dict) -> str:
    """A document's id in the store: its id (a hash of its text and model) and a hash of its metadata.
    A section that only moved (a paragraph added above it) keeps its vector but cites its new line,
    so it is another record: the previous version's readers keep citing the old one."""
    canon = repr(sorted(metadata.items()))  # str, int and float values only (Chroma's rule): a stable repr
    return f"{doc_id}.{hashlib.blake2b(canon.encode(), digest_size=8).hexdigest()}"


def doc_of(record: str) -> str:
    """The document id a store record holds."""
    return record.split(".", 1)[0]


def is_manifest(collection) -> bool:
    """Whether ``collection`` is a version in this layout (its documents are in a store)."""
    return bool((collection.metadata or {}).get(STORE))


def write_manifest(version, records: list[str]) -> None:
    pages = [records[i : i + PAGE] for i in range(0, len(records), PAGE)] or [[]]
    version.add(ids=[f"page-{n:06d}" for n in range(len(pages))], embeddings=[_UNIT] * len(pages),
                documents=["\n".join(p) for p in pages])


def read_manifest(version) -> list[str]:
    """The store records a version lists, in its documents' order."""
    got = version.get(include=["documents"])
    pages = sorted(zip(got["ids"], got["documents"]))
    return [i for _, text in pages for i in (text.split("\n") if text else [])]


def all_ids(collection, page: int = 20000) -> list[str]:
    """Every id ``collection`` holds, read in pages."""
    out, offset = [], 0
    while True:
        got = collection.get(include=[], limit=page, offset=offset)["ids"]
        out += got
        if len(got) < page:
            return out
        offset += page


def delete_records(store, records: list[str], page: int = 5000) -> None:
    """Delete ``records`` from the store, ``page`` ids a call."""
    for i in range(0, len(records), page):
        store.delete(ids=records[i : i + page])


class VersionView:
    """One version's documents in the shared store, read like a collection of their own (by their
    document ids: the store's record ids never leave it)."""

    def __init__(self, store, version, records: list[str] | None = None, store_count: int | None = None):
        self.store = store
        self.version = version
        self.name = version.name
        self.metadata = version.metadata
        records = read_manifest(version) if records is None else list(records)
        self.ids = [doc_of(r) for r in records]
        self._record = dict(zip(self.ids, records))
        self._members = frozenset(records)
        held = store.count() if store_count is None else store_count
        self._extra = max(0, held - len(records))  # other versions' documents in the store, at opening

    @property
    def configuration(self):
        return self.store.configuration  # the store's: its distance (cosine) is the version's

    def count(self) -> int:
        return len(self.ids)

    def get(self, ids=None, include=("documents", "metadatas"), limit=None, offset=None, where=None):
        include = list(include)
        if where is not None:
            if ids is not None or limit is not None or offset:
                raise TypeError("a version view reads by where alone, by ids, or all in pages")
            got = self.store.get(where=where, include=include)
            keep = [n for n, r in enumerate(got["ids"]) if r in self._members]
            return self._picked(got, keep, include)
        if ids is None:
            start = offset or 0
            ids = self.ids[start : None if limit is None else start + limit]
        else:
            ids = [i for i in ([ids] if isinstance(ids, str) else ids) if i in self._record]
        if not include:
            return {"ids": list(ids), "documents": None, "metadatas": None, "embeddings": None}
        if not ids:
            return {"ids": [], **{k: [] for k in include}}
        got = self.store.get(ids=[self._record[i] for i in ids], include=include)
        at = {r: n for n, r in enumerate(got["ids"])}  # Chroma's order is its own: give the order asked for
        return self._picked(got, [at[self._record[i]] for i in ids if self._record[i] in at], include)

    def get_as_stored(self, ids, include=("documents", "metadatas")):
        """``get(ids=...)`` in the order the store holds the records (the order a read by ``where`` gives
        them: Chroma's own), not the order asked; ids this version does not list are left out."""
        include = list(include)
        records = [self._record[i] for i in ids if i in self._record]
        if not records:
            return {"ids": [], **{k: [] for k in include}}
        got = self.store.get(ids=records, include=include)
        return self._picked(got, list(range(len(got["ids"]))), include)

    @staticmethod
    def _picked(got: dict, keep: list[int], include: list[str]) -> dict:
        out = dict(got)
        out["ids"] = [doc_of(got["ids"][n]) for n in keep]
        for k in include:
            if got.get(k) is not None:
                out[k] = [got[k][n] for n in keep]
        return out

    def query(self, query_embeddings, n_results: int = 10, where=None, include=("metadatas", "documents", "distances")):
        include = list(include)
        # Others' documents are rarely all nearer than this version's: ask for a few more than asked
        # (at most all the store holds of others'), and more only when too many of them were nearest.
        extra = min(self._extra, 3 * n_results + 16)
        while True:
            res = self.store.query(query_embeddings=query_embeddings, n_results=n_results + extra, where=where,
                                   include=include)
            out = dict(res)
            out["ids"] = []
            for k in include:
                if res.get(k) is not None:
                    out[k] = []
            short = False
            for q, ids in enumerate(res["ids"]):
                keep = [n for n, r in enumerate(ids) if r in self._members][:n_results]
                # short: too few of this version's, and the store had more to give (it gave all it was asked)
                short = short or (len(keep) < n_results and len(ids) == n_results + extra)
                out["ids"].append([doc_of(ids[n]) for n in keep])
                for k in include:
                    if res.get(k) is not None:
                        out[k].append([res[k][q][n] for n in keep])
            if not short or n_results + extra >= self.store.count():  # none left to ask for
                return out
            extra = max(2 * extra, extra + n_results, 16)
            self._extra = max(self._extra, extra)  # the store may hold more of others' documents than at opening
