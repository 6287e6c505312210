"""``bouncebot eval``: run the eval cases through the project's pipeline and
the baselines, in the same run, and write a report.

    bouncebot eval [--dataset test|dev|PATH ...] [--pipeline bouncebot,bm25,dense,textbook]
                   [--out DIR] [--save-baseline] [--check]

The KB is ingested into a temporary index first, so a run never depends on
(or changes) the user's index.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .metrics import check_case, failed, summarise

HERE = Path(__file__).resolve().parent
DATASETS = HERE / "datasets"
RESULTS = HERE / "results"
BASELINE = RESULTS / "baseline.json"
PIPELINES = ("bouncebot", "bm25", "dense", "textbook")

# How far a metric may fall below the committed baseline before the gate fails.
TOLERANCE = 0.02
GATED = ("code_exact_match", "codes_found_correctly", "recall@1", "recall@3", "mrr", "fact_recall", "citation_correct",
         "refusal_precision", "refusal_recall")
# The targets for the project's pipeline on the test split.
TARGETS = {"code_exact_match": 1.0, "false_exact_claims": 0, "refusal_precision": 0.95, "refusal_recall": 0.95,
           "fact_recall": 0.90, "recall@3": 0.95}


def load_cases(names: list[str]) -> list[dict]:
    cases = []
    for name in names:
        path = DATASETS / f"{name}.jsonl" if name in ("dev", "test") else Path(name)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    case = json.loads(line)
                    if not {"id", "category", "question", "expect"} <= case.keys():
                        raise ValueError(f"{path}:{lineno}: a case needs id, category, question and expect")
                    cases.append(case)
    return cases


def table_rows(services) -> dict[str, tuple[str, str]]:
    return {r.code: (r.meaning, r.action) for r in services.table.rows}


def build_pipelines(names, services) -> list:
    from app.search.retrieval import HybridRetriever

    from .pipelines import BouncebotPipeline, RetrieverOnlyPipeline, TextbookAdapter

    rows = table_rows(services)
    retriever, embedder = services.answerer.retriever, services.embedder
    made = []
    for name in names:
        if name == "bouncebot":
            made.append(BouncebotPipeline(services.answerer))
        elif name == "bm25":
            made.append(RetrieverOnlyPipeline("bm25", HybridRetriever(retriever.collection, embedder, 0.0), rows))
        elif name == "dense":
            made.append(RetrieverOnlyPipeline("dense", HybridRetriever(retriever.collection, embedder, 1.0), rows))
        elif name == "textbook":
            made.append(TextbookAdapter(services.settings.kb_dir, rows))
        else:
            raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(PIPELINES)}")
    return made


def evaluate(pipelines, cases, rows) -> dict:
    results = {}
    for p in pipelines:
        for case in cases[:3]:  # warm up (model, caches) outside the measurement
            p.predict(case["question"])
        per_case, outcomes, seconds = [], [], []
        for case in cases:
            pred = p.predict(case["question"])
            outcome = check_case(case, pred, rows)
            outcomes.append(outcome)
            seconds.append(pred["seconds"])
            per_case.append({
                "id": case["id"], "category": case["category"], "question": case["question"],
                "expect": case["expect"], "failed": failed(outcome),
                "got": {k: pred[k] for k in ("answered", "codes", "claimed", "cited", "ranked", "sources")}
                | {"answer": pred["answer"][:600]},
            })
        results[p.name] = {"metrics": summarise(outcomes, seconds), "cases": per_case}
    return results


def build_services(tmp: Path):
    from app.config import Settings
    from app.answering.services import build

    settings = Settings.from_env().with_(index_dir=tmp / "index", collection="eval")
    return build(settings, ingest_first=True)


def regressions(metrics: dict, baseline: dict) -> list[str]:
    """What falls below the committed baseline beyond the tolerance, or any false exact claim."""
    problems = []
    if metrics["false_exact_claims"]:
        problems.append(f"false exact claims: {metrics['false_exact_claims']} (must be 0)")
    for key in GATED:
        base, now = baseline.get(key), metrics.get(key)
        if base is not None and (now is None or now < base - TOLERANCE):
            problems.append(f"{key}: {now} is below the baseline {base} - {TOLERANCE}")
    return problems


def main(argv: list[str] | None = None) -> int:
    from .report import write_report

    ap = argparse.ArgumentParser(prog="bouncebot eval", description="Measure answer accuracy against baselines.")
    ap.add_argument("--dataset", nargs="+", default=["test"], help="dev, test or a JSONL path (default: test)")
    ap.add_argument("--pipeline", default=",".join(PIPELINES), help="comma-separated: " + ", ".join(PIPELINES))
    ap.add_argument("--out", type=Path, default=RESULTS / "latest", help="report folder")
    ap.add_argument("--save-baseline", action="store_true", help="also write evals/results/baseline.*")
    ap.add_argument("--check", action="store_true", help="exit 1 when bouncebot regresses against the baseline")
    args = ap.parse_args(argv)

    cases = load_cases(args.dataset)
    names = [n.strip() for n in args.pipeline.split(",") if n.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Path(tmp))
        results = evaluate(build_pipelines(names, services), cases, table_rows(services))
    run = {"datasets": args.dataset, "cases": len(cases), "tolerance": TOLERANCE, "targets": TARGETS,
           "pipelines": results}
    paths = write_report(run, args.out)
    print(paths["markdown"].read_text(encoding="utf-8").split("\n## Failures")[0])
    print(f"Report: {paths['markdown']}  JSON: {paths['json']}  chart: {paths['chart']}")
    if args.save_baseline:
        write_report(run, RESULTS, stem="baseline")
        print(f"Baseline saved to {BASELINE}")
    if args.check and "bouncebot" in results:
        baseline = json.loads(BASELINE.read_text(encoding="utf-8"))["pipelines"]["bouncebot"]["metrics"]
        problems = regressions(results["bouncebot"]["metrics"], baseline)
        for p in problems:
            print(f"REGRESSION {p}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
