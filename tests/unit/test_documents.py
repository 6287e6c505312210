"""Hits' texts read from the collection by id, the recent ones kept (app.search.documents)."""

from __future__ import annotations

import pytest

from app.errors import IndexNotReady
from app.search.documents import Documents


class ById:
    def __init__(self, n):
        self.docs = {f"d{i}": (f"text {i}", {"order": i}) for i in range(n)}
        self.reads: list[list[str]] = []

    def get(self, ids, include=()):
        self.reads.append(list(ids))
        found = [i for i in reversed(ids) if i in self.docs]  # Chroma's order is not the asked order
        return {"ids": found, "documents": [self.docs[i][0] for i in found], "metadatas": [self.docs[i][1] for i in found]}


@pytest.mark.parametrize(
    "searches,reads",
    [
        ([["d1", "d2", "d3"]], [["d1", "d2", "d3"]]),
        ([["d1", "d2"], ["d2", "d1"]], [["d1", "d2"]]),  # the second search reads nothing
        ([["d1", "d2"], ["d2", "d3"]], [["d1", "d2"], ["d3"]]),  # only what is not kept
        ([["d1"], ["d2"], ["d3"], ["d1"]], [["d1"], ["d2"], ["d3"], ["d1"]]),  # size 2: d1 was evicted
        ([["d1"], ["d2"], ["d1"], ["d3"], ["d1"]], [["d1"], ["d2"], ["d3"]]),  # d1 used recently: d2 goes
        ([[]], []),
    ],
)
def test_reads_only_what_it_does_not_keep(searches, reads):
    col = ById(5)
    docs = Documents(col, size=2)
    for ids in searches:
        got = docs.fetch(ids)
        assert got == {i: col.docs[i] for i in ids}
    assert col.reads == reads and len(docs) <= 2


def test_a_document_gone_from_the_collection_is_an_index_problem():
    with pytest.raises(IndexNotReady, match="bouncebot ingest"):
        Documents(ById(2)).fetch(["d0", "d9"])
