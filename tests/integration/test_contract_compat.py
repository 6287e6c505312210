"""The answer contract stays what clients already read.

``recorded/*.json`` are answers and look-ups recorded from the code as it was
before the contract became types (commit 074834e: ``Answer`` a dataclass of
dicts, the Markdown written inside the answerer), one per kind of answer. Each
new output must equal its recording on every field the recording has, the
Markdown ``answer`` included, character for character; fields the recording
lacks (``kind``, ``limits``, ``notices``, ...) may be added, nothing recorded
may change, go missing or change type.

A recording is never re-made to make this pass: a recorded field that must
change is a change of the contract, for its clients to hear about first.

One such change is announced (issue 12): the Markdown ``answer`` of a pasted
message now starts with what the message is when it is not a failure and with
its recipients under Bouncebot's reading (``render_bounce.lead``, written from
the answer's own ``message_kind`` and ``recipients[].verdict``). That block
alone is taken off the front before comparing (``without_lead``); the recorded
Markdown after it must still be there character for character, and a recorded
bounce must still read as a failure.

A second is announced (issue 14, README "Contract changes"): questions are
embedded by the ``mixed`` query model file (int8 but for four MatMuls) against
the fp32 index, so a passage's similarity ``sources[].score`` may differ from its
recording by at most ``SCORE_MOVE`` (0.005 measured); the order of the sources,
what they are and every other field stay as recorded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

RECORDED = Path(__file__).parent / "recorded"
# Every kind of answer the contract has; a recording that goes missing fails the suite.
KINDS = {
    "exact_code", "exact_via_row", "exact_and_untabled", "untabled_code", "untabled_no_related",
    "untabled_no_general", "free_form", "free_form_row", "refusal", "refusal_other_article", "bounce_dsn",
    "bounce_two_recipients", "search_down", "capped", "lookup_codes", "lookup_bounce",
}


SCORE_MOVE = 0.01  # the announced bound on a source's score moving (mixed-precision queries)
_SCORE = re.compile(r"^\.sources\[\d+\]\.score$")


def differences(recorded, new, path: str = "") -> list[str]:
    """Where ``new`` departs from ``recorded``: a recorded key missing, a list of
    another length, a value or a type (``1`` is not ``1.0``, ``0`` not ``False``)
    changed. Keys only ``new`` has are additions, not differences. A source's
    ``score`` (``.sources[i].score``) may move by ``SCORE_MOVE``, a float still."""
    where = path or "."
    if _SCORE.match(path) and type(recorded) is float and type(new) is float:
        return [] if abs(recorded - new) <= SCORE_MOVE else [f"{where}: recorded {recorded!r}, now {new!r}"]
    if isinstance(recorded, dict):
        if not isinstance(new, dict):
            return [f"{where}: recorded an object, now {type(new).__name__}"]
        out = []
        for key, value in recorded.items():
            if key not in new:
                out.append(f"{path}.{key}: missing")
            else:
                out += differences(value, new[key], f"{path}.{key}")
        return out
    if isinstance(recorded, list):
        if not isinstance(new, list):
            return [f"{where}: recorded a list, now {type(new).__name__}"]
        if len(recorded) != len(new):
            return [f"{where}: {len(recorded)} items recorded, {len(new)} now"]
        return [d for i, (a, b) in enumerate(zip(recorded, new)) for d in differences(a, b, f"{path}[{i}]")]
    if type(recorded) is not type(new) or recorded != new:
        return [f"{where}: recorded {recorded!r}, now {new!r}"]
    return []


def without_lead(new: dict) -> dict:
    """``new`` without the block a pasted message's Markdown answer starts with (issue 12), rendered from
    ``new``'s own fields; unchanged when it has none (no verdict yet, or not an answer)."""
    from app.answering.contract import Answer
    from app.answering.render_bounce import lead

    if "answer" not in new:
        return new
    parts = lead(new.get("message_kind"), Answer.model_validate(new).recipients)
    if not parts:
        return new
    prefix = "\n\n".join(parts) + "\n\n"
    assert new["answer"].startswith(prefix), "the recipients' block must lead the answer"
    return {**new, "answer": new["answer"][len(prefix):]}


def recordings() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RECORDED.glob("*.json"))}


class _SearchDown:
    """A retriever whose store does not answer (what the guard raises then)."""

    def search(self, *args, **kwargs):
        from app.errors import SearchUnavailable

        raise SearchUnavailable("the vector store did not answer within 2 s")


def produce(services, setup: str, text: str) -> dict:
    """What the current code gives for a recording's ``setup`` and ``text``, as JSON."""
    from app.answering.answerer import Answerer
    from app.answering.services import lookup_contract
    from app.codes.table import CodeTable

    if setup == "lookup":
        result = lookup_contract(services.table, text)
        return json.loads(json.dumps(result if isinstance(result, dict) else result.model_dump(mode="json")))
    support = services.answerer.support
    answerer = {
        "ask": lambda: services.answerer,
        # an untabled code while the store is down: the codes' part stands, the notice says why no passages
        "ask_search_down": lambda: Answerer(services.table, _SearchDown, support=support),
        # 101 recipients, 2 codes, codes capped at 1 (no search needed: the one code looked up is exact)
        "ask_capped": lambda: Answerer(CodeTable(services.table.rows, max_codes=1), _SearchDown, support=support),
    }[setup]()
    return json.loads(json.dumps(answerer.ask(text).to_dict()))  # exactly what goes over the wire


def test_every_kind_of_answer_is_recorded():
    assert set(recordings()) == KINDS


def test_a_changed_missing_or_retyped_field_is_a_difference():
    recorded = {"a": 1, "b": [{"c": "x", "s": 1.0}], "d": None, "e": True}
    assert differences(recorded, {**recorded, "new": [1]}) == []  # an addition is not a difference
    assert differences(recorded, {"a": 1, "b": [{"c": "x", "s": 1.0}], "d": None}) == [".e: missing"]
    assert differences(recorded, {**recorded, "a": 2}) == [".a: recorded 1, now 2"]
    assert differences(recorded, {**recorded, "a": 1.0}) == [".a: recorded 1, now 1.0"]
    assert differences(recorded, {**recorded, "e": 1}) == [".e: recorded True, now 1"]
    assert differences(recorded, {**recorded, "d": {}}) == [".d: recorded None, now {}"]
    assert differences(recorded, {**recorded, "b": []}) == [".b: 1 items recorded, 0 now"]
    assert differences(recorded, {**recorded, "b": [{"c": "y", "s": 1.0}]}) == [".b[0].c: recorded 'x', now 'y'"]
    assert differences(recorded, {**recorded, "b": [{"s": 1.0, "c": "x", "kind": "row"}]}) == []


@pytest.mark.parametrize("recorded, new, differs", [
    (0.5582, 0.5537, False),  # the announced move (mixed-precision queries)
    (0.5582, 0.5582 - 0.009, False),
    (0.5582, 0.5582 + 2 * SCORE_MOVE, True),  # beyond the bound: a change of the contract
    (0.5582, 0.4, True),
    (1.0, 1, True),  # still a float
    (0.5582, None, True),
])
def test_only_a_sources_score_may_move_and_only_by_the_announced_bound(recorded, new, differs):
    got = differences({"sources": [{"score": recorded, "text": "t"}]}, {"sources": [{"score": new, "text": "t"}]})
    assert bool(got) is differs, got
    # the same number anywhere else must stay as recorded
    assert differences({"limits": {"score": 0.5582}}, {"limits": {"score": 0.5537}}) != []
    assert differences({"sources": [{"similarity": 0.5582}]}, {"sources": [{"similarity": 0.5537}]}) != []


def test_only_the_recipients_block_may_lead_a_recorded_answer():
    from app.answering.contract import Recipient
    from app.answering.render_bounce import lead

    verdict = {"reason": "userunknown", "hard": True, "retry": "no", "suppress": True, "evidence": "550 5.1.1 x",
               "basis": "text"}
    rcpt = {"recipient": "a@example.org", "status": "5.1.1", "reply_code": "550", "diagnostic": "d", "decisive": "w",
            "action": "failed", "verdict": verdict}
    block = "\n\n".join(lead("failure", [Recipient.model_validate(rcpt)]))
    new = {"question": "q", "answer": f"{block}\n\nrecorded", "answered": True, "recipients": [rcpt],
           "message_kind": "failure"}
    assert without_lead(new)["answer"] == "recorded"
    plain = {**new, "answer": "recorded", "recipients": [{**rcpt, "verdict": None}]}
    assert without_lead(plain) == plain  # no verdict: nothing leads, nothing is taken off
    with pytest.raises(AssertionError):
        without_lead({**new, "answer": "recorded\n\n" + block})  # elsewhere than in front: a difference


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_contract_is_what_was_recorded(services, name):
    case = recordings()[name]
    new = produce(services, case["setup"], case["text"])
    if any(r["recipient"] for r in case["recorded"].get("recipients", [])):  # a recorded bounce is a failure
        assert new["message_kind"] == "failure", case["what"]
    assert differences(case["recorded"], without_lead(new)) == [], case["what"]
