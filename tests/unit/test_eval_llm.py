"""The eval's ``llm`` pipeline (evals/run.py, evals/pipelines.py, evals/metrics.py, evals/report.py)
with a scripted chat model through the same ``with_llm`` door: metrics on the answer as shown, what
the mode did (kept, fallbacks by reason, interventions by kind, times), the report beside the default.
Real services on the fake embedder; no model, no server."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from app.answering.services import with_llm
from evals.metrics import check_case, summarise_llm
from evals.pipelines import BouncebotPipeline, unheld_codes
from evals.report import write_report
from evals.run import OPTIONAL, PIPELINES, build_pipelines, evaluate

from ..fakes import fake_services, kb_rows

ROW = kb_rows()["552-5.2.2"]
QUESTION = "What does 552 5.2.2 mean?"
GOOD = "The customer's mailbox is full, so it cannot receive new messages."
CASE = {"id": "t1", "category": "code", "question": QUESTION,
        "expect": {"codes": [{"code": "552-5.2.2", "match": "exact", "row": "552-5.2.2"}], "answered": True}}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("eval_llm_index"))


def llm_pipeline(base, *replies: str) -> BouncebotPipeline:
    model = GenericFakeChatModel(messages=iter([AIMessage(r) for r in replies]))
    return BouncebotPipeline(with_llm(base.settings, base.answerer, base.embedder, model), name="llm")


def test_llm_is_never_in_the_default_run():
    assert "llm" in OPTIONAL and "llm" not in PIPELINES


def test_kept_text_is_scored_as_shown(base):
    pred = llm_pipeline(base, GOOD).predict(QUESTION)
    assert pred["mode"] == "llm" and pred["llm"]["used"] and GOOD in pred["answer"]
    out = check_case(CASE, pred, kb_rows())
    assert out["code_exact"] is True and out["false_claims"] == []


def test_a_code_the_shown_text_invents_is_a_false_exact_claim(base):
    pred = BouncebotPipeline(base.answerer).predict(QUESTION)  # the default answer
    shown = base.answerer.ask(QUESTION).to_dict() | {"llm": {"model": "m", "used": True,
                                                         "generated": "Also 552 and 550 5.1.1."}}
    pred["unheld_codes"] = unheld_codes(shown)  # as if the guard had let it through
    assert pred["unheld_codes"] == ["550-5.1.1"]  # 552 is part of the exact 552-5.2.2
    assert check_case(CASE, pred, kb_rows())["false_claims"] == ["text:550-5.1.1"]


def test_an_invented_code_falls_back_and_is_counted(base):
    pred = llm_pipeline(base, "It means 550 5.1.1: the address does not exist.").predict(QUESTION)
    assert pred["mode"] == "default" and pred["llm"]["fallback"] == "unknown_code"
    assert pred["unheld_codes"] == []  # not shown: the default answer is
    assert check_case(CASE, pred, kb_rows())["false_claims"] == []
    m = summarise_llm([pred["llm"]])
    assert m["fallbacks"] == {"unknown_code": 1} and m["interventions"]["unknown_code"] == 1
    assert m["fallback_rate"] == 1.0 and m["llm_used_rate"] == 0.0


def test_summarise_llm_counts_rates_kinds_and_times():
    reports = [
        {"used": True, "fallback": None, "interventions": [], "ttft_s": 0.5, "total_s": 2.0},
        {"used": False, "fallback": "unsupported_sentence", "interventions": ["unsupported:a", "unsupported:b"],
         "ttft_s": 1.0, "total_s": 4.0},
        {"used": False, "fallback": "timeout", "interventions": ["timeout"], "ttft_s": None, "total_s": 30.0},
        {"used": False, "fallback": None, "interventions": [], "ttft_s": None, "total_s": None},  # not asked
        None,  # mode off
    ]
    m = summarise_llm(reports)
    assert (m["cases"], m["llm_asked"], m["llm_asked_rate"]) == (5, 3, 0.6)
    assert m["llm_used_rate"] == 0.3333 and m["fallback_rate"] == 0.6667 and m["intervention_rate"] == 0.6667
    assert m["fallbacks"] == {"unsupported_sentence": 1, "timeout": 1}
    assert m["interventions"] == {"unsupported": 2, "timeout": 1} and m["unsupported_sentences_caught"] == 2
    assert (m["ttft_p50_ms"], m["ttft_p95_ms"]) == (1000.0, 1000.0)
    assert (m["llm_total_p50_ms"], m["llm_total_p95_ms"]) == (4000.0, 30000.0)


def test_run_and_report_side_by_side(base, tmp_path, monkeypatch):
    replies = [GOOD] * 8
    monkeypatch.setattr("evals.run.llm_answerer", lambda services: llm_pipeline(base, *replies).answerer)
    pipelines = build_pipelines(["bouncebot", "llm"], base)
    results = evaluate(pipelines, [CASE], kb_rows())
    assert "llm" not in results["bouncebot"]
    assert results["llm"]["llm"]["llm_used_rate"] == 1.0
    assert results["llm"]["metrics"]["false_exact_claims"] == 0
    assert results["llm"]["metrics"]["code_exact_match"] == results["bouncebot"]["metrics"]["code_exact_match"] == 1.0
    run = {"datasets": ["t"], "cases": 1, "targets": {}, "limit": 1, "pipelines": results}
    paths = write_report(run, tmp_path)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "## Language-model mode" in md and "first 1 of each dataset file" in md
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["pipelines"]["llm"]["llm"]["llm_asked"] == 1
    assert paths["chart"].stat().st_size > 0
