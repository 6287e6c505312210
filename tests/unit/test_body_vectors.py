"""Passage body vectors (app.search.body): each distinct passage text embedded without its heading
path, kept per index version, and the retriever's cap on a passage's cosine by its body's own plus
``body_margin`` when the results come from several articles (issue 14: a hundred articles whose
titles name a topic, with passages that say nothing about it).

Counting fake encoders and ``FakeEmbedder`` (no model); the retriever over a real Chroma in a temp
dir; the real indexer for what ingest writes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.search import body
from app.search.chroma import fingerprint
from app.search.lexical import passage_hash

from .test_multilingual_vectors import CountingEncoder
from .test_ranking_at_scale import collection, real
from .test_topic_titles import ANSWER, QUESTIONS, spam_titles


def docs(d: dict[str, str], article="a.md"):
    return [(i, t, {"heading_path": "Title > Heading", "kind": "section", "article_path": article}) for i, t in d.items()]


def write(folder, name, d, enc, **kw):
    return body.write_version(folder, name, fingerprint(list(d)), docs(d), enc, **kw)


def load(path, enc):
    return body.load(path, body.encoder_id(enc))


# ------------------------------------------------------------------ the files

def test_each_distinct_text_is_embedded_once_without_its_headings(tmp_path):
    enc = CountingEncoder()
    d = {"x1": "Open Settings.", "x2": "open settings", "x3": "Mailbox full."}  # x1, x2: the same words
    vectors = load(write(tmp_path, "v1", d, enc), enc)
    assert sorted(enc.embedded) == ["Mailbox full.", "Open Settings."]  # the first by id; no heading path
    assert len(vectors) == 2 and list(vectors.keys) == sorted(vectors.keys)
    q = enc._vec("Mailbox full.")
    got = vectors.cosines([passage_hash("Mailbox full."), passage_hash("open settings")], q)
    assert got[0] == pytest.approx(1.0)
    assert got[1] == pytest.approx(float(enc._vec("Open Settings.") @ q))


def test_a_new_version_embeds_only_texts_no_kept_version_holds(tmp_path):
    enc = CountingEncoder()
    write(tmp_path, "v1", {"a": "bounce list", "b": "mailbox full"}, enc)
    enc.embedded.clear()
    v2 = load(write(tmp_path, "v2", {"a": "bounce list", "c": "mailbox full", "d": "SPF and DKIM"}, enc), enc)
    assert enc.embedded == ["SPF and DKIM"]  # "mailbox full" moved to another id: its vector is kept
    fresh = body.compute(docs({"a": "bounce list", "c": "mailbox full", "d": "SPF and DKIM"}), CountingEncoder())
    assert np.array_equal(v2.keys, fresh.keys) and np.allclose(v2.matrix, fresh.matrix)


def test_an_empty_kept_version_does_not_stop_reuse_from_older_ones(tmp_path):
    import os
    import time

    enc = CountingEncoder()
    old = write(tmp_path, "v1", {"a": "bounce list"}, enc)
    empty = write(tmp_path, "v2", {}, enc)
    os.utime(old, (time.time() - 60, time.time() - 60))  # v2 is the newest kept version
    os.utime(empty, (time.time() - 30, time.time() - 30))
    enc.embedded.clear()
    write(tmp_path, "v3", {"a": "bounce list"}, enc)
    assert enc.embedded == []  # taken from v1, past the empty v2


def test_another_encoders_vectors_are_never_reused(tmp_path):
    write(tmp_path, "v1", {"a": "bounce list"}, CountingEncoder("one"))
    other = CountingEncoder("two")
    write(tmp_path, "v2", {"a": "bounce list"}, other)
    assert other.embedded == ["bounce list"]


@pytest.mark.parametrize("damage", ["keys.npy", "vectors.npy", "manifest.json"])
def test_a_damaged_file_is_never_read(tmp_path, damage):
    enc = CountingEncoder()
    path = write(tmp_path, "v1", {"a": "bounce list", "b": "mailbox full"}, enc)
    (path / damage).write_bytes((path / damage).read_bytes()[:-3] + b"xyz")
    with pytest.raises(ValueError):
        load(path, enc)


def test_only_missing_leaves_whole_vectors_alone_and_writes_missing_ones(tmp_path):
    enc = CountingEncoder()
    d = {"a": "bounce list"}
    write(tmp_path, "v1", d, enc, only_missing=True)
    assert enc.embedded == ["bounce list"]
    write(tmp_path, "v1", d, enc, only_missing=True)
    assert enc.embedded == ["bounce list"]  # there whole: nothing done


@pytest.mark.parametrize("similarity,body_cos,margin,want", [
    (0.60, 0.10, 0.1, 0.20),  # the heading lifted it far above what its words say: capped
    (0.60, 0.55, 0.1, 0.60),  # its words say nearly as much: kept
    (0.40, 0.70, 0.1, 0.40),  # its words say more than with the heading: never raised
    (0.60, None, 0.1, 0.60),  # a text the vectors lack keeps its own
])
def test_the_cap(similarity, body_cos, margin, want):
    v = np.array([1.0, 0.0], dtype=np.float32)
    if body_cos is None:
        vectors = body.BodyVectors(np.array([7], dtype=np.uint64), np.array([[0.0, 1.0]], dtype=np.float32))
    else:
        vectors = body.BodyVectors(np.array([5], dtype=np.uint64),
                                   np.array([[body_cos, np.sqrt(1 - body_cos**2)]], dtype=np.float32))
    sims = np.array([0.9, similarity])
    vectors.cap([1], np.array([0, 5], dtype=np.uint64), sims, v, margin)
    assert sims[1] == pytest.approx(want) and sims[0] == 0.9  # rows not asked for are left alone


def test_where_the_vectors_live(tmp_path):
    from ..fakes import fake_settings

    settings = fake_settings(tmp_path / "index")
    assert body.body_dir(settings) == tmp_path / "index" / "body"
    served = settings.with_(chroma_url="http://127.0.0.1:8000")
    assert body.body_dir(served).parent.name == "body" and body.body_dir(served).parent.parent == settings.model_dir.parent


# ------------------------------------------------------------------ the retriever

@pytest.mark.parametrize("question", QUESTIONS)
def test_passages_whose_headings_alone_match_do_not_outrank_the_one_that_answers(tmp_path, question):
    r = collection(tmp_path, real(r5=("Delivery errors", *ANSWER), **spam_titles(10)))
    r.heading_shared = 0  # the lexical rule for the same trouble off: the cap alone
    plain = r.search(question, k=3).hits
    r._body = body.body_vectors_for(r.lexical, r.collection, r.embedder, body.MEMORY)
    got = r.search(question, k=3).hits
    assert plain[0].id != "r5"  # the titles' words in every passage's heading win without the cap
    assert got[0].id == "r5"
    r.body_margin = 0  # off by its setting: as without the vectors
    assert [h.id for h in r.search(question, k=3).hits] == [h.id for h in plain]


def test_one_articles_kb_has_no_body_vectors_and_ranks_as_before(tmp_path):
    r = collection(tmp_path, real())
    assert body.body_vectors_for(r.lexical, r.collection, r.embedder, body.MEMORY) is None


def test_a_matrix_damaged_after_open_is_not_used(tmp_path, caplog):
    r = collection(tmp_path, real(r5=("Delivery errors", *ANSWER), **spam_titles(10)))
    r.heading_shared = 0
    plain = [h.id for h in r.search(QUESTIONS[0], k=3).hits]
    folder = tmp_path / "body"
    documents = [(i, t, m) for i, t, m in zip(*(lambda g: (g["ids"], g["documents"], g["metadatas"]))(
        r.collection.get(include=["documents", "metadatas"])))]
    path = body.write_version(folder, "v", "fp", documents, r.embedder)
    opened = body.load(path, body.encoder_id(r.embedder), check_matrix=False)
    raw = bytearray((path / "vectors.npy").read_bytes())
    raw[-8:] = bytes(b ^ 0xFF for b in raw[-8:])
    (path / "vectors.npy").write_bytes(bytes(raw))
    r._body = opened
    assert [h.id for h in r.search(QUESTIONS[0], k=3).hits] == plain  # ranked without the cap
    assert r._body is None and "checksum" in caplog.text


# ------------------------------------------------------------------ at ingest (the real indexer, fake MiniLM)

class Counting:
    """``FakeEmbedder`` that records the texts it embeds."""

    def __init__(self):
        from ..fakes import FakeEmbedder

        self._e = FakeEmbedder()
        self.name = self._e.name
        self.texts: list[str] = []

    def embed_documents(self, texts, progress=False):
        self.texts += list(texts)
        return self._e.embed_documents(list(texts))

    def __getattr__(self, name):
        return getattr(self._e, name)


def _ingest(tmp_path, kb, embedder):
    from app.search.chroma import make_client, open_collection
    from ingest.indexer import ingest

    from ..fakes import fake_settings

    settings = fake_settings(tmp_path / "index", kb_dir=kb)
    client = make_client(settings)
    report = ingest(settings, client, embedder, progress=False)
    return settings, open_collection(client, settings), report


def _second_article(kb):
    (kb / "inbox-tips.md").write_text("# Inbox tips\n\n## Views\n\nSave a view of your open conversations.\n\n"
                                      "## Snooze\n\nSnooze a conversation until a customer replies.\n", encoding="utf-8")


def test_ingest_writes_them_from_the_first_article_on_and_reuses_them(tmp_path):
    from ..conftest import KB

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    e = Counting()
    settings, col, report = _ingest(tmp_path, kb, e)
    vectors = body.try_open(col, body.body_dir(settings), e)
    assert vectors is not None and vectors.check() and 0 < len(vectors) - vectors.units <= report.chunks
    assert vectors.units > 0  # the passages' sentences and list items, for focusing answers
    assert len(e.texts) == report.chunks + len(vectors)  # the index's search texts, then each distinct text
    _second_article(kb)  # a second article: its own texts only
    e.texts.clear()
    settings, col2, report = _ingest(tmp_path, kb, e)
    assert body.try_open(col2, body.body_dir(settings), e) is not None
    new = ["Save a view of your open conversations.", "Snooze a conversation until a customer replies."]
    assert report.added == 2 and sorted(e.texts[2:]) == new
    e.texts.clear()
    _ingest(tmp_path, kb, e)  # up to date: nothing
    assert e.texts == []


def test_services_rank_with_the_ingested_vectors(tmp_path):
    from app.answering.services import build

    from ..conftest import KB
    from ..fakes import FakeEmbedder

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    _second_article(kb)
    settings, _, _ = _ingest(tmp_path, kb, FakeEmbedder())
    services = build(settings, embedder=FakeEmbedder())
    assert services.answerer.retriever._body is not None
    shutil.rmtree(body.body_dir(settings))
    assert build(settings, embedder=FakeEmbedder()).answerer.retriever._body is None  # ranks without the cap
