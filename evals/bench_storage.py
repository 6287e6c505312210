"""Storage figures: the SQLite file against a real PostgreSQL (a throw-away
cluster, ``evals.servers.PostgresServer``, durable: fsync on) for migrating a
new database, one feedback post (committed) and one rate-limit hit, beside
the in-memory token bucket. Printed, never asserted.

    .venv/bin/python -m evals.bench_storage [--n 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def timed(fn, n: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``n`` calls."""
    ms = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def main(argv=None) -> None:
    from app.storage.postgres import PostgresFeedbackLog, PostgresRateCounter, PostgresStore
    from app.storage.sqlite import FeedbackLog
    from app.web.widget import RateLimiter
    from evals.servers import PostgresServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args(argv).n
    post = dict(rating="down", question="What does 550 5.1.1 mean?", answer="x" * 2000, comment="too vague")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sqlite_log = FeedbackLog(Path(tmp) / "f.sqlite3")
        rows.append(("migrate a new database (open)", "sqlite", (time.perf_counter() - t) * 1000, None))
        t = time.perf_counter()
        with PostgresServer(durable=True) as pg:
            started = (time.perf_counter() - t) * 1000
            url = pg.create_database("bench")
            t = time.perf_counter()
            store = PostgresStore(url)
            pg_log = PostgresFeedbackLog(store)
            rows.append(("migrate a new database (open)", "postgresql", (time.perf_counter() - t) * 1000, None))
            rows.append(("feedback add (committed)", "sqlite", *timed(lambda i: sqlite_log.add(**post), n)))
            rows.append(("feedback add (committed)", "postgresql", *timed(lambda i: pg_log.add(**post), n)))
            rows.append(("feedback count", "sqlite", *timed(lambda i: sqlite_log.count(), n)))
            rows.append(("feedback count", "postgresql", *timed(lambda i: pg_log.count(), n)))
            memory = RateLimiter(10**9, 60)
            rows.append(("rate-limit hit", "memory", *timed(lambda i: memory.hit(f"c{i % 50}"), n)))
            counter = PostgresRateCounter(store)
            now = time.time()
            rows.append(("rate-limit hit (upsert)", "postgresql",
                         *timed(lambda i: counter.hit("bench", f"c{i % 50}", 10**9, 60, now), n)))
            store.close()
    print(f"PostgreSQL cluster initdb + start (durable): {started:,.0f} ms")
    print(f"{'operation':34} {'backend':11} {'p50 ms':>8} {'p95 ms':>8}   (n={n})")
    for what, backend, p50, p95 in rows:
        print(f"{what:34} {backend:11} {p50:8.3f} {'' if p95 is None else f'{p95:8.3f}':>8}")


if __name__ == "__main__":
    main()
