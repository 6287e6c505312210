"""How long insights take to compute, by log size: figures, never assertions.

    python -m evals.bench_insights [--sizes 300,3000,10000] [--unique 2000]

For each size, a SQLite conversation log is seeded (``evals.insights_seed``) in a temporary folder,
then ``compute`` runs over 30 days: refused questions grouped by shared words, by MiniLM (cold:
every distinct question embedded) and by MiniLM through ``CachedEmbed`` (warm: a second visit of
the page). ``--unique`` adds that many distinct refused questions (the seed repeats a few dozen),
the worst case for grouping (``MAX_POINTS`` caps it at 2,000).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app.insights import Period, compute
from app.insights.grouping import CachedEmbed
from app.storage.conversations import LogEntry, SqliteConversationLog
from evals.insights_seed import seed

TOPICS = ["billing", "the chat widget", "WhatsApp", "Slack", "SSO", "CSAT reports", "macros", "the mobile app",
          "custom domains", "workflows", "segments", "the API", "exports", "roles", "SLAs", "the AI agent"]
ASKS = ["how do I set up", "can we change", "where do I find", "is there a way to turn off", "who can edit",
        "why can't I see", "does the plan include", "how much does it cost to add"]


def _unique_refusals(log, n: int, now: float, rng: random.Random) -> None:
    for i in range(n):
        q = f"{rng.choice(ASKS)} {rng.choice(TOPICS)} for team {i} ({rng.choice(TOPICS)} too)?"
        log.record(LogEntry(id=None, created=now - rng.uniform(0, 29 * 86400), channel="chat", mode="default",
                            intent="question", answered=False, refused=True, fallback=None, question=q,
                            answer="I don't know", codes=[], sources=[], latency_ms=30.0, redacted=False))


def _time(fn, repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.bench_insights", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="300,3000,10000")
    ap.add_argument("--unique", type=int, default=0, help="distinct refused questions added to each log")
    a = ap.parse_args(argv)
    from app.config import Settings
    from app.search.embeddings import Embedder

    embedder = Embedder.from_settings(Settings.from_env()).load()
    now = time.time()
    print(f"{'messages':>9}{'refused':>9}{'distinct':>9}{'seed s':>8}{'words s':>9}{'MiniLM cold s':>15}"
          f"{'MiniLM warm s':>15}")
    for size in (int(s) for s in a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            log = SqliteConversationLog(Path(tmp) / "log.sqlite3")
            t0 = time.perf_counter()
            seed(log, size, now=now)
            _unique_refusals(log, a.unique, now, random.Random(size))
            seeded = time.perf_counter() - t0
            period = Period.parse("30d", now=now + 1)
            words = _time(lambda: compute(log, period))
            cold_t0 = time.perf_counter()
            cached = CachedEmbed(embedder.embed_documents)
            ins = compute(log, period, cached)
            cold = time.perf_counter() - cold_t0
            warm = _time(lambda: compute(log, period, cached))
            refused = ins.totals["refused"]
            distinct = len({e.question.lower() for e in log.entries(0) if e.refused})
            print(f"{ins.totals['questions']:>9,}{refused:>9,}{distinct:>9,}{seeded:>8.2f}{words:>9.3f}{cold:>15.3f}"
                  f"{warm:>15.3f}")
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
