"""The int8 model file against fp32 (the real model, both files), the
background preload of the model's session, and the query cache on the real
encoder."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import Settings
from app.search.embeddings import Embedder, cosines, onnx_file, preload
from app.search.model_files import INT8_MIN_COSINE, PROBE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def both():
    settings = Settings()
    fp32 = Embedder(settings.model_dir, precision="fp32", query_cache=0).load()
    int8 = Embedder(settings.model_dir, precision="int8", query_cache=0).load()  # quantised here if missing
    return settings, fp32, int8


def test_int8_file_sits_beside_fp32_and_is_smaller(both):
    settings, _, _ = both
    a, b = onnx_file(settings.model_dir, "fp32"), onnx_file(settings.model_dir, "int8")
    assert a.parent == b.parent and b.name.endswith(".int8.onnx")
    assert b.stat().st_size < 0.8 * a.stat().st_size


def test_int8_is_within_the_verified_cosine_of_fp32_on_every_kb_chunk(both):
    from evals.embed_precision import kb_texts

    settings, fp32, int8 = both
    texts = kb_texts(settings)
    assert texts
    c = cosines(fp32.embed_documents(texts), int8.embed_documents(texts))
    assert c.min() >= INT8_MIN_COSINE, (c.min(), texts[int(c.argmin())][:80])


def test_int8_is_within_the_verified_cosine_on_the_probe_and_queries_agree(both):
    _, fp32, int8 = both
    c = cosines(fp32.embed_documents(list(PROBE)), int8.embed_documents(list(PROBE)))
    assert c.min() >= INT8_MIN_COSINE
    q = "How do I get an address off the bounce list?"
    assert float(np.dot(fp32.embed_query(q), int8.embed_query(q))) >= INT8_MIN_COSINE


def test_the_two_precisions_name_their_index_apart(both):
    _, fp32, int8 = both
    assert fp32.name == "all-MiniLM-L6-v2" and int8.name == "all-MiniLM-L6-v2-int8"


def test_a_cache_hit_is_the_same_vector_as_embedding_again():
    settings = Settings()
    cached = Embedder(settings.model_dir).load()
    fresh = Embedder(settings.model_dir, query_cache=0).load()
    q = "her mailbox is full, what can I do?"
    first = cached.embed_query(q)
    assert cached.embed_query("  her mailbox is full,  what can I do? ") == first
    assert cached.cache.hits == 1
    np.testing.assert_allclose(first, fresh.embed_query(q), atol=1e-6)


@pytest.fixture(scope="module")
def mixed():
    settings = Settings()
    return Embedder(settings.model_dir, precision="mixed", query_cache=0).load()  # made here if missing


def test_a_preloaded_session_is_taken_by_the_embedder_and_embeds_alike(mixed):
    from app.search import embeddings

    settings = Settings().with_(embed_threads=1, query_precision="mixed")  # the mixed file: made by the fixture
    preload(settings)
    query_key = (str(onnx_file(settings.model_dir, "mixed")), 1)  # the query file (the default) on an fp32 index
    docs_key = (str(onnx_file(settings.model_dir, "fp32")), 1)  # and the documents' (the focusing step's)
    assert query_key in embeddings._PRELOADS and docs_key in embeddings._PRELOADS
    e = Embedder.from_settings(settings).load()
    assert query_key not in embeddings._PRELOADS and docs_key in embeddings._PRELOADS  # taken, not made twice
    e.embed_documents(["The recipient's mailbox is full."])
    assert docs_key not in embeddings._PRELOADS  # taken when documents were first embedded
    reference = Embedder(settings.model_dir, query_cache=0, threads=2, query_precision="mixed")  # made apart
    np.testing.assert_allclose(e.embed_query("550 5.1.1 user unknown"),
                               reference.embed_query("550 5.1.1 user unknown"), atol=1e-6)


def test_preload_without_a_model_file_does_nothing(tmp_path):
    from app.search import embeddings

    before = dict(embeddings._PRELOADS)
    preload(Settings().with_(model_dir=tmp_path / "none"))
    assert embeddings._PRELOADS == before and not (tmp_path / "none").exists()


def test_ask_answers_without_importing_langchain_or_torch(indexed_settings):
    """`bouncebot ask` in the default mode (no language model): the Embedder is duck-typed, so LangChain
    is never imported on this path (it cost about 0.12 s of a one-shot ask); the preload changes no answer."""
    import json
    import os
    import subprocess
    import sys

    from ..conftest import ROOT

    env = {**os.environ, "BOUNCEBOT_KB_DIR": str(indexed_settings.kb_dir),
           "BOUNCEBOT_INDEX_DIR": str(indexed_settings.index_dir), "BOUNCEBOT_COLLECTION": indexed_settings.collection}
    env.pop("BOUNCEBOT_LLM", None)
    code = (
        "import io, json, sys, contextlib; from app import cli; out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): rc = cli.main(['ask', '--json', 'How do I get an address off the bounce list?'])\n"
        "bad = [m for m in ('langchain', 'langchain_core', 'torch', 'sentence_transformers') if m in sys.modules]\n"
        "print(json.dumps({'rc': rc, 'bad': bad, 'answer': json.loads(out.getvalue())}))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0 and got["bad"] == []
    assert got["answer"]["answered"] is True
    assert any("bounce" in (s.get("section") or "").lower() or "bounce" in s.get("text", "").lower()
               for s in got["answer"]["sources"])


def test_mixed_file_keeps_the_sensitive_matmuls_in_fp32_and_quantises_the_rest(mixed):
    import onnx

    from app.search.model_files import KEEP_FP32

    path = onnx_file(mixed.model_dir, "mixed")
    assert path.name.endswith(".mixed.onnx")
    nodes = onnx.load(str(path)).graph.node
    fp32_matmuls = {n.name for n in nodes if n.op_type == "MatMul"}
    assert set(KEEP_FP32) <= fp32_matmuls
    quantised = [n for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    assert len(quantised) == 36 - len(KEEP_FP32)  # 6 layers x 6 weight MatMuls, less the kept ones


def test_mixed_is_closer_to_fp32_than_int8_on_the_kb_and_the_dev_questions(both, mixed):
    from evals.embed_precision import kb_texts, questions

    settings, fp32, int8 = both
    for texts in (kb_texts(settings), questions("dev")):
        reference = fp32.embed_documents(texts)
        c_mixed = cosines(reference, [mixed.embed_query(t) for t in texts])  # one text at a time, as a query
        c_int8 = cosines(reference, [int8.embed_query(t) for t in texts])
        assert c_mixed.min() >= INT8_MIN_COSINE, texts[int(c_mixed.argmin())][:80]
        assert c_mixed.mean() > c_int8.mean() and c_mixed.min() > c_int8.min()


def test_a_mixed_query_against_the_fp32_index_keeps_its_name():
    settings = Settings().with_(query_precision="mixed")
    e = Embedder.from_settings(settings)
    assert (e.precision, e.query_precision, e.name) == ("fp32", "mixed", "all-MiniLM-L6-v2")
    assert Embedder.from_settings(Settings()).query_precision == "mixed"  # the default (see query_precision)
    assert Embedder.from_settings(Settings().with_(query_precision="fp32")).query_precision == "fp32"


def test_quantising_refuses_names_the_export_lacks(tmp_path):
    from app.search.model_files import quantize_onnx

    fp32 = onnx_file(Settings().model_dir, "fp32")
    with pytest.raises(RuntimeError, match="no MatMul named /inner/encoder/layer.9"):
        quantize_onnx(fp32, tmp_path / "x.onnx", keep_fp32=("/inner/encoder/layer.9/output/dense/MatMul",))
    assert not list(tmp_path.iterdir())


def test_prepare_files_makes_the_query_file_once_and_loads_no_session(tmp_path):
    """``bouncebot ingest`` prepares the default query file (mixed), so a server's first question
    does not quantise it; files already there are left as they are."""
    import shutil

    settings = Settings()
    fp32 = onnx_file(settings.model_dir, "fp32")
    Embedder(settings.model_dir).prepare_files()  # the shared dir: fp32 is there (the fixture's export)
    shutil.copy(fp32, tmp_path / fp32.name)
    e = Embedder.from_settings(settings.with_(model_dir=tmp_path))
    assert (e.precision, e.query_precision) == ("fp32", "mixed")
    assert e.prepare_files() == [onnx_file(tmp_path, "mixed")]
    assert not e.loaded  # files only: no session made
    assert e.prepare_files() == []  # once
    np.testing.assert_allclose(e.embed_query("550 5.1.1 user unknown"),
                               Embedder(settings.model_dir, query_precision="mixed", query_cache=0)
                               .embed_query("550 5.1.1 user unknown"), atol=1e-6)
