"""Scoring one pipeline's predictions against the eval cases.

Pure functions over plain data, so the metrics themselves are unit-tested.

A *prediction* is a dict: ``answer`` (str), ``answered`` (bool), ``claimed``
(table-row codes the pipeline presents as a code's meaning), ``cited`` (the
section of each cited source, in order), ``ranked`` (sections of the top
retrieved passages, in order), ``sources`` (for failure reports), and
``seconds``.
"""

from __future__ import annotations

import re
import statistics



def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def expected_rows(case: dict) -> set[str]:
    return {c["row"] for c in case["expect"].get("codes", []) if c.get("match") == "exact"}


def check_case(case: dict, pred: dict, rows: dict[str, tuple[str, str]]) -> dict:
    """Per-case outcomes; None where a measure does not apply to the case."""
    exp = case["expect"]
    out: dict = {}
    want = expected_rows(case)
    answer = norm(pred["answer"])
    claimed = set(pred["claimed"])

    # code exact-match: the expected rows, and only those, verbatim in the answer
    if want:
        verbatim = all(norm(rows[r][0]) in answer and norm(rows[r][1]) in answer for r in want)
        out["code_exact"] = claimed == want and verbatim
    else:
        out["code_exact"] = None
    # a false exact claim: a row offered as a code's meaning that the code does not have
    if want or exp.get("no_exact") or exp.get("no_codes") or "codes" in exp:
        out["false_claims"] = sorted(claimed - want)
    else:
        out["false_claims"] = None

    # code detection: every code found, in order, with the right match
    if "codes" in exp or exp.get("no_codes"):
        want_codes = [(c["code"], c["match"]) for c in exp.get("codes", [])]
        out["codes_correct"] = [tuple(c) for c in pred.get("codes", [])] == want_codes
    else:
        out["codes_correct"] = None

    sections = exp.get("sections")
    if sections:
        ranked = pred["ranked"]
        rank = next((i + 1 for i, s in enumerate(ranked) if s in sections), None)
        out["recall@1"] = rank == 1
        out["recall@3"] = rank is not None and rank <= 3
        out["rr"] = 1.0 / rank if rank else 0.0
        out["citation"] = bool(pred["cited"]) and pred["cited"][0] in sections if exp.get("answered", True) else None
    else:
        out["recall@1"] = out["recall@3"] = out["rr"] = out["citation"] = None

    facts = exp.get("facts") or []
    out["facts_found"] = sum(norm(f) in answer for f in facts) if facts else None
    out["facts_total"] = len(facts) if facts else None

    if "answered" in exp:
        out["answered_expected"] = exp["answered"]
        out["answered_got"] = pred["answered"]
    if exp.get("no_codes"):
        out["codes_found_on_decoy"] = pred.get("codes_found", 0)
    return out


def _rate(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(1 for v in vals if v) / len(vals), 4) if vals else None


def summarise(outcomes: list[dict], seconds: list[float]) -> dict:
    refused_ok = sum(1 for o in outcomes if o.get("answered_expected") is False and o.get("answered_got") is False)
    refused = sum(1 for o in outcomes if "answered_got" in o and o["answered_got"] is False)
    should_refuse = sum(1 for o in outcomes if o.get("answered_expected") is False)
    facts_found = sum(o["facts_found"] or 0 for o in outcomes)
    facts_total = sum(o["facts_total"] or 0 for o in outcomes)
    rr = [o["rr"] for o in outcomes if o["rr"] is not None]
    ordered = sorted(seconds)
    return {
        "cases": len(outcomes),
        "code_exact_match": _rate([o["code_exact"] for o in outcomes]),
        "codes_found_correctly": _rate([o["codes_correct"] for o in outcomes]),
        "false_exact_claims": sum(len(o["false_claims"] or []) for o in outcomes),
        "recall@1": _rate([o["recall@1"] for o in outcomes]),
        "recall@3": _rate([o["recall@3"] for o in outcomes]),
        "mrr": round(sum(rr) / len(rr), 4) if rr else None,
        "fact_recall": round(facts_found / facts_total, 4) if facts_total else None,
        "citation_correct": _rate([o["citation"] for o in outcomes]),
        "refusal_precision": round(refused_ok / refused, 4) if refused else 0.0,
        "refusal_recall": round(refused_ok / should_refuse, 4) if should_refuse else None,
        "latency_p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "latency_p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2) if ordered else None,
    }


def failed(outcome: dict) -> list[str]:
    """Which measures a case failed, for the readable failure list."""
    why = []
    if outcome["code_exact"] is False:
        why.append("code exact-match")
    if outcome["codes_correct"] is False:
        why.append("codes found differ")
    if outcome["false_claims"]:
        why.append("false exact claim " + ", ".join(outcome["false_claims"]))
    if outcome["recall@3"] is False:
        why.append("expected section not in top 3")
    if outcome["citation"] is False:
        why.append("wrong or no citation")
    if outcome["facts_total"] and outcome["facts_found"] < outcome["facts_total"]:
        why.append(f"facts {outcome['facts_found']}/{outcome['facts_total']}")
    if "answered_expected" in outcome and outcome["answered_expected"] != outcome["answered_got"]:
        why.append("should have refused" if outcome["answered_expected"] is False else "refused an answerable question")
    if outcome.get("codes_found_on_decoy"):
        why.append("found a code in a decoy")
    return why
