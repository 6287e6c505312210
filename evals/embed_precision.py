"""int8 against fp32: the cosine of each text's two embeddings, over every
chunk of the knowledge base and every question of the eval splits, and how
often the nearest chunk stays the same.

    python -m evals.embed_precision [--dataset dev test]

Prints min / mean / p01 cosine per text set, and the share of questions whose
top dense chunk is the same (int8 queries against int8 chunks, as an index
built with int8 would be; and int8 queries against fp32 chunks). The eval
figures themselves come from ``python -m evals.run`` with
``BOUNCEBOT_EMBED_PRECISION=int8``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kb_texts(settings) -> list[str]:
    """Every chunk as the index embeds it."""
    from app.answering.services import load_kb
    from app.knowledge.chunks import chunk_articles, search_text

    return [search_text(c.text, c.metadata) for c in chunk_articles(load_kb(settings), "any")]


def questions(split: str) -> list[str]:
    path = ROOT / "evals" / "datasets" / f"{split}.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line).get("question")
            if isinstance(q, str) and q.strip():
                out.append(q)
    return out


def compare(settings, splits=("dev",)) -> dict:
    """{set name: {"n", "min", "mean", "p01"}} plus "top1" agreement per split."""
    import numpy as np

    from app.search.embeddings import Embedder, cosines

    fp32 = Embedder(settings.model_dir, precision="fp32", query_cache=0)
    int8 = Embedder(settings.model_dir, precision="int8", query_cache=0)
    sets = {"kb chunks": kb_texts(settings)} | {f"{s} questions": questions(s) for s in splits}
    out: dict = {}
    vectors = {}
    for name, texts in sets.items():
        a, b = np.asarray(fp32.embed_documents(texts)), np.asarray(int8.embed_documents(texts))
        vectors[name] = (a, b)
        c = cosines(a, b)
        out[name] = {"n": len(texts), "min": float(c.min()), "mean": float(c.mean()),
                     "p01": float(np.quantile(c, 0.01))}
    kb32, kb8 = vectors["kb chunks"]
    for s in splits:
        q32, q8 = vectors[f"{s} questions"]
        best = (q32 @ kb32.T).argmax(axis=1)
        out[f"{s} top-1 chunk kept"] = {"int8 index": float(((q8 @ kb8.T).argmax(axis=1) == best).mean()),
                                        "fp32 index": float(((q8 @ kb32.T).argmax(axis=1) == best).mean())}
    return out


def main(argv=None) -> int:
    from app.config import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", nargs="+", default=["dev"], choices=["dev", "test"])
    args = ap.parse_args(argv)
    figures = compare(Settings.from_env(), tuple(args.dataset))
    print("int8 vs fp32 embeddings (cosine of the same text's two vectors)")
    for name, f in figures.items():
        if "n" in f:
            print(f"  {name:<16} n={f['n']:<4} min {f['min']:.4f}  p01 {f['p01']:.4f}  mean {f['mean']:.4f}")
        else:
            print(f"  {name}: {f['int8 index']:.3f} with an int8 index, {f['fp32 index']:.3f} against fp32 chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
