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


# ------------------------------------------------------------ conversations

from evals.metrics import (carried_rows_excused, check_carried, check_draft, check_intent, handoff_fields,  # noqa: E402
                           percentile, same_code, says_idk, summarise_groups, words)
from evals.run import gate, gated_keys, unheld  # noqa: E402

HIST = [{"role": "user", "content": "customer bounced 552 5.2.2"}, {"role": "assistant", "content": ""}]
FOLLOW = {"id": "f", "category": "follow_up_code", "history": HIST, "question": "ok and now?",
          "expect": {"codes": [{"code": "552-5.2.2", "match": "exact", "row": "552-5.2.2", "from_history": True}],
                     "intent": "follow_up"}}
SWITCH = {"id": "s", "category": "topic_switch", "history": HIST, "question": "how do i get off the bounce list",
          "expect": {"no_codes": True, "intent": "question"}}
SMALL = {"id": "t", "category": "small_talk", "history": HIST, "question": "thanks!",
         "expect": {"intent": "small_talk", "answered": False, "not_idk": True, "no_codes": True}}


@pytest.mark.parametrize("a, b, same", [
    ("552-5.2.2", "552-5.2.2", True),
    ("5.2.2", "552-5.2.2", True),        # lone enhanced code = the pair with that enhanced part
    ("552-5.2.2", "5.2.2", True),
    ("554-5.2.2", "552-5.2.2", False),   # two pairs must be equal
    ("550", "550-5.1.1", False),         # a bare reply code is not the pair
    ("5.1.1", "5.1.10", False),
    ("550", "550", True),
])
def test_same_code(a, b, same):
    assert same_code(a, b) is same


@pytest.mark.parametrize("expect, intent, result", [
    ({"intent": "follow_up"}, "follow_up", True),
    ({"intent": "follow_up"}, "question", False),
    ({"intent": "follow_up"}, None, False),            # a baseline has no intent
    ({"intent": ["question", "follow_up"]}, "question", True),
    ({}, "draft", None),                               # not judged
])
def test_intent(expect, intent, result):
    assert check_intent(expect, {"intent": intent}) is result


@pytest.mark.parametrize("case, carried, result", [
    (FOLLOW, ["552-5.2.2"], True),
    (FOLLOW, ["5.2.2"], True),                         # the same code, as the earlier turn wrote it
    (FOLLOW, [], False),                               # history dropped
    (FOLLOW, ["552-5.2.2", "550-5.1.1"], False),       # carried one too many
    (SWITCH, [], True),
    (SWITCH, ["552-5.2.2"], False),                    # an old code carried into a new topic
    (FOLLOW | {"history": []}, [], None),              # no history: not judged
    (REFUSE, [], None),                                # no code expectation: not judged
])
def test_carried_codes(case, carried, result):
    assert check_carried(case, {"carried": carried}) is result


DRAFT = {"draft": {"codes": ["552-5.2.2"], "channel": "message"}}


@pytest.mark.parametrize("pred_, result", [
    ({"intent": "draft", "draft": {"text": "Hi Ana, your mailbox is full", "channel": "message", "codes": ["552-5.2.2"]}}, True),
    ({"intent": "draft", "draft": {"text": "Hi", "channel": "message", "codes": ["5.2.2"]}}, True),
    ({"intent": "draft", "draft": {"text": "Hi", "channel": "email", "codes": ["552-5.2.2"]}}, False),     # channel
    ({"intent": "draft", "draft": {"text": "Hi", "channel": "message", "codes": ["550-5.1.1"]}}, False),  # other code
    ({"intent": "draft", "draft": {"text": "  ", "channel": "message", "codes": ["552-5.2.2"]}}, False),  # empty
    ({"intent": "question", "draft": {"text": "Hi", "channel": "message", "codes": ["552-5.2.2"]}}, False),
    ({"intent": "draft", "draft": None}, False),
    ({"intent": None, "draft": None}, False),
])
def test_draft(pred_, result):
    assert check_draft(DRAFT, pred_) is result
    assert check_draft({}, pred_) is None


HANDOFF = {"handoff": {"fields": {"customer email": "maria@example.com", "error code": "554 5.4.4",
                                  "conversation link": None}}}
FIELDS = [{"name": "The conversation link", "value": None},
          {"name": "The customer email address", "value": "Maria@Example.com"},
          {"name": "The error code or failure message", "value": "554-5.4.4"},
          {"name": "The time the message was sent", "value": None}]


@pytest.mark.parametrize("pred_, counts", [
    ({"intent": "handoff", "handoff": {"fields": FIELDS}}, (3, 3)),
    ({"intent": "handoff", "handoff": {"fields": FIELDS[1:]}}, (2, 3)),                       # a field missing
    ({"intent": "handoff", "handoff": {"fields": [FIELDS[0] | {"value": "https://x/1"}] + FIELDS[1:]}}, (2, 3)),  # invented
    ({"intent": "handoff", "handoff": {"fields": [FIELDS[0], FIELDS[1] | {"value": "m@example.com"}, FIELDS[2]]}}, (2, 3)),
    ({"intent": "question", "handoff": {"fields": FIELDS}}, (0, 3)),                          # not a hand-off
    ({"intent": "handoff", "handoff": None}, (1, 3)),                                         # only the null holds
])
def test_handoff_fields(pred_, counts):
    found, total = handoff_fields(HANDOFF, pred_)
    # an absent field cannot be the expected null either
    expected = counts if pred_.get("handoff") else (0, 3)
    assert (found, total) == expected
    assert handoff_fields({}, pred_) is None


@pytest.mark.parametrize("answer, idk, n", [
    ("I don't know: the help article does not answer this", True, 10),
    ("I don\u2019t know.", True, 3),
    ("You're welcome! Ask me about a bounce.", False, 7),
    ("", False, 0),
    ("**550-5.1.1**\n\n- The email address | --- |", False, 4),  # Markdown marks are not words
])
def test_idk_and_words(answer, idk, n):
    assert says_idk(answer) is idk and words(answer) == n


@pytest.mark.parametrize("values, q, result", [
    ([], 0.5, None), ([7], 0.95, 7), ([1, 2, 3, 4], 0.5, 3), (list(range(1, 21)), 0.95, 20), ([5, 1, 3], 0.5, 3),
])
def test_percentile(values, q, result):
    assert percentile(values, q) == result


def test_small_talk_outcome_and_summary():
    ok = check_case(SMALL, pred(answer="You're welcome!", answered=False, intent="small_talk"), ROWS)
    idk = check_case(SMALL, pred(answer="I don't know: ...", answered=False, intent="question"), ROWS)
    assert (ok["intent"], ok["not_idk"], ok["carried"]) == (True, True, True) and failed(ok) == []
    assert idk["not_idk"] is False and "said I don't know to small talk" in failed(idk) and "wrong intent" in failed(idk)
    m = summarise([ok, idk], [0.01, 0.01])
    assert (m["intent_correct"], m["small_talk_not_idk"], m["answer_words_p50"]) == (0.5, 0.5, 3)  # nearest rank of [2, 3]
    assert m["draft_correct"] is None and m["handoff_field_recall"] is None


def test_carried_exact_rows_are_not_false_claims_but_invented_ones_are():
    rows = {"552-5.2.2": ("Full.", "Wait."), "550-5.1.1": ("Gone.", "Fix.")}
    carried = pred(answer="Full. Wait.", claimed=["552-5.2.2"], carried=["552-5.2.2"],
                   carried_claims=[("552-5.2.2", "552-5.2.2")], codes=[("552-5.2.2", "exact")])
    out = check_case(SMALL, carried, rows)
    assert out["false_claims"] == [] and out["carried"] is False and "carried codes differ" in failed(out)
    invented = pred(claimed=["550-5.1.1"], carried=["550-5.1.1"], carried_claims=[("550-5.1.1", "550-5.1.1")])
    assert check_case(SMALL, invented, rows)["false_claims"] == ["550-5.1.1"]  # not in the history
    wrong_row = {"carried_claims": [("554-5.2.2", "552-5.2.2")]}
    assert carried_rows_excused(SMALL | {"history": [{"role": "user", "content": "554 5.2.2"}]}, wrong_row) == set()
    good = check_case(FOLLOW, carried | {"intent": "follow_up"}, rows)
    assert (good["code_exact"], good["codes_correct"], good["carried"], good["intent"]) == (True, True, True, True)


def test_per_group_summaries():
    outs = [check_case(SMALL, pred(answered=False, intent="small_talk", answer="hi"), ROWS),
            check_case(REFUSE, pred(answered=False), ROWS), check_case(REFUSE, pred(answered=True), ROWS)]
    g = summarise_groups(outs, [0.01] * 3, ["small_talk", "unanswerable", "unanswerable"])
    assert list(g) == ["small_talk", "unanswerable"]
    assert g["small_talk"]["cases"] == 1 and g["unanswerable"]["refusal_recall"] == 0.5


def _result(outcomes_by_id: dict, fec: int = 0):
    cases = [{"id": i, "outcome": o, "seconds": 0.01} for i, o in outcomes_by_id.items()]
    metrics = summarise([c["outcome"] for c in cases], [0.01] * len(cases))
    metrics["false_exact_claims"] = fec
    return {"metrics": metrics, "cases": cases, "by_category": {}}


def test_gate_holds_whatever_the_baseline_has():
    assert "intent_correct" in gated_keys({"intent_correct": 1.0, "latency_p50_ms": 3.0, "cases": 9,
                                           "answer_words_p95": 80, "false_exact_claims": 0})
    assert gated_keys({"latency_p50_ms": 3.0, "answer_words_p50": 12, "fact_recall": None}) == []
    good = check_case(SMALL, pred(answered=False, intent="small_talk", answer="hi"), ROWS)
    bad = check_case(SMALL, pred(answered=False, intent="question", answer="I don't know"), ROWS)
    old_base = {"metrics": {"refusal_recall": 1.0, "false_exact_claims": 0}, "cases": [{"id": "a"}]}
    # a baseline without the conversation metrics: they are reported, not failed;
    # a case the baseline lacks is not held either
    problems, notes = gate(_result({"a": good, "b": bad}), old_base)
    assert problems == []
    assert any(n.startswith("intent_correct") for n in notes) and any("1 cases not in the baseline" in n for n in notes)
    # once saved with them, they are held
    new_base = {"metrics": summarise([good, good], [0.01, 0.01]), "cases": [{"id": "a"}, {"id": "b"}]}
    problems, _ = gate(_result({"a": good, "b": bad}), new_base)
    assert any(p.startswith("intent_correct") for p in problems) and any(p.startswith("small_talk_not_idk") for p in problems)
    assert unheld(new_base["metrics"], new_base["metrics"]) == []
    # a false exact claim fails, whatever the baseline
    problems, _ = gate(_result({"a": good}, fec=1), old_base)
    assert any("false exact claims" in p for p in problems)


def test_conversation_cases_are_well_formed():
    from evals.run import dataset_files

    for split in ("dev", "test"):
        assert any(p.name == f"{split}_conversations.jsonl" for p in dataset_files(split))
        cases = [c for c in load_cases([split]) if c["category"] in CONVERSATION_CATEGORIES]
        assert len(cases) >= 60, split
        for c in cases:
            exp = c["expect"]
            assert c["id"].startswith(f"{split}-"), c["id"]
            carried = [x for x in exp.get("codes", []) if x.get("from_history")]
            if c["category"] == "follow_up_code":
                assert c.get("history") and carried and exp.get("intent") == "follow_up", c["id"]
            if carried:
                text = " ".join(t["content"] for t in c["history"] if t["role"] == "user")
                assert all(part in text for x in carried for part in x["code"].split("-")), c["id"]
            if c["category"] == "topic_switch":
                assert c.get("history") and not carried, c["id"]
            if exp.get("intent") == "small_talk":
                assert exp.get("answered") is False and exp.get("not_idk") is True, c["id"]
            if c["category"] == "draft":
                assert exp.get("intent") == "draft" and exp.get("draft", {}).get("codes"), c["id"]
            if c["category"] == "handoff":
                assert exp.get("intent") == "handoff" and exp.get("handoff", {}).get("fields"), c["id"]
        for cat in CONVERSATION_CATEGORIES:
            assert any(c["category"] == cat for c in cases), (split, cat)
        assert any(c.get("history") for c in cases if c["category"] in ("typo", "multilingual"))
        assert any(not c.get("history") for c in cases if c["category"] in ("typo", "multilingual"))


CONVERSATION_CATEGORIES = ("follow_up_code", "follow_up_topic", "topic_switch", "small_talk", "draft", "handoff",
                           "typo", "multilingual")


def test_history_must_be_turns(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"id": "x", "category": "c", "question": "q", "expect": {},
                             "history": [{"role": "bot", "content": "hi"}]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="history"):
        load_cases([str(p)])
