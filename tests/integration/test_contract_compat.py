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
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RECORDED = Path(__file__).parent / "recorded"
# Every kind of answer the contract has; a recording that goes missing fails the suite.
KINDS = {
    "exact_code", "exact_via_row", "exact_and_untabled", "untabled_code", "untabled_no_related",
    "untabled_no_general", "free_form", "free_form_row", "refusal", "refusal_other_article", "bounce_dsn",
    "bounce_two_recipients", "search_down", "capped", "lookup_codes", "lookup_bounce",
}


def differences(recorded, new, path: str = "") -> list[str]:
    """Where ``new`` departs from ``recorded``: a recorded key missing, a list of
    another length, a value or a type (``1`` is not ``1.0``, ``0`` not ``False``)
    changed. Keys only ``new`` has are additions, not differences."""
    where = path or "."
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


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_contract_is_what_was_recorded(services, name):
    case = recordings()[name]
    new = produce(services, case["setup"], case["text"])
    assert differences(case["recorded"], new) == [], case["what"]
