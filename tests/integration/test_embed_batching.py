"""The real model: batching by token length changes no vector (within 1e-5 of
the same texts embedded in their own order's batches), and an int8 query
against fp32 documents keeps the index's name and finds the same passages."""

from __future__ import annotations

import random

import numpy as np
import pytest

from app.config import Settings
from app.search.embeddings import Embedder, cosines

pytestmark = pytest.mark.slow


def mixed_texts() -> list[str]:
    from evals.embed_precision import kb_texts

    texts = kb_texts(Settings()) + [
        "550 5.1.1", "What does 421-4.7.28 mean?", "her mailbox is full, what can I do?", "", "bounce " * 600,
        "The recipient’s mailbox is full and cannot receive new messages. " * 3,
    ]
    random.Random(14).shuffle(texts)
    return texts


def in_input_order(e: Embedder, texts: list[str]) -> np.ndarray:
    """What embed_documents gave before: batches of ``batch_size`` in the input's order."""
    return np.vstack([e._encode(texts[i : i + e.batch_size], e.precision) for i in range(0, len(texts), e.batch_size)])


@pytest.mark.parametrize("batch_size", [32, 4])
def test_sorted_batches_give_the_same_vectors_in_the_same_order(batch_size):
    e = Embedder(Settings().model_dir, batch_size=batch_size, query_cache=0)
    texts = mixed_texts()
    got = np.array(e.embed_documents(texts))
    want = in_input_order(e, texts)
    assert got.shape == want.shape == (len(texts), 384)
    np.testing.assert_allclose(got, want, atol=1e-5)
    reversed_got = np.array(e.embed_documents(texts[::-1]))
    np.testing.assert_allclose(reversed_got[::-1], got, atol=1e-5)


def test_an_int8_query_against_fp32_documents():
    from evals.embed_precision import kb_texts, questions

    settings = Settings()
    fp32 = Embedder(settings.model_dir, query_cache=0)
    mixed = Embedder(settings.model_dir, query_cache=0, query_precision="int8")
    assert mixed.name == fp32.name  # an index built in fp32 stays valid
    kb = kb_texts(settings)
    np.testing.assert_allclose(mixed.embed_documents(kb), fp32.embed_documents(kb), atol=1e-6)  # documents: fp32
    qs = questions("dev")[:40]
    q32 = np.array([fp32.embed_query(q) for q in qs])
    q8 = np.array([mixed.embed_query(q) for q in qs])
    assert 0.95 < cosines(q32, q8).min() < 0.99999  # the int8 file really answers the queries
    docs = np.array(fp32.embed_documents(kb))
    kept = ((q8 @ docs.T).argmax(axis=1) == (q32 @ docs.T).argmax(axis=1)).mean()
    assert kept >= 0.85
