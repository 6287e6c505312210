"""``make bench``'s language-model part (evals/bench_llm.py) without the model: it says `make llm`
and skips, never fails; its figures print from what a run measured. No model, no server."""

from __future__ import annotations

import pytest

from evals import bench_llm
from evals.bench_llm import Asked, Figures, llm_figures, print_figures


@pytest.mark.parametrize("missing", ["file", "runtime"])
def test_no_model_prints_make_llm_and_skips(tmp_path, monkeypatch, capsys, missing):
    env = {"BOUNCEBOT_MODEL_CACHE": str(tmp_path / "empty")}
    if missing == "runtime":
        monkeypatch.setattr(bench_llm.importlib.util, "find_spec", lambda name: None)
    figures = llm_figures(env)
    assert figures.skipped and "make llm" in figures.skipped and figures.asked == []
    print_figures(figures, [0.01, 0.02])
    out = capsys.readouterr().out
    assert "skipped:" in out and "make llm" in out


def test_an_unverified_file_is_not_a_model(tmp_path):
    (tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").write_bytes(b"not a model")
    why = bench_llm.model_missing({"BOUNCEBOT_MODEL_CACHE": str(tmp_path)})
    assert why is not None and "make llm" in why  # a file without its verification marker is never loaded


def test_the_figures_print_beside_the_default_mode(capsys):
    asked = [Asked("q1", 0.05, 0.6, 3.0, 0.5, 2.9, True, None, "llm"),
             Asked("q2", 0.04, 0.9, 4.0, 0.8, 3.9, False, "unsupported_sentence", "default"),
             Asked("q3", 0.03, None, 0.03, None, None, False, None, "default")]  # the model was not asked
    print_figures(Figures(asked=asked, start_s=12.0, memory_mb={"VmRSS": 2100, "VmHWM": 2200}), [0.01, 0.02])
    out = capsys.readouterr().out
    assert "default mode" in out and "model's time to first token" in out and "full answer" in out
    assert "model asked 2 of 3, kept 1, fell back 1 {'unsupported_sentence': 1}" in out
    assert "RSS 2100 MB" in out and "peak 2200 MB" in out


def test_a_server_that_fails_is_reported_not_raised(capsys):
    print_figures(Figures(error="bouncebot serve with BOUNCEBOT_LLM=local exited: boom"))
    assert "not measured: bouncebot serve" in capsys.readouterr().out
