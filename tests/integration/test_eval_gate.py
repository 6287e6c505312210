"""CI gate: the project's pipeline on the eval's test split may not fall
below the committed baseline (evals/results/baseline.json) beyond the
tolerance, and may never make a false exact claim."""

from __future__ import annotations

import json

import pytest

from evals.run import BASELINE, TARGETS, build_pipelines, evaluate, load_cases, regressions, table_rows

pytestmark = pytest.mark.slow


def test_test_split_holds_the_committed_baseline(services, capsys):
    cases = load_cases(["test"])
    result = evaluate(build_pipelines(["bouncebot"], services), cases, table_rows(services))["bouncebot"]
    metrics = result["metrics"]
    baseline = json.loads(BASELINE.read_text(encoding="utf-8"))["pipelines"]["bouncebot"]["metrics"]
    with capsys.disabled():
        print(f"\neval test split ({len(cases)} cases), bouncebot vs committed baseline:")
        for key, value in metrics.items():
            target = TARGETS.get(key)
            print(f"  {key:<20} {value!s:>8}   baseline {baseline.get(key)!s:>8}"
                  + (f"   target {target}" if target is not None else ""))
    failures = [f"{c['id']}: {'; '.join(c['failed'])}" for c in result["cases"] if c["failed"]]
    assert regressions(metrics, baseline) == [], "\n".join(failures)
