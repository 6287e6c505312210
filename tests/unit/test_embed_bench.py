"""The embedding benches' own logic (no model): the answer bench's modes and
the ingest bench's "input order" (the old batching) it compares against."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.search.embeddings import query_precision


@pytest.mark.parametrize("mode, docs, query", [
    ("fp32/mixed", "fp32", "mixed"), ("fp32/fp32", "fp32", "fp32"), ("fp32/int8", "fp32", "int8"),
    ("int8/int8", "int8", "int8"),
])
def test_a_mode_is_the_index_precision_and_the_query_precision(mode, docs, query):
    from evals.bench_answer import mode_settings

    s = mode_settings(Settings(), Path("/tmp/x"), mode)
    assert (s.embed_precision, query_precision(s)) == (docs, query)
    assert s.index_dir == Path("/tmp/x") / f"index-{docs}"  # modes on one index precision share its index


def test_the_default_mode_is_among_the_benched_ones():
    from evals.bench_answer import MODES

    s = Settings.from_env({})
    assert f"{s.embed_precision}/{query_precision(s)}" == MODES[0]


@pytest.mark.parametrize("argv", [["--modes", "fp32"], ["--modes", "fp32/mixed/int8"]])
def test_a_malformed_mode_is_refused(argv, capsys):
    from evals.bench_answer import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "INDEX/QUERY" in capsys.readouterr().err


def test_the_old_batching_is_in_input_order():
    from evals.bench_embed import input_order

    from .test_embed_batching import RecordingEmbedder, words

    texts = [words(9), words(1), words(5), words(2)]
    e = RecordingEmbedder(batch_size=2)
    input_order(e, texts)
    assert [b for _, b in e.batches] == [texts[:2], texts[2:]]
