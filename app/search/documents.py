"""Documents' texts and metadata, read from the collection by id when a
search needs them (the lexical index holds none: see app.search.lexical).

The hits of recent searches stay in memory, least recently used out first:
at about 1 kB a document, ``size`` 4096 is a few MB whatever the size of the
index, and a warm search of a small KB reads nothing from the collection.
One ``Documents`` belongs to one version of the index (its retriever's), so
what it keeps is never another version's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.errors import IndexNotReady


class Documents:
    def __init__(self, collection, call=None, size: int = 4096):
        self.collection = collection
        self.size = size
        self._call = call if call is not None else (lambda what, fn, *a, **kw: fn(*a, **kw))
        self._kept: OrderedDict[str, tuple[str, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, ids: list[str]) -> dict[str, tuple[str, dict]]:
        """Each id's (text, metadata): kept ones from memory, the others in
        one read from the collection."""
        with self._lock:
            docs = {i: self._kept[i] for i in ids if i in self._kept}
        missing = [i for i in ids if i not in docs]
        if missing:
            got = self._call("the search", self.collection.get, ids=missing, include=["documents", "metadatas"])
            fetched = {i: (d, m or {}) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
            if len(fetched) != len(missing):
                raise IndexNotReady("Documents the index lists are missing from it. Run `bouncebot ingest` to repair it.")
            docs.update(fetched)
        with self._lock:
            self._kept.update((i, docs[i]) for i in missing)
            for i in ids:
                self._kept.move_to_end(i)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return docs

    def __len__(self) -> int:
        return len(self._kept)
