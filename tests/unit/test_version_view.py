"""A version read from the shared store (app.search.versions) is exactly a collection of its own:
never another version's documents, in the order and shape Chroma gives. Real Chroma, in a temp dir."""

from __future__ import annotations

import numpy as np
import pytest

from app.search.versions import VersionView, doc_of, read_manifest, record_id, write_manifest

DIM = 8


def vec(n: int) -> list[float]:
    v = np.zeros(DIM, dtype=np.float32)
    v[n % DIM] = 1.0
    v[(n + 1) % DIM] = 0.1 * (n // DIM + 1)
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture()
def store_and_versions(tmp_path):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False))
    store = client.create_collection("t-store", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
    docs = {f"d{n:02d}": {"article_path": "a.md" if n % 2 else "b.md", "line": n} for n in range(20)}
    records = {d: record_id(d, m) for d, m in docs.items()}
    store.add(ids=list(records.values()), embeddings=[vec(n) for n in range(20)],
              documents=[f"text {d}" for d in docs], metadatas=list(docs.values()))
    old = client.create_collection("t-old", embedding_function=None, metadata={"store": "t-store"})
    new = client.create_collection("t-new", embedding_function=None, metadata={"store": "t-store"})
    write_manifest(old, [records[f"d{n:02d}"] for n in range(0, 12)])  # d00..d11
    write_manifest(new, [records[f"d{n:02d}"] for n in range(6, 20)])  # d06..d19
    return client, store, old, new, docs, records


def test_record_ids_name_the_document_and_change_with_its_metadata():
    a = record_id("abc", {"line": 3, "url": "u"})
    assert doc_of(a) == "abc"
    assert a == record_id("abc", {"url": "u", "line": 3})  # the keys' order is not the record's
    assert a != record_id("abc", {"line": 4, "url": "u"})  # a section that moved is another record


def test_a_manifest_reads_back_in_order_across_pages(store_and_versions, monkeypatch):
    client, *_ = store_and_versions
    import app.search.versions as versions

    monkeypatch.setattr(versions, "PAGE", 7)
    col = client.create_collection("t-pages", embedding_function=None)
    ids = [f"r{n:03d}.x" for n in range(30)]
    write_manifest(col, ids)
    assert col.count() == 5 and read_manifest(col) == ids


@pytest.mark.parametrize("which, expected", [("old", range(0, 12)), ("new", range(6, 20))])
def test_a_view_reads_only_its_versions_documents(store_and_versions, which, expected):
    client, store, old, new, docs, records = store_and_versions
    view = VersionView(store, old if which == "old" else new)
    want = [f"d{n:02d}" for n in expected]
    assert view.count() == len(want) and view.ids == want
    assert view.get(include=[])["ids"] == want
    assert view.get(include=["documents"], limit=5, offset=2)["documents"] == [f"text {d}" for d in want[2:7]]
    got = view.get(ids=["d19", "d00", "d07"], include=["metadatas"])  # asked order; others' ids dropped
    assert got["ids"] == [d for d in ["d19", "d00", "d07"] if d in want]
    assert [m["line"] for m in got["metadatas"]] == [int(d[1:]) for d in got["ids"]]
    for n in range(20):  # every query, even one nearest another version's documents
        res = view.query(query_embeddings=[vec(n)], n_results=4, include=["distances", "metadatas"])
        assert len(res["ids"][0]) == 4 and set(res["ids"][0]) <= set(want)
        assert res["distances"][0] == sorted(res["distances"][0])
        where = view.query(query_embeddings=[vec(n)], n_results=3, where={"article_path": "a.md"}, include=["metadatas"])
        assert set(where["ids"][0]) <= set(want) and {m["article_path"] for m in where["metadatas"][0]} == {"a.md"}
    assert set(view.get(where={"article_path": "b.md"}, include=["metadatas"])["ids"]) == {
        d for d in want if docs[d]["article_path"] == "b.md"}


def test_a_view_opened_before_the_store_grew_still_returns_full_results(store_and_versions):
    client, store, old, new, docs, records = store_and_versions
    view = VersionView(store, old)  # the store holds 8 others' documents now
    extra = [f"x{n:02d}" for n in range(40)]  # then an ingest adds 40 more, all nearest the query
    store.add(ids=[f"{x}.m" for x in extra], embeddings=[vec(0)] * 40, documents=extra)
    res = view.query(query_embeddings=[vec(0)], n_results=5, include=["distances"])
    assert len(res["ids"][0]) == 5 and set(res["ids"][0]) <= set(view.ids)


def test_a_view_asks_the_store_for_all_it_has_when_its_version_is_small(store_and_versions):
    client, store, old, new, docs, records = store_and_versions
    view = VersionView(store, old)
    res = view.query(query_embeddings=[vec(3)], n_results=50, include=["distances"])
    assert sorted(res["ids"][0]) == view.ids  # all 12, none of the others'


def test_a_store_holding_many_others_asks_for_more_only_when_they_are_nearest(store_and_versions):
    client, store, old, new, docs, records = store_and_versions
    rng = np.random.default_rng(7)
    near_5 = [np.asarray(vec(5)) + rng.normal(0, 0.02, DIM) for _ in range(300)]
    store.add(ids=[f"far{n:03d}.m" for n in range(300)], embeddings=[(v / np.linalg.norm(v)).tolist() for v in near_5],
              documents=["far"] * 300)
    asked = []
    real = store.query

    def counting(**kw):
        asked.append(kw["n_results"])
        return real(**kw)

    view = VersionView(store, old)
    view.store = type("Spy", (), {"query": staticmethod(counting), "get": store.get, "count": store.count})()
    res = view.query(query_embeddings=[vec(0)], n_results=4, include=["distances"])  # the others are far
    assert len(res["ids"][0]) == 4 and asked == [4 + 3 * 4 + 16]
    asked.clear()
    res = view.query(query_embeddings=[vec(5)], n_results=4, include=["distances"])  # 300 others nearest
    assert len(res["ids"][0]) == 4 and set(res["ids"][0]) <= set(view.ids) and len(asked) > 1


def test_a_filter_matching_few_documents_is_one_query(store_and_versions):
    client, store, old, new, docs, records = store_and_versions
    asked = []
    real = store.query
    view = VersionView(store, old)
    view.store = type("Spy", (), {"query": staticmethod(lambda **kw: asked.append(kw) or real(**kw)),
                                  "get": store.get, "count": store.count})()
    res = view.query(query_embeddings=[vec(1)], n_results=10, where={"line": {"$in": [1, 3, 15]}}, include=["metadatas"])
    assert sorted(res["ids"][0]) == ["d01", "d03"] and len(asked) == 1  # d15 is the other version's
