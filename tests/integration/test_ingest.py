"""Ingest into a real Chroma with the real model: content-hash IDs, exact
replacement of an edited or deleted article, and an untouched index when an
article is malformed."""

from __future__ import annotations

import pytest

from app.errors import MalformedArticle
from app.search.chroma import fingerprint, make_client, open_collection
from app.knowledge.chunks import chunk_articles
from app.knowledge.units import unit_texts
from ingest.indexer import ingest, kb_fingerprint
from app.knowledge.articles import load_articles

pytestmark = pytest.mark.slow

EXTRA = """---
title: SPF and DKIM
url: https://help.example.com/spf-dkim
---

Authenticate your sending domain.

## Setting up SPF

Add a TXT record that lists the servers allowed to send for your domain.
"""


class CountingEmbedder:
    """The real model, counting what it is asked to embed."""

    def __init__(self, real):
        self.real = real
        self.name = real.name
        self.embedded: list[str] = []

    def embed_documents(self, texts, progress=False):
        self.embedded.extend(texts)
        return self.real.embed_documents(texts)


def index(client, settings):
    """The collection readers open (the index's current version)."""
    return open_collection(client, settings)


def state(client, settings):
    col = index(client, settings)
    got = col.get(include=["metadatas"])
    return sorted(got["ids"]), col.metadata


def test_first_ingest_indexes_sections_and_rows(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    report = ingest(settings, client, CountingEmbedder(embedder), progress=False)
    assert (report.articles, report.rows) == (1, 7)
    assert report.added == report.chunks and report.kept == report.removed == 0
    col = index(client, settings)
    assert col.count() == report.chunks
    assert col.configuration["hnsw"]["space"] == "cosine"
    rows = col.get(where={"kind": "row"}, include=["metadatas"])["metadatas"]
    assert sorted(m["code"] for m in rows) == sorted(
        ["421-4.7.28", "550", "550-5.1.1", "550-5.7.1", "552-5.2.2", "554-5.4.4", "554-5.4.7"]
    )
    sections = col.get(where={"kind": "section"}, include=["metadatas"])["metadatas"]
    assert {m["heading_path"] for m in sections} >= {
        "Common Email Delivery Errors",
        "Common Email Delivery Errors > Troubleshooting message delivery failures",
    }
    assert "7 table rows" in report.summary()


def test_reingest_unchanged_embeds_nothing(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, CountingEmbedder(embedder), progress=False)
    before = state(client, settings)
    counting = CountingEmbedder(embedder)
    report = ingest(settings, client, counting, progress=False)
    assert counting.embedded == []
    assert (report.added, report.removed, report.kept) == (0, 0, report.chunks)
    assert state(client, settings) == before


def test_edit_add_and_delete_articles_touch_exactly_their_chunks(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, CountingEmbedder(embedder), progress=False)
    original_ids, _ = state(client, settings)

    # add a second article: only its chunks are embedded (into the index, then their own words alone
    # and their sentences and list items: app.search.body)
    (kb_copy / "spf.md").write_text(EXTRA, encoding="utf-8")
    counting = CountingEmbedder(embedder)
    report = ingest(settings, client, counting, progress=False)
    assert report.added == 2 and report.removed == 0
    assert all("SPF and DKIM" in t for t in counting.embedded[: report.added])
    added = index(client, settings).get(where={"article_path": "spf.md"}, include=["documents"])["documents"]
    assert sorted(counting.embedded[report.added :]) == sorted(added + [u for t in added for u in unit_texts(t)])

    # edit one section of the article: exactly one chunk replaced
    path = kb_copy / "common-email-delivery-errors.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("first try sending the message again.", "first try sending it again."), "utf-8")
    counting = CountingEmbedder(embedder)
    report = ingest(settings, client, counting, progress=False)
    assert (report.added, report.removed) == (1, 1)
    assert "first try sending it again." in counting.embedded[0]
    edited = [t for t in index(client, settings).get(include=["documents"])["documents"] if "first try sending it again." in t]
    # and its words alone, once, and its one new sentence (the others' vectors are the old version's)
    assert sorted(counting.embedded[1:]) == sorted(edited + [u for u in unit_texts(edited[0]) if "it again" in u])
    ids, meta = state(client, settings)
    assert len(ids) == len(set(ids)) == report.chunks
    assert meta["fingerprint"] == kb_fingerprint(settings, embedder.name)

    # delete the added article: its chunks go, nothing else
    (kb_copy / "spf.md").unlink()
    report = ingest(settings, client, CountingEmbedder(embedder), progress=False)
    assert (report.added, report.removed) == (0, 2)
    col = index(client, settings)
    assert col.get(where={"article_path": "spf.md"})["ids"] == []
    assert len(set(original_ids) - set(state(client, settings)[0])) == 1  # only the edited section differs


def test_malformed_article_leaves_the_index_as_it_was(kb_copy, make_settings, embedder):
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, CountingEmbedder(embedder), progress=False)
    before = state(client, settings)
    path = kb_copy / "common-email-delivery-errors.md"
    lines = path.read_text(encoding="utf-8").split("\n")
    row = next(i for i, l in enumerate(lines) if l.startswith("| 552-5.2.2"))
    lines[row] = "| 552-5.2.2 | The recipient’s mailbox is full and cannot receive new messages. |"
    path.write_text("\n".join(lines), encoding="utf-8")
    (kb_copy / "spf.md").write_text(EXTRA, encoding="utf-8")  # a valid new article is not half-added
    counting = CountingEmbedder(embedder)
    with pytest.raises(MalformedArticle) as e:
        ingest(settings, client, counting, progress=False)
    assert (e.value.path, e.value.line) == ("common-email-delivery-errors.md", row + 1)
    assert counting.embedded == []
    assert state(client, settings) == before


def test_ids_are_content_hashes():
    from ..conftest import KB

    a = chunk_articles(load_articles(KB), "m1")
    b = chunk_articles(load_articles(KB), "m1")
    c = chunk_articles(load_articles(KB), "m2")
    assert [x.id for x in a] == [x.id for x in b]
    assert not {x.id for x in a} & {x.id for x in c}  # another model re-embeds everything
    assert fingerprint([x.id for x in a]) == fingerprint([x.id for x in reversed(a)])


def test_kept_documents_carry_the_articles_current_lines(kb_copy, make_settings, embedder):
    """A paragraph added near the top moves every later section down: the
    documents kept (not embedded again) still cite their current line."""
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, CountingEmbedder(embedder), progress=False)
    path = kb_copy / "common-email-delivery-errors.md"
    text = path.read_text(encoding="utf-8")
    first = "Delivery failure notes do not reopen closed conversations automatically."
    path.write_text(text.replace(first, first + "\n\nA new paragraph.\n", 1), encoding="utf-8")
    report = ingest(settings, client, CountingEmbedder(embedder), progress=False)
    assert report.kept > 0
    got = index(client, settings).get(include=["metadatas"])
    indexed = dict(zip(got["ids"], got["metadatas"]))
    chunks = chunk_articles(load_articles(kb_copy), embedder.name)
    assert {c.id: c.metadata["line"] for c in chunks} == {i: m["line"] for i, m in indexed.items()}


def test_a_reader_of_the_previous_version_keeps_its_lines_through_an_ingest(kb_copy, make_settings, embedder):
    """Versions share one store: a section that only moved is another record, so a replica still on
    the previous version cites the lines it had, and the new version the new ones."""
    settings = make_settings(kb_dir=kb_copy)
    client = make_client(settings)
    ingest(settings, client, CountingEmbedder(embedder), progress=False)
    before = open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    old_lines = {i: m["line"] for i, m in zip(*(lambda g: (g["ids"], g["metadatas"]))(before.get(include=["metadatas"])))}
    path = kb_copy / "common-email-delivery-errors.md"
    first = "Delivery failure notes do not reopen closed conversations automatically."
    path.write_text(path.read_text(encoding="utf-8").replace(first, first + "\n\nA new paragraph.\n", 1), encoding="utf-8")
    counting = CountingEmbedder(embedder)
    ingest(settings, client, counting, progress=False)
    after = open_collection(client, settings, kb_fingerprint(settings, embedder.name))
    got = after.get(include=["metadatas"])
    new_lines = dict(zip(got["ids"], (m["line"] for m in got["metadatas"])))
    moved = [i for i in old_lines if i in new_lines and old_lines[i] != new_lines[i]]
    # the edited section alone (its search text, then its words and its one new sentence: app.search.body):
    # the moved ones keep their vectors
    assert moved and len(counting.embedded) == 3 and all("A new paragraph." in t for t in counting.embedded)
    assert "A new paragraph." in counting.embedded
    again = before.get(ids=moved, include=["metadatas"])
    assert [m["line"] for m in again["metadatas"]] == [old_lines[i] for i in again["ids"]]
