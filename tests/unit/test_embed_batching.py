"""How ``Embedder.embed_documents`` batches (texts of similar token length
together, the output in the input's order), which precision each path runs
at, and how many threads ``bouncebot ingest`` embeds on. No model: the encoder
is a recording stand-in (the real model's vectors: tests/integration/test_embed_batching.py)."""

from __future__ import annotations

import os

import pytest

from app.config import Settings
from app.search.embeddings import Embedder, query_precision


class RecordingEmbedder(Embedder):
    """The real batching, with a deterministic encoder that records each batch and its precision.
    A text's "token count" is its number of words."""

    def __init__(self, **kw):
        super().__init__("/nonexistent-model-dir", batch_size=kw.pop("batch_size", 3), query_cache=0, **kw)
        self.batches: list[tuple[str, list[str]]] = []

    def load(self):
        return self

    def _token_counts(self, texts):
        return [len(t.split()) for t in texts]

    def _encode(self, texts, precision=None):
        import numpy as np

        self.batches.append((precision or self.query_precision, list(texts)))
        return np.array([[float(len(t.split())), float(sum(map(ord, t)) % 101)] for t in texts])


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


MIXES = {
    "long first": [words(40), words(2), words(30), words(1), words(3), words(25), words(2)],
    "already sorted": [words(n) for n in range(1, 8)],
    "reversed": [words(n) for n in range(8, 0, -1)],
    "equal lengths": [words(4, t) for t in "abcdefg"],
    "one text": [words(5)],
    "fewer than a batch": [words(9), words(1)],
}


@pytest.mark.parametrize("texts", MIXES.values(), ids=MIXES.keys())
def test_output_is_in_the_input_order_whatever_the_batching(texts):
    e = RecordingEmbedder()
    out = e.embed_documents(texts)
    assert out == [[float(len(t.split())), float(sum(map(ord, t)) % 101)] for t in texts]
    assert sorted(t for _, b in e.batches for t in b) == sorted(texts)  # each text embedded once


@pytest.mark.parametrize("texts", MIXES.values(), ids=MIXES.keys())
def test_batches_hold_texts_of_neighbouring_lengths(texts):
    e = RecordingEmbedder()
    e.embed_documents(texts)
    lengths = [[len(t.split()) for t in b] for _, b in e.batches]
    flat = [n for b in lengths for n in b]
    assert flat == sorted(flat)  # shortest first, so no batch pads a short text to a long one's length
    assert all(len(b) <= 3 for b in lengths)


def test_equal_lengths_keep_their_order():
    texts = MIXES["equal lengths"]
    e = RecordingEmbedder()
    e.embed_documents(texts)
    assert [t for _, b in e.batches for t in b] == texts


def test_padding_saved_on_a_mixed_list():
    """The tokens a batch is padded to, summed: sorted batching pads far less than the input's order."""
    texts = MIXES["long first"] * 5
    e = RecordingEmbedder()
    e.embed_documents(texts)
    padded_sorted = sum(len(b) * max(len(t.split()) for t in b) for _, b in e.batches)
    padded_input_order = sum(3 * max(len(t.split()) for t in texts[i : i + 3]) for i in range(0, len(texts), 3))
    assert padded_sorted < 0.8 * padded_input_order


@pytest.mark.parametrize("doc, query, want_docs, want_query", [
    ("fp32", None, "fp32", "fp32"),
    ("int8", None, "int8", "int8"),
    ("fp32", "int8", "fp32", "int8"),
    ("int8", "fp32", "int8", "fp32"),
    ("fp32", "mixed", "fp32", "mixed"),
])
def test_documents_and_queries_run_at_their_own_precision(doc, query, want_docs, want_query):
    e = RecordingEmbedder(precision=doc, query_precision=query)
    e.embed_documents(["a passage of the article"])
    e.embed_query("a question")
    assert [p for p, _ in e.batches] == [want_docs, want_query]
    assert e.name == {"fp32": "all-MiniLM-L6-v2", "int8": "all-MiniLM-L6-v2-int8"}[doc]  # the index's, not the query's


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="use one of"):
        Embedder("/nowhere", query_precision="int4")


@pytest.mark.parametrize("env, embed_threads, ingest_threads, query", [
    ({}, 1, os.cpu_count() or 1, "mixed"),  # an fp32 index is queried with the mixed file (issue 14)
    ({"BOUNCEBOT_EMBED_THREADS": "1"}, 1, 1, "mixed"),
    ({"BOUNCEBOT_EMBED_THREADS": "3"}, 3, 3, "mixed"),
    ({"BOUNCEBOT_QUERY_PRECISION": "fp32"}, 1, os.cpu_count() or 1, "fp32"),
    ({"BOUNCEBOT_QUERY_PRECISION": "mixed"}, 1, os.cpu_count() or 1, "mixed"),
    ({"BOUNCEBOT_QUERY_PRECISION": "int8"}, 1, os.cpu_count() or 1, "int8"),
    ({"BOUNCEBOT_EMBED_PRECISION": "int8"}, 1, os.cpu_count() or 1, "int8"),  # an int8 index: int8 queries
    ({"BOUNCEBOT_EMBED_PRECISION": "mixed"}, 1, os.cpu_count() or 1, "mixed"),
    ({"BOUNCEBOT_EMBED_PRECISION": "int8", "BOUNCEBOT_QUERY_PRECISION": "FP32"}, 1, os.cpu_count() or 1, "fp32"),
])
def test_settings(env, embed_threads, ingest_threads, query):
    s = Settings.from_env(env)
    assert (s.embed_threads, s.ingest_threads, query_precision(s)) == (embed_threads, ingest_threads, query)


def test_a_bad_query_precision_says_which():
    from app.errors import BadSetting

    with pytest.raises(BadSetting, match="BOUNCEBOT_QUERY_PRECISION"):
        Settings.from_env({"BOUNCEBOT_QUERY_PRECISION": "int4"})


@pytest.mark.parametrize("env, threads", [
    ({}, os.cpu_count() or 1),
    ({"BOUNCEBOT_EMBED_THREADS": "1"}, 1),
])
def test_ingest_embeds_on_all_cores_unless_told(monkeypatch, tmp_path, env, threads):
    import ingest.indexer
    import app.search.chroma
    from app import cli

    seen = {}

    class Report:
        def summary(self):
            return "ok"

    def fake_ingest(settings, client, embedder, progress=True):
        seen["threads"] = embedder.threads
        return Report()

    monkeypatch.setattr(ingest.indexer, "ingest", fake_ingest)
    monkeypatch.setattr(app.search.chroma, "make_client", lambda settings: None)
    monkeypatch.setattr(Embedder, "prepare_files", lambda self: seen.setdefault("prepared", self.query_precision))
    for k in ("BOUNCEBOT_EMBED_THREADS", "BOUNCEBOT_CHROMA_URL"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("BOUNCEBOT_INDEX_DIR", str(tmp_path / "index"))
    assert cli.main(["ingest"]) == 0
    assert seen["threads"] == threads
    assert seen["prepared"] == "mixed"  # the queries' file made by the ingest, not by a server's first question
