"""Scoring one pipeline's predictions against the eval cases.

Pure functions over plain data, so the metrics themselves are unit-tested.

A *prediction* is a dict: ``answer`` (str), ``answered`` (bool), ``claimed``
(table-row codes the pipeline presents as a code's meaning), ``cited`` (the
section of each cited source, in order), ``ranked`` (sections of the top
retrieved passages, in order), ``sources`` (for failure reports), and
``seconds``. Conversation keys (absent or None for pipelines that have no
such notion): ``intent`` (question|follow_up|small_talk|draft|handoff),
``carried`` (the codes marked ``from_history``, in order), ``draft``
(``{channel, text, codes}``) and ``handoff`` (``{fields: [{name, value}]}``).
Language-model mode keys (``llm`` pipeline): ``llm`` (the answer's ``LLMReport`` as a
dict, None when the mode is off) and ``unheld_codes`` (codes the shown model text
names that the answer does not hold as exact: each counts as a false exact claim).
"""

from __future__ import annotations

import collections
import re
import statistics


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


# "I don't know", with either apostrophe: what a refusal says, and small talk must not.
IDK = ("i don't know", "i don’t know")


def says_idk(answer: str) -> bool:
    a = norm(answer)
    return any(p in a for p in IDK)


def words(answer: str) -> int:
    """Length of the Markdown answer in words: whitespace-separated tokens with a
    letter or digit in them (Markdown marks such as ``-``, ``>`` or ``|`` alone are not words)."""
    return sum(1 for t in (answer or "").split() if any(ch.isalnum() for ch in t))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the one the latency figures use): the value at index int(q * n), capped."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def same_code(a: str, b: str) -> bool:
    """Two normalised codes name the same code: equal, or one is a lone enhanced
    code (5.2.2) and the other a pair with that enhanced part (552-5.2.2)."""
    a, b = a.strip(), b.strip()
    if a == b:
        return True
    if "-" in a and "-" in b:
        return False
    return "." in a and "." in b and a.split("-")[-1] == b.split("-")[-1]


def _compact(text: str) -> str:
    """For comparing field values: lower case without spaces, dashes, # and quotes
    (so "550 5.1.1", "550-5.1.1" and "550 #5.1.1" compare equal)."""
    return re.sub(r"[\s\-#\"'`]+", "", (text or "").lower())


def carried_rows_excused(case: dict, pred: dict) -> set[str]:
    """Rows claimed for codes carried from the history that are not false claims,
    only misplaced ones (``carried_codes_correct`` judges that): the code is in an
    earlier turn and its row is that code's (same code, or its lone enhanced part)."""
    history = " ".join(t.get("content") or "" for t in case.get("history") or [])
    if not history:
        return set()
    ok = set()
    for code, row in pred.get("carried_claims") or []:
        if (code == row or same_code(code, row)) and all(part in history for part in code.split("-")):
            ok.add(row)
    return ok


def check_intent(exp: dict, pred: dict) -> bool | None:
    want = exp.get("intent")
    if want is None:
        return None
    return pred.get("intent") in (want if isinstance(want, list) else [want])


def check_carried(case: dict, pred: dict) -> bool | None:
    """On a case with history that says which codes there are: the codes carried
    from earlier turns are exactly the expected ``from_history`` ones, in order
    (none at all for ``no_codes`` and for a topic switch)."""
    exp = case["expect"]
    if not case.get("history") or not ("codes" in exp or exp.get("no_codes")):
        return None
    want = [c["code"] for c in exp.get("codes", []) if c.get("from_history")]
    got = list(pred.get("carried") or [])
    return len(got) == len(want) and all(same_code(g, w) for g, w in zip(got, want))


def check_draft(exp: dict, pred: dict) -> bool | None:
    """intent draft, a draft with text, about every expected code, on the expected channel."""
    want = exp.get("draft")
    if want is None:
        return None
    d = pred.get("draft")
    if pred.get("intent") != "draft" or not isinstance(d, dict) or not (d.get("text") or "").strip():
        return False
    if want.get("channel") and d.get("channel") != want["channel"]:
        return False
    got = list(d.get("codes") or [])
    return all(any(same_code(g, w) for g in got) for w in want.get("codes", []))


def handoff_fields(exp: dict, pred: dict) -> tuple[int, int] | None:
    """(fields right, fields expected) of a hand-off. An expected field is found by
    name (the prediction's field name contains the key, ignoring case); a value
    must contain the expected one (ignoring case, spaces, dashes and #); an
    expected null must be left empty (nothing the conversation lacks is invented)."""
    want = (exp.get("handoff") or {}).get("fields")
    if want is None:
        return None
    h = pred.get("handoff") if pred.get("intent") == "handoff" else None
    fields = (h or {}).get("fields") or [] if isinstance(h, dict) else []
    right = 0
    for key, value in want.items():
        f = next((f for f in fields if norm(key) in norm(f.get("name") or "")), None)
        if f is None:
            continue
        got = f.get("value")
        if value is None:
            right += not (got or "").strip()
        elif got and _compact(value) in _compact(got):
            right += 1
    return right, len(want)


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
        out["false_claims"] = sorted(claimed - want - carried_rows_excused(case, pred))
    else:
        out["false_claims"] = None
    # a code the shown model text names without an exact match is a false claim wherever it is
    unheld = [f"text:{c}" for c in pred.get("unheld_codes") or []]
    if unheld:
        out["false_claims"] = (out["false_claims"] or []) + unheld

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

    # conversation checks
    out["intent"] = check_intent(exp, pred)
    out["carried"] = check_carried(case, pred)
    out["draft"] = check_draft(exp, pred)
    hf = handoff_fields(exp, pred)
    out["handoff"] = None if hf is None else hf[0] == hf[1]
    out["handoff_fields_found"], out["handoff_fields_total"] = hf if hf else (None, None)
    out["not_idk"] = not says_idk(pred["answer"]) and bool(pred["answer"].strip()) if exp.get("not_idk") else None
    out["words"] = words(pred["answer"])
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
    hf_found = sum(o.get("handoff_fields_found") or 0 for o in outcomes)
    hf_total = sum(o.get("handoff_fields_total") or 0 for o in outcomes)
    word_counts = [o["words"] for o in outcomes if o.get("words") is not None]
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
        "intent_correct": _rate([o.get("intent") for o in outcomes]),
        "carried_codes_correct": _rate([o.get("carried") for o in outcomes]),
        "draft_correct": _rate([o.get("draft") for o in outcomes]),
        "handoff_correct": _rate([o.get("handoff") for o in outcomes]),
        "handoff_field_recall": round(hf_found / hf_total, 4) if hf_total else None,
        "small_talk_not_idk": _rate([o.get("not_idk") for o in outcomes]),
        "answer_words_p50": percentile(word_counts, 0.5),
        "answer_words_p95": percentile(word_counts, 0.95),
    }


def summarise_llm(reports: list[dict | None]) -> dict:
    """What the language-model mode did over a run, from each answer's ``LLMReport`` (None: mode off).

    *asked*: the model was asked to write (it has a ``total_s``: kept, failed or fell back);
    rates of kept text and fallbacks are over the answers it was asked for. Interventions are
    counted by kind (the part before ``:``); ``unsupported_sentences_caught`` counts sentences."""
    asked = [r for r in reports if r and r.get("total_s") is not None]
    n = len(asked)
    share = lambda k: round(k / n, 4) if n else None  # noqa: E731
    kinds = collections.Counter(i.split(":")[0] for r in asked for i in r.get("interventions") or [])
    fallbacks = collections.Counter(r["fallback"] for r in asked if r.get("fallback"))
    ttft = [r["ttft_s"] for r in asked if r.get("ttft_s") is not None]
    total = [r["total_s"] for r in asked]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {
        "cases": len(reports),
        "llm_asked": n,
        "llm_asked_rate": round(n / len(reports), 4) if reports else None,
        "llm_used_rate": share(sum(bool(r.get("used")) for r in asked)),
        "fallback_rate": share(sum(fallbacks.values())),
        "fallbacks": dict(fallbacks.most_common()),
        "intervention_rate": share(sum(bool(r.get("interventions")) for r in asked)),
        "interventions": dict(kinds.most_common()),
        "unsupported_sentences_caught": kinds.get("unsupported", 0),
        "ttft_p50_ms": ms(percentile(ttft, 0.5)),
        "ttft_p95_ms": ms(percentile(ttft, 0.95)),
        "llm_total_p50_ms": ms(percentile(total, 0.5)),
        "llm_total_p95_ms": ms(percentile(total, 0.95)),
    }


def summarise_groups(outcomes: list[dict], seconds: list[float], keys: list[str]) -> dict[str, dict]:
    """``summarise`` per group (e.g. per category), groups in first-seen order."""
    groups: dict[str, tuple[list, list]] = {}
    for o, s, k in zip(outcomes, seconds, keys):
        g = groups.setdefault(k, ([], []))
        g[0].append(o)
        g[1].append(s)
    return {k: summarise(os, ss) for k, (os, ss) in groups.items()}


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
    if outcome.get("intent") is False:
        why.append("wrong intent")
    if outcome.get("carried") is False:
        why.append("carried codes differ")
    if outcome.get("draft") is False:
        why.append("no or wrong draft")
    if outcome.get("handoff") is False:
        why.append(f"hand-off fields {outcome['handoff_fields_found']}/{outcome['handoff_fields_total']}")
    if outcome.get("not_idk") is False:
        why.append("said I don't know to small talk")
    return why
