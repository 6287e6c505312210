"""What the conversation log costs (issue 15): printed figures, nothing asserted.

    python -m evals.bench_conversations [--n 400] [--postgres]

- redaction of every eval question (per text, p50 / p95 / max) and of a 200 KB pasted bounce;
- ``Recorder.record`` as a surface calls it (the time the answer waits: queue the row, the
  writer thread redacts and inserts it, the id comes back), p50 / p95, on SQLite (and on a
  throw-away PostgreSQL with ``--postgres``), beside the same insert done directly;
- ``POST /api/ask`` in-process (fake embedder, code questions), p50 with the log on and off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSWER = {"question": "Hi Anna, my reply to maria@example.com bounced with 550 5.1.1", "answer": "**550-5.1.1** " * 40,
          "answered": True, "codes": [{"code": "550-5.1.1", "match": "exact", "reason": "user_unknown"}],
          "sources": [{"article": "Common Email Delivery Errors", "section": "Common delivery errors", "url": "u"}],
          "recipients": [], "intent": "question", "mode": "default", "llm": None}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def line(name: str, ms: list[float]) -> None:
    print(f"{name:58s} p50 {statistics.median(ms):8.3f} ms   p95 {pct(ms, 95):8.3f} ms   max {max(ms):8.3f} ms")


def bench_redaction() -> None:
    from app.storage.redact import redact

    texts = []
    for path in sorted((ROOT / "evals" / "datasets").glob("*.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(raw)["question"])
    ms = []
    for t in texts:
        t0 = time.perf_counter()
        redact(t)
        ms.append((time.perf_counter() - t0) * 1000)
    line(f"redact, one eval question ({len(texts)} texts)", ms)
    paste = ("Final-Recipient: rfc822; anna.smith@example.com\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550-5.1.1 "
             "user unknown, call +44 20 7946 0958\nThanks,\nJohn Doe\n") * 1400
    t0 = time.perf_counter()
    redact(paste)
    print(f"{'redact, a ' + str(len(paste) // 1024) + ' KB pasted bounce, whole':58s} {(time.perf_counter() - t0) * 1000:8.1f} ms")
    from app.storage.conversations import ConversationLog, LogEntry

    entry = LogEntry.of({**ANSWER, "question": paste}, "api", 1.0)
    t0 = time.perf_counter()
    ConversationLog().prepare(entry)  # what the writer thread does: redacts only what is kept (MAX_TEXT)
    print(f"{'the log prepares that paste (redacts what it keeps)':58s} {(time.perf_counter() - t0) * 1000:8.1f} ms")


def bench_record(log, label: str, n: int) -> None:
    from app.storage.conversations import LogEntry
    from app.storage.recorder import Recorder

    direct = []
    for _ in range(n):
        e = LogEntry.of(ANSWER, "api", 1.0)
        t0 = time.perf_counter()
        log.record(e)
        direct.append((time.perf_counter() - t0) * 1000)
    line(f"{label}: ConversationLog.record directly", direct)
    recorder = Recorder(log, wait=1.0)
    waited, missing = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        missing += recorder.record(ANSWER, "api", 1.0) is None
        waited.append((time.perf_counter() - t0) * 1000)
    line(f"{label}: Recorder.record (what the answer waits)", waited)
    print(f"{'':58s} ids not back within the wait: {missing}/{n}")
    recorder.close()


def bench_api(n: int) -> None:
    from fastapi.testclient import TestClient

    from app.storage.conversations import SqliteConversationLog
    from app.web.server import create_app
    from tests.fakes import FakeFeedbackLog, fake_services

    with tempfile.TemporaryDirectory() as tmp:
        services = fake_services(Path(tmp) / "index")
        log = SqliteConversationLog(Path(tmp) / "f.sqlite3")
        results = {}
        for label, conversations in (("off", None), ("on", log), ("off again", None), ("on again", log)):
            with TestClient(create_app(services, FakeFeedbackLog(), conversations=conversations)) as c:
                for _ in range(20):
                    c.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
                ms = []
                for i in range(n):
                    t0 = time.perf_counter()
                    c.post("/api/ask", json={"question": f"What does 550 5.1.1 mean? ({i})"})
                    ms.append((time.perf_counter() - t0) * 1000)
            results[label] = ms
            line(f"POST /api/ask in-process, log {label}", ms)
        off = statistics.median(results["off"] + results["off again"])
        on = statistics.median(results["on"] + results["on again"])
        print(f"{'POST /api/ask p50, log on / log off':58s} {on / off:8.2f}x")
        log.close()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--postgres", action="store_true", help="also on a throw-away PostgreSQL (evals.servers)")
    args = ap.parse_args(argv)
    bench_redaction()
    from app.storage.conversations import SqliteConversationLog

    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteConversationLog(Path(tmp) / "f.sqlite3")
        bench_record(log, "SQLite", args.n)
        log.close()
    if args.postgres:
        from app.storage.conversations_pg import PostgresConversationLog
        from evals.servers import PostgresServer

        with PostgresServer(durable=True) as pg:
            log = PostgresConversationLog(pg.create_database("bench_conversations"))
            bench_record(log, "PostgreSQL (durable, loopback)", args.n)
            log.close()
    bench_api(args.n // 2)


if __name__ == "__main__":
    main()
