"""CI gate: the project's pipeline on the eval's test split (single-turn and
conversation cases) may not fall below the committed baseline
(evals/results/baseline.json) beyond the tolerance, and may never make a false
exact claim.

What is held is whatever the baseline has: every accuracy metric in it (the
conversation figures too, once a baseline with them is saved), on the cases it
was measured on. A metric or a case the baseline lacks is printed, not failed,
until the baseline is saved again (``bouncebot eval --dataset test --save-baseline``)."""

from __future__ import annotations

import json

import pytest

from evals.run import BASELINE, TARGETS, build_pipelines, evaluate, gate, held_metrics, load_cases, table_rows

pytestmark = pytest.mark.slow


def test_test_split_holds_the_committed_baseline(services, capsys):
    cases = load_cases(["test"])
    result = evaluate(build_pipelines(["bouncebot"], services), cases, table_rows(services))["bouncebot"]
    metrics = result["metrics"]
    base_run = json.loads(BASELINE.read_text(encoding="utf-8"))["pipelines"]["bouncebot"]
    baseline = base_run["metrics"]
    problems, notes = gate(result, base_run)
    held = held_metrics(result, base_run)
    with capsys.disabled():
        print(f"\neval test split ({len(cases)} cases), bouncebot vs committed baseline "
              f"(held: on the {held['cases']} cases the baseline was measured on):")
        print(f"  {'metric':<22} {'all':>8} {'held':>8} {'baseline':>9}")
        for key, value in metrics.items():
            target = TARGETS.get(key)
            print(f"  {key:<22} {value!s:>8} {held.get(key)!s:>8} {baseline.get(key)!s:>9}"
                  + (f"   target {target}" if target is not None else ""))
        for n in notes:
            print(f"  note: {n}")
    failures = [f"{c['id']}: {'; '.join(c['failed'])}" for c in result["cases"] if c["failed"]]
    assert problems == [], "\n".join(problems + failures)
