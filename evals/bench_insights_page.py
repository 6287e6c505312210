"""How long the /insights page takes, by log size: figures, never assertions.

    python -m evals.bench_insights_page [--sizes 300,3000] [--no-model]

For each size a SQLite conversation log is seeded (``evals.insights_seed``) in a temporary folder and
``app.web.insights`` is installed on a bare FastAPI app (the page's own routes and nothing else),
driven in-process by ``TestClient``: the first page (refused questions embedded by MiniLM, the three
charts drawn by matplotlib), the same page again (embeddings and charts reused), another period,
and one CSV export; with the page's size in bytes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "bench-insights-token"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(size: int, embed) -> dict:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.storage.conversations import SqliteConversationLog
    from app.web import insights
    from evals.insights_seed import seed

    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteConversationLog(Path(tmp) / "feedback.sqlite3")
        seed(log, size)
        app = FastAPI()
        insights.install(app, Settings().with_(insights_token=TOKEN), log, embed)
        with TestClient(app, follow_redirects=False) as c:
            c.post("/insights/login", data={"token": TOKEN}, headers={"origin": "http://testserver"})
            first, t_first = _timed(lambda: c.get("/insights?since=30d"))
            _, t_again = _timed(lambda: c.get("/insights?since=30d"))
            _, t_other = _timed(lambda: c.get("/insights?since=7d"))
            csv, t_csv = _timed(lambda: c.get("/insights/export/thumbs_down.csv?since=30d"))
        log.close()
    assert first.status_code == 200 and csv.status_code == 200
    return {"size": size, "first": t_first, "again": t_again, "other": t_other, "csv": t_csv,
            "bytes": len(first.content)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_insights_page", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="300,3000", help="log sizes, comma-separated (default 300,3000)")
    p.add_argument("--no-model", action="store_true", help="group refused questions by shared words")
    args = p.parse_args(argv)
    embed = None
    if not args.no_model:
        from app.config import Settings
        from app.search.embeddings import Embedder

        embed = Embedder.from_settings(Settings()).load().embed_documents
    print(f"/insights page, 30 days, grouping {'by shared words' if embed is None else 'by MiniLM'}:")
    print(f"{'messages':>9} {'first page':>11} {'again':>8} {'7 days':>8} {'CSV':>8} {'page size':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(size, embed)
        print(f"{r['size']:>9,} {r['first']:>10.2f}s {r['again']:>7.2f}s {r['other']:>7.2f}s {r['csv']:>7.2f}s "
              f"{r['bytes'] / 1024:>8.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
