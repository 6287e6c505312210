"""The answer path against its floor (issue 14, item 8), for ``make bench``
and ``python -m evals.bench --answer-only``.

In-process, warm: a free-form answer beside the textbook LangChain
pipeline's retrieval alone (the baseline, same model, one thread), for each
mode (the index's precision / the query's: ``fp32/mixed`` is the default,
``fp32/fp32``, ``fp32/int8``, ``int8/int8``): a question asked again (its vector
cached) and a new one (in no cache: embedded for the search, and the focusing
step's vector taken from the query cache when it was searched as typed). The
calls are interleaved, question by question,
so a neighbour's load on the shared cores falls on all of them alike.
``--modes fp32/mixed,fp32/fp32`` picks the modes.

Whole processes: ``bouncebot lookup``, ``bouncebot ask`` (one-shot) and
``bouncebot serve`` to its first answered ``/api/ask``, the median of N runs
each, with the load average printed beside them.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from evals.bench import CODE_QUESTIONS, FREE_FORM, ROOT, process_times, row, start_serve

ASK = "How do I get an address off the bounce list?"


def load_average() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def _timed(fn, arg) -> float:
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


def forget(services, question: str) -> None:
    """Make ``question`` new to the answerer: out of the query-vector cache and out of the answer's
    sentence-vector cache (which holds the question beside the article's sentences it focuses)."""
    services.embedder.cache.clear()
    services.answerer.__dict__.get("_vector_cache", {}).pop(question, None)


MODES = ("fp32/mixed", "fp32/fp32", "fp32/int8", "int8/int8")  # index precision / query precision; the default first


def mode_settings(settings, tmp: Path, mode: str):
    """``settings`` for a mode: its index in ``tmp`` (one per index precision), queries at the query precision."""
    docs, query = mode.split("/")
    return settings.with_(index_dir=tmp / f"index-{docs}", collection=f"bench-{docs}",
                          embed_precision=docs, query_precision=query)


def in_process(tmp: Path, repeat: int, precisions: tuple[str, ...]) -> dict:
    """Seconds per call, by what was timed, interleaved question by question (``precisions``: modes)."""
    from app.answering.services import build
    from app.config import Settings
    from evals.baselines import TextbookPipeline

    services = {}
    for prec in precisions:
        services[prec] = build(mode_settings(Settings.from_env(), tmp, prec), ingest_first=True)
    textbook = TextbookPipeline(Settings.from_env().kb_dir)
    import torch

    torch.set_num_threads(1)  # the same single thread our ONNX model runs on: a like-for-like comparison
    for q in FREE_FORM + CODE_QUESTIONS:  # warm everything
        textbook.retrieve(q)
        for s in services.values():
            s.answerer.ask(q)
    samples: dict[str, list[float]] = {"textbook": []}
    for _ in range(repeat):
        for q in FREE_FORM:
            samples["textbook"].append(_timed(textbook.retrieve, q))
            for prec, s in services.items():
                emb = s.embedder
                emb.cache.clear()
                samples.setdefault(f"{prec} embed_query", []).append(_timed(emb.embed_query, q))
                forget(s, q)
                samples.setdefault(f"{prec} free cold", []).append(_timed(s.answerer.ask, q))
                samples.setdefault(f"{prec} free warm", []).append(_timed(s.answerer.ask, q))
        for q in CODE_QUESTIONS:
            for prec, s in services.items():
                samples.setdefault(f"{prec} code", []).append(_timed(s.answerer.ask, q))
    samples["hits"] = {prec: (s.embedder.cache.hits, s.embedder.cache.misses) for prec, s in services.items()}
    return samples


def whole_processes(env: dict, runs: int) -> dict:
    bouncebot = str(Path(sys.executable).parent / "bouncebot")
    out = {"python": process_times([sys.executable, "-c", "pass"], runs),
           "lookup": process_times([bouncebot, "lookup", "550-5.1.1"], runs)}
    out["ask"] = _times_with_env([bouncebot, "ask", ASK], env, runs)
    first = []
    for _ in range(runs):
        proc, _, seconds = start_serve(env)
        proc.terminate()
        proc.wait(timeout=20)
        first.append(seconds)
    out["serve"] = first
    return out


def _times_with_env(argv, env, runs) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT, env=env)
        out.append(time.perf_counter() - t)
    return out


def answer_figures(repeat: int = 20, runs: int = 5, precisions: tuple[str, ...] = MODES) -> None:
    import tempfile

    from app.config import Settings
    from app.search.embeddings import query_precision

    settings = Settings.from_env()
    default = f"{settings.embed_precision}/{query_precision(settings)}"
    print(f"\nThe answer path (issue 14 item 8), {load_average()} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        s = in_process(tmp, repeat, precisions)
        print(f"  In-process, warm, {len(FREE_FORM)} free-form questions x {repeat}, interleaved "
              f"(modes: index/query precision; default {default}; 'new': the question in no cache, as if never asked)")
        tb = row("textbook LangChain retrieval alone (baseline)", s["textbook"], statistics.median(s["textbook"]))
        for prec in precisions:
            row(f"{prec}: embed_query alone, no cache", s[f"{prec} embed_query"], tb)
            row(f"{prec}: bouncebot answer, free-form, new question", s[f"{prec} free cold"], tb, "<= 0.40x")
            row(f"{prec}: bouncebot answer, free-form, asked again", s[f"{prec} free warm"], tb, "<= 0.40x")
            row(f"{prec}: bouncebot answer, code question", s[f"{prec} code"], tb)
            hits, misses = s["hits"][prec]
            print(f"    {prec} query-vector cache: {hits} hits, {misses} misses")
        sys.stdout.flush()
        if runs < 1:
            return
        if default not in precisions:  # the whole processes run the default mode: its index must be there
            build_default = mode_settings(settings, tmp, default)
            from app.answering.services import build

            build(build_default, ingest_first=True)
        docs = default.split("/")[0]
        env = {**os.environ, "BOUNCEBOT_INDEX_DIR": str(tmp / f"index-{docs}"),
               "BOUNCEBOT_COLLECTION": f"bench-{docs}", "BOUNCEBOT_FEEDBACK_DB": str(tmp / "feedback.sqlite3")}
        procs = whole_processes(env, runs)
    print(f"  Whole process, median of {runs} runs each ({load_average()} at the end)")
    py = row("python -c pass (baseline)", procs["python"], statistics.median(procs["python"]))
    row("bouncebot lookup 550-5.1.1", procs["lookup"], py, "< 0.12 s")
    row(f"bouncebot ask '{ASK[:24]}...' (one-shot)", procs["ask"], py, "< 1.0 s")
    row("bouncebot serve: start to first answered /api/ask", procs["serve"], py, "< 5 s")


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20, help="rounds of the free-form questions (default 20)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each whole process (default 5; 0: none)")
    ap.add_argument("--modes", default=",".join(MODES), help="index/query precisions, comma-separated")
    args = ap.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    for m in modes:
        if m.count("/") != 1:
            ap.error(f"{m!r}: a mode is INDEX/QUERY precision, e.g. fp32/mixed")
    answer_figures(args.repeat, args.runs, modes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
