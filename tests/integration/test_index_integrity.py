"""The index is never read half-written, and an unreadable store says what to do.

An ingest builds the new version of the index aside and switches to it at
the end; a reader checks that the documents it opens are exactly the set its
fingerprint names. So an ingest killed at any point leaves either the
previous index, whole, or an index every reader refuses (exit 3, "run
`bouncebot ingest`"), and the next ingest repairs it. A corrupt store is
reported the same way, never as a traceback or a bare "Internal Server Error".
Real Chroma, real model, real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from app.errors import IndexNotReady
from app.answering.services import build
from app.search.chroma import COSINE, fingerprint, make_client, open_collection
from app.search.versions import read_manifest, record_id, store_name
from ingest.indexer import ingest, kb_fingerprint, plan

from ..conftest import KB, ROOT
from .test_cli import index_env, run
from .test_ingest import CountingEmbedder

pytestmark = pytest.mark.slow

ARTICLE = "Common Email Delivery Errors"
QUESTION = "How do I get an address off the bounce list?"
SECTION = "Email address is on a bounce list"


def add_copies(kb, n: int) -> None:
    """The finding's KB: copies of the article, titled '(copy N)'."""
    src = (kb / "common-email-delivery-errors.md").read_text(encoding="utf-8")
    for i in range(1, n + 1):
        text = src.replace(f"title: {ARTICLE}\n", f"title: {ARTICLE} (copy {i})\n", 1)
        text = text.replace("-common-email-delivery-errors/\n", f"-common-email-delivery-errors-copy-{i}/\n", 1)
        (kb / f"copy-{i}.md").write_text(text, encoding="utf-8")


def kb_ids(settings, embedder) -> list[str]:
    return sorted(c.id for c in plan(settings, embedder.name)[0])


def body_texts(chunks) -> list[str]:
    """What a first ``app.search.body`` write embeds for ``chunks``: each distinct passage text once,
    and each distinct unit (sentence, list item) of the passages that are not table rows."""
    from app.knowledge.units import unit_texts
    from app.search.ranking import passage_key

    passages = {passage_key(c.text): c.text for c in sorted(chunks, key=lambda c: c.id, reverse=True)}
    units = dict.fromkeys(u for c in chunks if c.metadata.get("kind") != "row" for u in unit_texts(c.text))
    return sorted([*passages.values(), *units])


def index_ids(col) -> list[str]:
    return sorted(col.get(include=[])["ids"])


def assert_cites_the_article(settings, embedder, client):
    answer = build(settings, client=client, embedder=embedder).answerer.ask(QUESTION).to_dict()
    assert answer["answered"] and answer["sources"][0]["section"] == SECTION
    assert {s["article"] for s in answer["sources"]} == {ARTICLE}  # never '(copy N)'


def test_documents_added_to_the_store_behind_the_index_are_never_served(kb_copy, make_settings, embedder):
    """The finding's state: an indexed KB plus documents a killed ingest added to the store. A
    version reads only the documents its manifest lists, so a reader gets exactly its own; the
    next ingest removes the others."""
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    expected = kb_fingerprint(settings, embedder.name)
    col = open_collection(client, settings, expected)

    add_copies(kb_copy, 2)
    extra = [c for c in plan(settings, embedder.name)[0] if c.metadata["article_path"].startswith("copy-")]
    col.store.add(
        ids=[record_id(c.id, c.metadata) for c in extra],
        embeddings=embedder.embed_documents([c.search_text for c in extra]),
        documents=[c.text for c in extra],
        metadatas=[c.metadata for c in extra],
    )
    for p in kb_copy.glob("copy-*.md"):
        p.unlink()

    col = open_collection(client, settings, expected)
    assert index_ids(col) == kb_ids(settings, embedder)
    got = col.query(query_embeddings=[embedder.embed_query(QUESTION)], n_results=len(extra) + 5, include=["metadatas"])
    assert set(got["ids"][0]) <= set(kb_ids(settings, embedder))  # the copies' documents are nearer: never served
    assert all(not m["article_path"].startswith("copy-") for m in got["metadatas"][0])
    assert_cites_the_article(settings, embedder, client)

    counting = CountingEmbedder(embedder)
    add_copies(kb_copy, 1)
    ingest(settings, client, counting, progress=False)  # the clean-up: no version lists copy 2's documents
    assert counting.embedded == []  # copy 1's documents were in the store already
    listed = {record_id(c.id, c.metadata) for c in plan(settings, embedder.name)[0]}
    copy_2 = {record_id(c.id, c.metadata) for c in extra if c.metadata["article_path"] == "copy-2.md"}
    held = set(col.store.get(include=[])["ids"])
    assert copy_2 and not copy_2 & held and listed <= held


def test_documents_missing_from_the_store_are_refused_then_repaired(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    expected = kb_fingerprint(settings, embedder.name)
    col = open_collection(client, settings, expected)
    section = col.store.get(where={"section": SECTION}, include=[])["ids"]
    col.store.delete(ids=section)

    with pytest.raises(IndexNotReady, match="interrupted"):
        open_collection(client, settings, expected)

    counting = CountingEmbedder(embedder)
    ingest(settings, client, counting, progress=False)
    assert len(counting.embedded) == len(section)  # only what was missing
    assert index_ids(open_collection(client, settings, expected)) == kb_ids(settings, embedder)
    assert_cites_the_article(settings, embedder, client)


KILLED_INGEST = textwrap.dedent(
    """
    import os, signal, sys

    from chromadb.api.models.Collection import Collection

    from app.cli import main

    point, new_ids = sys.argv[1], set(sys.argv[2].split(","))
    upsert, modify = Collection.upsert, Collection.modify

    def add_then_die(self, *args, **kwargs):
        upsert(self, *args, **kwargs)
        ids = {i.split(".")[0] for i in kwargs.get("ids", args[0] if args else [])}
        if point == "after-add" and new_ids & ids:
            os.kill(os.getpid(), signal.SIGKILL)

    def die_before_modify(self, *args, **kwargs):
        if point == "before-modify":
            os.kill(os.getpid(), signal.SIGKILL)
        modify(self, *args, **kwargs)

    Collection.upsert, Collection.modify = add_then_die, die_before_modify
    sys.exit(main(["ingest"]))
    """
)


@pytest.mark.parametrize("point", ["after-add", "before-modify"])
def test_ingest_killed_midway_never_leaves_a_mixed_index(point, kb_copy, make_settings, embedder):
    """SIGKILL an ingest of '(copy N)' articles right after its new documents
    are added, or right before it records what it did."""
    settings = make_settings(kb_dir=kb_copy)
    r = run(["ingest"], index_env(settings))  # all writes in other processes, as in production
    assert r.returncode == 0, r.stderr
    old = make_settings(kb_dir=KB)  # a replica still on the previous KB: the same index, the same ids
    old_ids = kb_ids(old, embedder)

    add_copies(kb_copy, 2)
    new_ids = sorted(set(kb_ids(settings, embedder)) - set(old_ids))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_INGEST, point, ",".join(new_ids)],
        cwd=ROOT, env={**os.environ, **index_env(settings)}, capture_output=True, text=True, timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    client = make_client(settings)
    with pytest.raises(IndexNotReady, match="`bouncebot ingest`"):
        open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    try:  # the previous KB's reader gets exactly its documents, or a refusal: never a mix
        col = open_collection(client, old, kb_fingerprint(old, embedder.name))
    except IndexNotReady:
        pass
    else:
        assert index_ids(col) == old_ids
        assert_cites_the_article(old, embedder, client)

    counting = CountingEmbedder(embedder)
    report = ingest(settings, client, counting, progress=False)
    assert counting.embedded == []  # what the killed run embedded is not embedded again
    assert (report.added, report.removed) == (len(new_ids), 0)
    col = open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    assert index_ids(col) == kb_ids(settings, embedder)
    answer = build(settings, client=client, embedder=embedder).answerer.ask(QUESTION).to_dict()
    assert answer["answered"] and answer["sources"][0]["section"] == SECTION


def test_replica_reading_during_an_ingest_keeps_its_documents(kb_copy, make_settings, embedder):
    """A running replica (its collection opened at start-up) answers from the
    documents it loaded, through an ingest and after it: never a document it
    did not load (which would be a KeyError, a 500)."""
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    replica = build(settings, client=client, embedder=embedder)
    replica.answerer.ask(QUESTION)  # opened
    loaded = kb_ids(settings, embedder)

    add_copies(kb_copy, 2)
    ingest(settings, client, embedder, progress=False)
    retriever = replica.answerer.retriever
    assert index_ids(retriever.collection) == loaded
    hits = retriever.search("Email address is on a bounce list", k=12).hits
    assert hits and {h.id for h in hits} <= set(loaded)
    assert replica.answerer.ask(QUESTION).to_dict()["sources"][0]["section"] == SECTION


def test_old_versions_are_dropped_keeping_the_previous_one(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    opened = []
    for n in range(4):
        add_copies(kb_copy, n)
        ingest(settings, client, embedder, progress=False)
        opened.append(open_collection(client, settings, kb_fingerprint(settings, embedder.name)).name)
    names = {c.name for c in client.list_collections()}
    assert names == {settings.collection, opened[-1], opened[-2], store_name(settings.collection)}
    store = client.get_collection(store_name(settings.collection))
    listed = set(read_manifest(client.get_collection(opened[-1]))) | set(read_manifest(client.get_collection(opened[-2])))
    assert set(store.get(include=[])["ids"]) == listed  # the versions dropped took their own documents along


def test_a_missing_current_version_is_refused_then_rebuilt(make_settings, embedder):
    settings = make_settings()
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    expected = kb_fingerprint(settings, embedder.name)
    client.delete_collection(open_collection(client, settings, expected).name)
    with pytest.raises(IndexNotReady, match=r"current version .* is missing.*`bouncebot ingest`"):
        open_collection(client, settings, expected)
    ingest(settings, client, embedder, progress=False)
    assert index_ids(open_collection(client, settings, expected)) == kb_ids(settings, embedder)


def test_an_index_built_before_versions_is_read_then_replaced(kb_copy, make_settings, embedder):
    """An index from before this layout: its documents in the head collection."""
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    chunks = plan(settings, embedder.name)[0]
    legacy = client.create_collection(
        settings.collection, configuration=COSINE, embedding_function=None,
        metadata={"model": embedder.name, "fingerprint": fingerprint([c.id for c in chunks])},
    )
    legacy.add(ids=[c.id for c in chunks], embeddings=embedder.embed_documents([c.search_text for c in chunks]),
               documents=[c.text for c in chunks], metadatas=[c.metadata for c in chunks])
    expected = kb_fingerprint(settings, embedder.name)
    assert open_collection(client, settings, expected).name == settings.collection
    assert_cites_the_article(settings, embedder, client)
    counting = CountingEmbedder(embedder)
    ingest(settings, client, counting, progress=False)  # up to date: left as it is, the body vectors written
    assert sorted(counting.embedded) == body_texts(chunks)
    assert open_collection(client, settings, expected).name == settings.collection

    add_copies(kb_copy, 1)
    counting = CountingEmbedder(embedder)
    ingest(settings, client, counting, progress=False)
    assert len(counting.embedded) == len(chunks)  # only the copy's documents
    col = open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    assert col.name != settings.collection and index_ids(col) == kb_ids(settings, embedder)
    assert legacy.count() == len(chunks)  # still there for a replica reading it, until the next switch
    add_copies(kb_copy, 2)
    ingest(settings, client, embedder, progress=False)
    assert legacy.count() == 0
    assert index_ids(open_collection(client, settings, kb_fingerprint(settings, embedder.name))) == kb_ids(
        settings, embedder)


# --- an unreadable store


def corrupt(index_dir) -> None:
    with open(index_dir / "chroma.sqlite3", "r+b") as f:
        f.write(os.urandom(8192))


def test_store_corrupted_under_an_open_client_is_index_not_ready(make_settings, embedder):
    settings = make_settings()
    client = make_client(settings)
    ingest(settings, client, embedder, progress=False)
    corrupt(settings.index_dir)
    with pytest.raises(IndexNotReady, match=r"cannot be read.*Delete the folder and run `bouncebot ingest`") as e:
        open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    assert str(settings.index_dir) in str(e.value)


@pytest.fixture
def corrupt_index(make_settings, embedder):
    settings = make_settings()
    ingest(settings, make_client(settings), embedder, progress=False)
    corrupt(settings.index_dir)
    return settings


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["ask", "serve", "ingest"])
def test_corrupt_store_exits_3_with_the_fix(command, corrupt_index):
    argv = {"ask": ["ask", QUESTION], "serve": ["serve", "--port", str(free_port())], "ingest": ["ingest"]}[command]
    r = run(argv, index_env(corrupt_index), timeout=120)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert f"The index at {corrupt_index.index_dir} cannot be read" in r.stderr
    assert "Delete the folder and run `bouncebot ingest`" in r.stderr


def test_an_index_of_the_layout_before_the_store_is_read_then_moved_without_embedding(kb_copy, make_settings, embedder):
    """The previous layout: the head points to a version collection holding its own documents."""
    import time

    from app.search.chroma import CREATED, CURRENT, HEAD, SWITCHED

    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    chunks = plan(settings, embedder.name)[0]
    name = f"{settings.collection}-20260101T000000-0badc0de"
    old = client.create_collection(name, configuration=COSINE, embedding_function=None, metadata={
        "model": embedder.name, HEAD: settings.collection, CREATED: time.time() - 60,
        "fingerprint": fingerprint([c.id for c in chunks])})
    old.add(ids=[c.id for c in chunks], embeddings=embedder.embed_documents([c.search_text for c in chunks]),
            documents=[c.text for c in chunks], metadatas=[c.metadata for c in chunks])
    client.create_collection(settings.collection, configuration=COSINE, embedding_function=None,
                             metadata={"model": embedder.name, CURRENT: name, SWITCHED: time.time() - 60})
    expected = kb_fingerprint(settings, embedder.name)
    assert open_collection(client, settings, expected).name == name  # read as it is
    assert_cites_the_article(settings, embedder, client)

    add_copies(kb_copy, 1)
    counting = CountingEmbedder(embedder)
    ingest(settings, client, counting, progress=False)
    # only the copy's (its words are the article's: no body vector more than a first write of them makes)
    assert len(counting.embedded) == len(chunks) + len(body_texts(chunks))
    assert sorted(counting.embedded[len(chunks):]) == body_texts(chunks)  # the article's vectors came from the old version
    col = open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    assert col.name != name and index_ids(col) == kb_ids(settings, embedder)
    assert old.count() == len(chunks)  # kept, as the previous version, for replicas still reading it
    assert_cites_the_article(settings, embedder, client)
