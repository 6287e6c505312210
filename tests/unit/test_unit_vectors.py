"""The passages' units stored beside the body vectors (``app.knowledge.units``, ``app.search.body``):
``bouncebot ingest`` embeds each distinct sentence and list item of the passages once, and an answer
among several articles focuses on a passage met for the first time without embedding its sentences
(issue 14: 7-25 ms of the slowest answers at 10,000 articles), choosing exactly what it chose before.

The real indexer over a real Chroma in a temp dir, with a counting ``FakeEmbedder`` (no model)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.answering.focus import units as focus_units
from app.knowledge.units import cut, unit_texts
from app.search import body

from .test_body_vectors import Counting, _ingest, _second_article

PASSAGES = [
    ("one sentence", "Try again later.", []),
    ("two sentences", "Try again later. Then check the address.", ["Try again later.", "Then check the address."]),
    ("a list with its lead-in", "Include:\n- the code\n- the time", ["Include:", "- the code", "- the time"]),
    ("a paragraph then a list", "Check these.\n\n1. Open Settings.\n2. Click Save.",
     ["Check these.", "1. Open Settings.", "2. Click Save."]),
    ("a table and a sentence", "| a | b |\n| - | - |\n\nSee the table.", ["| a | b |\n| - | - |", "See the table."]),
    ("an abbreviation", "Use a domain, e.g. yours. Then wait.", ["Use a domain, e.g. yours.", "Then wait."]),
]


@pytest.mark.parametrize("passage, expected", [(p, e) for _, p, e in PASSAGES], ids=[n for n, _, _ in PASSAGES])
def test_the_units_stored_are_what_focusing_embeds(passage, expected):
    assert unit_texts(passage) == expected
    us, _ = focus_units(passage)
    assert [u.text for u in us] == [t for t, _, _ in cut(passage)[0]]  # focus cuts the same way
    assert (len(us) > 1) == bool(expected)  # a passage of one unit is never embedded


def _kb(tmp_path):
    from ..conftest import KB

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    _second_article(kb)
    return kb


def _section_units(settings):
    from ingest.indexer import plan

    chunks = plan(settings, "fake")[0]
    return list(dict.fromkeys(u for c in chunks if c.metadata.get("kind") != "row" for u in unit_texts(c.text)))


def test_ingest_stores_every_passages_units_as_the_encoder_gives_them(tmp_path):
    from ..fakes import FakeEmbedder

    settings, col, _ = _ingest(tmp_path, _kb(tmp_path), Counting())
    vectors = body.try_open(col, body.body_dir(settings), FakeEmbedder())
    expected = _section_units(settings)
    assert vectors.units == len(expected) > 10
    got = vectors.vectors([body.unit_key(t) for t in expected])
    np.testing.assert_allclose(np.array(got), np.array(FakeEmbedder().embed_documents(expected)), atol=1e-6)
    assert vectors.vectors([body.unit_key("not a unit of this KB")]) == [None]


QUESTIONS = ["what does 550 5.1.1 mean and what should I do", "how do I snooze a conversation",
             "the reply failed, what should I check first", "what should I send to support",
             "how do I stop emails going to spam", "what is a bounce list"]


def test_an_answer_among_articles_embeds_only_its_question_and_focuses_as_before(tmp_path):
    from app.answering.services import build

    from ..fakes import FakeEmbedder

    settings, _, _ = _ingest(tmp_path, _kb(tmp_path), FakeEmbedder())
    counting = Counting()
    stored = build(settings, embedder=counting).answerer
    assert stored.retriever._body is not None and stored.retriever._body.units
    kb_units = set(_section_units(settings))
    focused = 0
    for q in QUESTIONS:
        counting.texts.clear()
        a = stored.ask(q)
        multi = [u for s in a.sources if s.kind == "section" for u in unit_texts(s.text)]
        focused += bool(multi)
        assert not set(counting.texts) & kb_units, q  # none of the passages' units embedded
        assert not multi or q in counting.texts  # the question is (the other articles' titles once, too)
    assert focused >= 3  # the table does reach passages of several units
    embedding = build(settings, embedder=FakeEmbedder()).answerer  # the same, units embedded at answer time
    embedding.retriever.unit_vectors = lambda texts: [None] * len(texts)
    for q in QUESTIONS:
        assert stored.ask(q).to_dict() == embedding.ask(q).to_dict(), q


def test_one_articles_kb_reads_none_and_embeds_its_sentences_as_before(tmp_path):
    from app.answering.services import build

    from ..conftest import KB

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    settings, _, _ = _ingest(tmp_path, kb, Counting())
    counting = Counting()
    answerer = build(settings, embedder=counting).answerer
    assert answerer.retriever.unit_vectors(["Try again later."]) == [None]
    a = answerer.ask("the reply failed, what should I check first")
    multi = [u for s in a.sources if s.kind == "section" for u in unit_texts(s.text)]
    assert multi and set(multi) <= set(counting.texts)


def test_an_index_written_before_units_gets_them_on_its_next_ingest_embedding_units_only(tmp_path):
    from app.search.chroma import make_client, open_collection
    from ingest.indexer import ingest, plan

    kb = _kb(tmp_path)
    settings, col, _ = _ingest(tmp_path, kb, Counting())
    folder = body.body_dir(settings)
    chunks = plan(settings, "fake")[0]
    shutil.rmtree(folder)
    e = Counting()
    body.write_version(folder, col.name, col.metadata["fingerprint"], [(c.id, c.text, c.metadata) for c in chunks], e)
    assert body.try_open(col, folder, e).units == 0 and e.texts  # as the last version wrote them
    with open(next(folder.glob("*/manifest.json"))) as f:
        import json

        manifest = json.load(f)
    manifest.pop("units")  # an older file does not say
    (next(folder.glob("*/manifest.json"))).write_text(json.dumps(manifest))
    assert body.try_open(col, folder, e).units is None
    e.texts.clear()
    report = ingest(settings, make_client(settings), e, progress=False)
    assert report.added == 0
    assert sorted(e.texts) == sorted(_section_units(settings))  # the units, not the passages again
    assert body.try_open(open_collection(make_client(settings), settings), folder, e).units == len(e.texts)
