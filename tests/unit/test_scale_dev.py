"""evals.scale_dev's diagnostics: ``--exact`` (the dense search by numpy over every vector, to tell the
ranking's losses from the vector index's misses) and ``--set`` (a ranking attribute for one run)."""

from __future__ import annotations

import numpy as np
import pytest

from evals.scale_dev import ExactDense, main

from .test_ranking_at_scale import collection, others, real


@pytest.mark.parametrize("question", ["mailbox full, my reply bounced", "open the tickets page", "weekly macros"])
@pytest.mark.parametrize("n", [1, 5, 40])
def test_exact_dense_returns_the_exact_nearest(tmp_path, question, n):
    r = collection(tmp_path, real(**others(8, shared_table=True)))
    exact = ExactDense(r.collection)
    q = r.embedder.embed_query(question)
    got = exact.query([q], n_results=n, include=["distances", "documents", "metadatas"])
    every = r.collection.get(include=["embeddings"])
    sims = np.asarray(every["embeddings"]) @ np.asarray(q)
    want = [every["ids"][j] for j in np.argsort(-sims, kind="stable")[:n]]
    assert got["ids"][0] == want
    assert got["distances"][0] == pytest.approx(sorted(1 - sims)[:n], abs=1e-5)
    docs = r.collection.get(ids=want, include=["documents"])
    assert sorted(got["documents"][0]) == sorted(docs["documents"])
    assert exact.count() == r.collection.count()  # everything else is the collection's own


@pytest.mark.parametrize("item", ["no_such_rule=1", "count=3"])
def test_set_refuses_what_the_retriever_does_not_have(item, capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", "0", "--set", item])
    assert e.value.code == 2 and "HybridRetriever has no attribute" in capsys.readouterr().err
