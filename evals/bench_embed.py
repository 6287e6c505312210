"""Ingest's embedding throughput (issue 14 item 2): chunks per second on the
synthetic help centre's chunks, the way ``bouncebot ingest`` embeds them.

    python -m evals.bench_embed [--articles 100] [--threads 1,2]

For each thread count: batches of 32 in the chunks' own order (what
``embed_documents`` did before) and batches sorted by token length (what it
does now: the output still in the input's order), interleaved batch-run by
batch-run so a neighbour's load falls on both alike. Prints chunks/s and what
43,000 chunks (10,000 articles) would take at that rate, with the load average.
``bouncebot ingest`` embeds on ``os.cpu_count()`` threads unless
``BOUNCEBOT_EMBED_THREADS`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_CHUNKS = 43_000  # 10,000 synthetic articles, as issue 14 counts them
TARGET_SECONDS = 15 * 60


def corpus_texts(articles: int) -> list[str]:
    """The search texts of every chunk of ``articles`` synthetic articles and the real one."""
    from app.knowledge.articles import load_articles
    from app.knowledge.chunks import chunk_articles, search_text
    from evals.scale_corpus import write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(articles, Path(tmp) / "kb")
        arts = load_articles(Path(tmp) / "kb")
    return [search_text(c.text, c.metadata) for c in chunk_articles(arts, "any")]


def input_order(embedder, texts: list[str]) -> None:
    """The old way: batches in the texts' own order, each padded to its longest."""
    for i in range(0, len(texts), embedder.batch_size):
        embedder._encode(texts[i : i + embedder.batch_size], embedder.precision)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def measure(texts: list[str], threads: list[int], rounds: int = 2) -> dict:
    from app.config import Settings
    from app.search.embeddings import Embedder

    settings = Settings.from_env()
    out: dict = {}
    for n in threads:
        e = Embedder(settings.model_dir, threads=n, query_cache=0)
        e.embed_documents(texts[:64])  # the session made, the first batches warm
        for _ in range(rounds):
            for how, run in (("input order", lambda: input_order(e, texts)), ("sorted", lambda: e.embed_documents(texts))):
                t = time.perf_counter()
                run()
                out.setdefault((n, how), []).append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=100, help="synthetic articles whose chunks are embedded")
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="thread counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each way (the best is kept)")
    args = ap.parse_args(argv)
    threads = sorted({max(1, int(t)) for t in args.threads.split(",") if t.strip()})
    texts = corpus_texts(args.articles)
    print(f"Embedding {len(texts)} chunks ({args.articles} synthetic articles + the real one), "
          f"load average {load_average()} at the start")
    got = measure(texts, threads, args.rounds)
    base = None
    for (n, how), seconds in got.items():
        best = min(seconds)
        rate = len(texts) / best
        base = base or rate
        projected = TARGET_CHUNKS / rate
        print(f"  {n} thread(s), {how:<11}  {rate:6.1f} chunks/s  ({rate / base:4.2f}x the first row)  "
              f"43,000 chunks in {projected / 60:5.1f} min (target < {TARGET_SECONDS // 60} min)")
    print(f"  load average {load_average()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
