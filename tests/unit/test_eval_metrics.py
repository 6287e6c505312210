"""The eval's own arithmetic, on hand-made predictions."""

from __future__ import annotations

import json

import pytest

from evals.metrics import check_case, failed, summarise
from evals.report import write_report
from evals.run import load_cases, regressions

ROWS = {"550-5.1.1": ("Address gone.", "Fix it."), "550": ("General failure.", "Check it.")}


def pred(**kw):
    base = {"answer": "", "answered": True, "claimed": [], "cited": [], "ranked": [], "sources": [], "seconds": 0.01}
    return base | kw


CODE_CASE = {"id": "c", "category": "code_shape", "question": "550 5.1.1?",
             "expect": {"codes": [{"code": "550-5.1.1", "match": "exact", "row": "550-5.1.1"}], "answered": True,
                        "sections": ["Common delivery errors"], "facts": ["address gone"]}}
UNTABLED = {"id": "u", "category": "untabled_code", "question": "550 5.7.26?",
            "expect": {"codes": [{"code": "550-5.7.26", "match": "none"}], "no_exact": True}}
REFUSE = {"id": "r", "category": "unanswerable", "question": "price?", "expect": {"answered": False}}
ARTICLE = {"id": "a", "category": "article_question", "question": "bounce list?",
           "expect": {"answered": True, "sections": ["B", "C"], "facts": ["one fact", "two  Fact"]}}


def test_code_exact_needs_the_row_verbatim_and_nothing_else():
    good = pred(answer="Address gone. Fix it.", claimed=["550-5.1.1"], cited=["Common delivery errors"],
                ranked=["Common delivery errors"])
    assert check_case(CODE_CASE, good, ROWS)["code_exact"] is True
    paraphrased = good | {"answer": "The address is gone. Fix it."}
    assert check_case(CODE_CASE, paraphrased, ROWS)["code_exact"] is False
    extra = good | {"claimed": ["550-5.1.1", "550"]}
    out = check_case(CODE_CASE, extra, ROWS)
    assert out["code_exact"] is False and out["false_claims"] == ["550"]


def test_codes_found_must_match_in_order():
    got = pred(codes=[("550-5.7.26", "none")])
    assert check_case(UNTABLED, got, ROWS)["codes_correct"] is True
    assert check_case(UNTABLED, pred(codes=[("550-5.7.26", "exact")]), ROWS)["codes_correct"] is False
    assert check_case(UNTABLED, pred(codes=[]), ROWS)["codes_correct"] is False
    assert "codes found differ" in failed(check_case(UNTABLED, pred(), ROWS))
    assert check_case(REFUSE, pred(), ROWS)["codes_correct"] is None


def test_false_claims_on_untabled_codes():
    assert check_case(UNTABLED, pred(claimed=["550"]), ROWS)["false_claims"] == ["550"]
    assert check_case(UNTABLED, pred(), ROWS)["false_claims"] == []


def test_ranks_facts_and_citations():
    out = check_case(ARTICLE, pred(answer="ONE fact and two fact", cited=["C"], ranked=["A", "C", "B"]), ROWS)
    assert (out["recall@1"], out["recall@3"], out["rr"], out["citation"]) == (False, True, 0.5, True)
    assert (out["facts_found"], out["facts_total"]) == (2, 2)  # case and spacing are ignored
    assert failed(out) == []


def test_summary_and_refusal_precision_recall():
    outcomes = [
        check_case(REFUSE, pred(answered=False), ROWS),  # refused correctly
        check_case(REFUSE, pred(answered=True), ROWS),  # should have refused
        check_case(ARTICLE, pred(answered=False, ranked=["B"]), ROWS),  # refused wrongly
    ]
    m = summarise(outcomes, [0.01, 0.02, 0.03])
    assert m["refusal_precision"] == 0.5 and m["refusal_recall"] == 0.5
    assert m["recall@1"] == 1.0 and m["latency_p50_ms"] == 20.0
    assert "should have refused" in failed(outcomes[1]) and "refused an answerable question" in failed(outcomes[2])


def test_regression_gate():
    base = {"code_exact_match": 1.0, "recall@3": 0.9, "fact_recall": 0.9}
    ok = {"false_exact_claims": 0, "code_exact_match": 1.0, "recall@3": 0.89, "fact_recall": 0.95}
    assert regressions(ok, base) == []
    bad = ok | {"recall@3": 0.85, "false_exact_claims": 1}
    problems = regressions(bad, base)
    assert any("false exact claims" in p for p in problems) and any("recall@3" in p for p in problems)


def test_datasets_are_well_formed():
    cases = load_cases(["dev", "test"])
    assert len(cases) >= 150
    assert len({c["id"] for c in cases}) == len(cases)
    dev_q = {c["question"] for c in load_cases(["dev"])}
    assert not dev_q & {c["question"] for c in load_cases(["test"])}


def test_bad_case_file_is_reported(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"id": "x", "question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_cases([str(p)])


def test_report_files(tmp_path):
    metrics = summarise([check_case(REFUSE, pred(answered=False), ROWS)], [0.01])
    run = {"datasets": ["t"], "cases": 1, "tolerance": 0.02, "targets": {"refusal_recall": 0.95},
           "pipelines": {"bouncebot": {"metrics": metrics, "cases": []}}}
    paths = write_report(run, tmp_path)
    assert json.loads(paths["json"].read_text())["pipelines"]["bouncebot"]["metrics"]["refusal_recall"] == 1.0
    assert "| refusal recall | >= 0.95 | 1.000 |" in paths["markdown"].read_text()
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
