"""The language-model mode on dev questions: ``python -m app.answering.llm.measure [--n 30] [--threads 2]``.

``--batch-threads N`` sets prompt processing's threads apart from generation's; ``--ids a,b``
answers only those dev cases; ``--progress FILE`` appends each case as it is done (JSON lines),
so a long run under load can be read before it ends. The load average is printed with the figures.

Dev split only (``evals/datasets/dev.jsonl`` and ``dev_conversations.jsonl``): an evenly spread
sample of single-turn questions and conversation cases, answered in ``llm`` mode with the local
model. Prints how often the guard intervened and why, the fallback rate, time to first token and
total p50/p95, and false exact claims (a shown text naming a code that is not an exact match:
must be 0). ``--calibrate`` also prints, for each sentence the model wrote, its support scores
against its own cited passages and against another question's (the stand-in for an unsupported
sentence): what ``guard.MIN_COSINE`` and ``guard.MIN_OVERLAP`` were chosen from.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[3] / "evals" / "datasets"
COSINES = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
OVERLAPS = (0.5, 0.6, 0.75, 0.9, 1.01)


def sample(n: int) -> list[dict]:
    """``n`` dev cases: single-turn and conversation cases in proportion, evenly spread through each file."""
    single = [json.loads(line) for line in (DATASETS / "dev.jsonl").open(encoding="utf-8") if line.strip()]
    convo = [json.loads(line) for line in (DATASETS / "dev_conversations.jsonl").open(encoding="utf-8") if line.strip()]
    k = round(n * len(convo) / (len(single) + len(convo)))
    pick = lambda cases, m: [cases[i * len(cases) // m] for i in range(m)] if m else []  # noqa: E731
    return pick(single, n - k) + pick(convo, k)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]


def false_exact_claims(answer) -> int:
    """Codes the shown model text names that the answer does not hold as exact (must be 0)."""
    from app.answering.llm.guard import code_allowed
    from app.answering.llm.prompt import exact_codes
    from app.codes.find import find_codes

    if not (answer.llm and answer.llm.used and answer.llm.generated):
        return 0
    return sum(not code_allowed(f, exact_codes(answer)) for f in find_codes(answer.llm.generated))


def run(n: int, threads: int, timeout: float, batch_threads: int | None = None, progress=None,
        ids: list[str] | None = None) -> dict:
    """The sample (or the dev cases ``ids``) answered in llm mode; ``progress(case)`` as each is done."""
    from app.answering.llm.prompt import task_for
    from app.answering.services import build
    from app.config import Settings

    settings = Settings.from_env()
    settings = settings.with_(llm=settings.llm.with_(mode=settings.llm.mode if settings.llm.enabled else "local",
                                                     threads=threads, timeout=timeout))
    start = time.monotonic()
    chat_model = None
    if settings.llm.mode == "local":
        from app.llm.door import make_chat_model, warm
        from app.llm.prefix import prefix_messages

        options = {"batch_threads": batch_threads} if batch_threads else {}
        chat_model = make_chat_model(settings.llm, **options)
        warm(chat_model, prefix_messages(settings.kb_dir))
        batch_threads = chat_model.batch_threads
    services = build(settings, chat_model=chat_model)
    answerer = services.answerer
    started = time.monotonic() - start
    cases, tasks = [], []
    chosen = [c for f in ("dev.jsonl", "dev_conversations.jsonl") for c in map(json.loads, (DATASETS / f).open())
              if c["id"] in set(ids)] if ids else sample(n)
    for case in chosen:
        history = case.get("history") or []
        t = time.monotonic()
        answer = answerer.ask(case["question"], history)
        default = answerer.inner.ask(case["question"], history)
        task = task_for(default, answerer.inner.bounded(history))
        tasks.append(task)
        cases.append({"id": case["id"], "question": case["question"], "seconds": time.monotonic() - t,
                      "kind": task.kind if task else None, "answered_default": default.answered,
                      "answered": answer.answered, "mode": answer.mode, "false_exact": false_exact_claims(answer),
                      "codes_same": answer.codes == default.codes, **answer.llm.model_dump()})
        if progress:
            progress(cases[-1])
    from app.answering.llm.guard import content_words, sentences

    guard, scores = answerer.guard, []
    leads = [i for i, t in enumerate(tasks) if t is not None and t.kind == "lead"]
    for i, (c, task) in enumerate(zip(cases, tasks)):
        if task is None or not c["generated"] or c["fallback"] in ("refused", "timeout", "server_error"):
            continue
        other = next((tasks[j] for j in leads[leads.index(i) + 1:] + leads if j != i), None) if i in leads else (
            tasks[leads[0]] if leads else None)
        claims = [s for s in sentences(c["generated"]) if len(content_words(s)) >= guard.min_words]
        own = guard.support(claims, [s for r in task.reference for s in sentences(r)])
        foreign = guard.support(claims, [s for r in other.reference for s in sentences(r)]) if other else []
        scores.append({"id": c["id"], "own": own, "foreign": foreign})
    return {"started_s": started, "threads": threads, "batch_threads": batch_threads, "load": os.getloadavg(),
            "cases": cases, "scores": scores}


def summary(r: dict) -> str:
    cases = r["cases"]
    asked = [c for c in cases if c["kind"]]
    fallbacks = collections.Counter(c["fallback"] for c in asked if c["fallback"])
    interventions = collections.Counter(i.split(":")[0] for c in asked for i in c["interventions"])
    ttft = [c["ttft_s"] for c in asked if c["ttft_s"] is not None]
    total = [c["total_s"] for c in asked if c["total_s"] is not None]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"{len(cases)} dev cases ({r['threads']} threads, {r.get('batch_threads')} for prompts; load average "
             f"{' '.join(f'{x:.2f}' for x in r.get('load', ()))}; start-up {r['started_s']:.1f} s): model asked for "
             f"{len(asked)} ({collections.Counter(c['kind'] for c in asked)}), kept {sum(c['used'] for c in asked)}, "
             f"fell back {sum(fallbacks.values())} ({dict(fallbacks)})",
             f"  fallback rate {sum(fallbacks.values()) / max(1, len(asked)):.0%} of the model's answers; "
             f"guard interventions {dict(interventions)} in {sum(bool(c['interventions']) for c in asked)} answers",
             f"  time to first token p50 {fmt(percentile(ttft, 50))} s, p95 {fmt(percentile(ttft, 95))} s; "
             f"model's text p50 {fmt(percentile(total, 50))} s, p95 {fmt(percentile(total, 95))} s",
             f"  false exact claims {sum(c['false_exact'] for c in cases)}; codes changed "
             f"{sum(not c['codes_same'] for c in cases)}; answered changed "
             f"{sum(c['answered'] != c['answered_default'] for c in cases)}"]
    for c in asked:
        lines.append(f"  {c['id']:<16} {c['kind']:<10} {c['fallback'] or 'kept':<20} {fmt(c['ttft_s']):>5} "
                     f"{fmt(c['total_s']):>5}  {' '.join((c['generated'] or '').split())[:110]}")
        lines += [f"      {i[:100]}" for i in c["interventions"] if i.startswith("unsupported")]
    return "\n".join(lines)


def calibration(r: dict) -> str:
    own = [(cos, ovl) for s in r["scores"] for _, cos, ovl in s["own"]]
    foreign = [(cos, ovl) for s in r["scores"] for _, cos, ovl in s["foreign"]]
    lines = [f"calibration: {len(own)} generated sentences vs their own passages, {len(foreign)} vs another's",
             "  min_cosine min_overlap   own kept   foreign passed"]
    for t in COSINES:
        for o in OVERLAPS:
            keep = lambda pairs: sum(c >= t or v >= o for c, v in pairs) / max(1, len(pairs))  # noqa: E731
            lines.append(f"  {t:>10} {o:>11}   {keep(own):>8.0%}   {keep(foreign):>14.0%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.answering.llm.measure", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-threads", type=int, help="prompt processing's threads (default: the door's)")
    parser.add_argument("--timeout", type=float, default=30.0, help="BOUNCEBOT_LLM_TIMEOUT for the run")
    parser.add_argument("--calibrate", action="store_true", help="print the guard's support scores' sweep")
    parser.add_argument("--json", type=Path, help="also write every case's figures here")
    parser.add_argument("--ids", help="only these dev cases (comma-separated ids), instead of --n")
    parser.add_argument("--progress", type=Path, help="append each case's figures here (JSON lines) as it is done")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any library starts OpenMP
    def progress(case: dict) -> None:
        with args.progress.open("a", encoding="utf-8") as out:
            out.write(json.dumps(case) + "\n")

    result = run(args.n, args.threads, args.timeout, args.batch_threads, progress if args.progress else None,
                 args.ids.split(",") if args.ids else None)
    print(summary(result))
    if args.calibrate:
        print(calibration(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
