"""Lexical search at scale: memory and start-up of the retriever, before and after (issue 14).

    python -m evals.bench_lexical                    # 1,000 and 10,000 synthetic articles
    python -m evals.bench_lexical --articles 200     # a quick run

For each N, a throwaway corpus in a temp dir: N synthetic articles of 6 documents each (random
words, Zipf-distributed, labelled synthetic; random unit vectors, so no model is loaded), in an
embedded Chroma laid out like an ingest (a version and its head) with the lexical index ingest
writes. Then, each in a fresh process over the same collection:

- ``in-memory``: what the retriever did before: every document read at start-up, kept, tokenised
  into ``rank_bm25.BM25Okapi`` (and the spelling vocabulary built from them);
- ``on-disk warm``: ``HybridRetriever`` over the memory-mapped index ingest wrote;
- ``on-disk cold``: the same with no index on this machine yet (a replica's first start on a
  Chroma server): built from the collection in pages, saved, then mapped.

Printed per run: start-up seconds, what the retriever added to the process's RSS (anonymous and
file-backed: the mapped index's pages are file-backed, shared by every process on the machine),
and the median search without the query embedding (a fixed vector per question).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLLECTION, VERSION = "bench", "bench-v1"
QUESTIONS = ["mailbox full what now", "550-5.1.1 bounced", "how do I remove an address from the bounce list",
             "spf dkim alignment failed", "rate limited 421 4.7.28"]


def write_corpus(n_articles: int, out: Path) -> int:
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from app.search.chroma import COSINE, CURRENT, HEAD, fingerprint
    from app.search.lexical import write_version

    rnd = random.Random(n_articles)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 10))) for _ in range(30000)]
    weights = [1 / (i + 1) for i in range(len(words))]
    codes = [f"{a}{b}{c}-{a}.{b}.{c}" for a in (4, 5) for b in range(10) for c in range(10)]
    docs = []
    for a in range(n_articles):
        title = f"Synthetic article {a} [synthetic]"
        for s in range(6):
            kind = "row" if s == 5 else "section"
            text = " ".join(rnd.choices(words, weights, k=rnd.randint(60, 140)))
            if kind == "row":
                text = f"{rnd.choice(codes)}: {text[:200]}"
            meta = {"article": title, "kind": kind, "section": f"Section {s}", "heading_path": f"{title} > Section {s}",
                    "url": f"https://synthetic-help.invalid/{a}#s{s}", "line": s * 10, "order": s * 100}
            docs.append((hashlib.sha256(f"{a}/{s}/{text}".encode()).hexdigest()[:32], text, meta))
    client = chromadb.PersistentClient(path=str(out / "index"), settings=ChromaSettings(anonymized_telemetry=False))
    fp = fingerprint([d[0] for d in docs])
    col = client.create_collection(VERSION, configuration=COSINE, embedding_function=None,
                                   metadata={"fingerprint": fp, HEAD: COLLECTION})
    vectors = np.random.default_rng(0)
    for i in range(0, len(docs), 2000):
        batch = docs[i : i + 2000]
        v = vectors.standard_normal((len(batch), 384)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        col.add(ids=[d[0] for d in batch], documents=[d[1] for d in batch], metadatas=[d[2] for d in batch], embeddings=v)
    client.create_collection(COLLECTION, configuration=COSINE, embedding_function=None, metadata={CURRENT: VERSION})
    write_version(out / "index" / "lexical", VERSION, fp, docs)
    return len(docs)


def _memory() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


class _FixedVectors:
    name = "bench"

    def embed_query(self, text: str) -> list[float]:
        import numpy as np

        v = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)).standard_normal(384)
        return (v / np.linalg.norm(v)).tolist()

    def vocabulary(self) -> frozenset:  # the questions' words are English: Spelling leaves them be
        return frozenset(w for q in QUESTIONS for w in q.lower().split())


class _InMemory:
    """The retriever's start-up before issue 14, and its BM25 search."""

    def __init__(self, collection):
        from rank_bm25 import BM25Okapi

        from app.knowledge.chunks import search_text
        from app.search.retrieval import Spelling, tokenize

        # read in pages: one get of every document fails on an embedded store past ~32k documents
        # ("too many SQL variables"), one of the ways the old design did not reach 10,000 articles
        got = {"ids": [], "documents": [], "metadatas": []}
        while True:
            page = collection.get(include=["documents", "metadatas"], limit=5000, offset=len(got["ids"]))
            for key in got:
                got[key] += page[key]
            if len(page["ids"]) < 5000:
                break
        self.ids = got["ids"]
        self.docs = {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
        corpus = [tokenize(search_text(d, m)) for d, m in zip(got["documents"], got["metadatas"])]
        self.bm25 = BM25Okapi(corpus)
        self.spelling = Spelling(corpus)
        self.collection = collection

    def search(self, query: str):
        from app.search.retrieval import tokenize

        self.collection.query(query_embeddings=[_FixedVectors().embed_query(query)], n_results=12, include=["distances"])
        raw = self.bm25.get_scores(tokenize(query))
        return sorted(zip(raw, self.ids), reverse=True)[:3]


def child(mode: str, folder: Path) -> dict:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from app.search.retrieval import HybridRetriever, Synonyms

    Synonyms.load()
    client = chromadb.PersistentClient(path=str(folder / "index"), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_collection(VERSION, embedding_function=None)
    col.count()
    gc.collect()
    before = _memory()
    t0 = time.perf_counter()
    if mode == "in-memory":
        r = _InMemory(col)
    else:
        lexical = folder / "index" / "lexical"
        if mode == "on-disk cold":
            lexical = folder / "cold-lexical"
            shutil.rmtree(lexical, ignore_errors=True)
        r = HybridRetriever(col, _FixedVectors(), multilingual=None, lexical_dir=lexical)
    startup = time.perf_counter() - t0
    gc.collect()
    after = _memory()
    r.search(QUESTIONS[0])  # Chroma loads its vector segment: the same for every mode
    times = []
    for _ in range(3):
        for q in QUESTIONS:
            t = time.perf_counter()
            r.search(q)
            times.append((time.perf_counter() - t) * 1e3)
    return {"mode": mode, "startup_s": startup, "rss_mb": after["VmRSS"] - before["VmRSS"],
            "anon_mb": after["RssAnon"] - before["RssAnon"], "file_mb": after["RssFile"] - before["RssFile"],
            "search_ms": sorted(times)[len(times) // 2]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--child", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    print("| articles | documents | retriever | start-up s | RSS added MB | anon MB | file-backed MB | search ms (no embedding) | index on disk MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in args.articles:
        with tempfile.TemporaryDirectory(prefix="bench-lexical-") as tmp:
            folder = Path(tmp)
            t0 = time.perf_counter()
            docs = write_corpus(n, folder)
            print(f"<!-- {n} articles written in {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)
            disk = sum(p.stat().st_size for p in (folder / "index" / "lexical").rglob("*") if p.is_file()) / 2**20
            for mode in ("in-memory", "on-disk warm", "on-disk cold"):
                out = subprocess.run([sys.executable, "-m", "evals.bench_lexical", "--child", mode, str(folder)],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {n:,} | {docs:,} | {mode} | {r['startup_s']:.2f} | {r['rss_mb']:.1f} | {r['anon_mb']:.1f} | "
                      f"{r['file_mb']:.1f} | {r['search_ms']:.2f} | {disk:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
