"""The quantised model files against fp32: the cosine of each text's two
embeddings, over every chunk of the knowledge base and every question of the
eval splits, and how often the nearest chunk stays the same.

    python -m evals.embed_precision [--dataset dev test] [--precision int8 mixed]
    python -m evals.embed_precision --sensitivity [--dataset dev]

Prints min / mean / p01 cosine per text set (chunks embedded as documents, in
batches; questions one at a time, as queries are), and the share of questions
whose top dense chunk is the same: quantised queries against quantised chunks
(an index built at that precision) and against fp32 chunks (the fp32 index,
queried at that precision: ``BOUNCEBOT_QUERY_PRECISION``).

``--sensitivity`` quantises one weight MatMul at a time (the others fp32) and
prints the mean cosine error it alone causes on the split's questions, most
sensitive first: how ``app.search.model_files.KEEP_FP32`` (the MatMuls the
``mixed`` file keeps in fp32) was chosen. The eval figures themselves come from
``python -m evals.run --dataset dev --pipeline bouncebot`` with
``BOUNCEBOT_EMBED_PRECISION`` (an index at that precision) or
``BOUNCEBOT_QUERY_PRECISION`` (queries only).
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


def as_queries(embedder, texts: list[str]):
    """Each text embedded alone, as ``embed_query`` does (a quantised file's activations are
    quantised per call, so a text's vector depends a little on the batch it is in)."""
    import numpy as np

    return np.vstack([embedder._encode([t], embedder.query_precision) for t in texts])


def compare(settings, splits=("dev",), precisions=("int8", "mixed")) -> dict:
    """{precision: {set name: {"n", "min", "mean", "p01"}, "<split> top-1 chunk kept": {...}}}."""
    import numpy as np

    from app.search.embeddings import Embedder, cosines

    fp32 = Embedder(settings.model_dir, precision="fp32", query_cache=0)
    kb = kb_texts(settings)
    kb32 = np.asarray(fp32.embed_documents(kb))
    qs = {s: questions(s) for s in splits}
    q32 = {s: as_queries(fp32, t) for s, t in qs.items()}
    out: dict = {}
    for prec in precisions:
        other = Embedder(settings.model_dir, precision=prec, query_cache=0)
        kbp = np.asarray(other.embed_documents(kb))
        figures = {"kb chunks": _stats(cosines(kb32, kbp))}
        for s in splits:
            qp = as_queries(other, qs[s])
            figures[f"{s} questions"] = _stats(cosines(q32[s], qp))
            best = (q32[s] @ kb32.T).argmax(axis=1)
            figures[f"{s} top-1 chunk kept"] = {
                f"{prec} index": float(((qp @ kbp.T).argmax(axis=1) == best).mean()),
                "fp32 index": float(((qp @ kb32.T).argmax(axis=1) == best).mean())}
        out[prec] = figures
    return out


def _stats(c) -> dict:
    import numpy as np

    return {"n": int(len(c)), "min": float(c.min()), "mean": float(c.mean()), "p01": float(np.quantile(c, 0.01))}


def sensitivity(settings, split: str = "dev") -> list[tuple[str, float, float]]:
    """(MatMul name, mean cosine error, min cosine) with that MatMul alone in int8, worst first."""
    import logging
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from app.search.embeddings import Embedder, cosines, onnx_file
    from app.search.model_files import matmul_names

    fp32_file = onnx_file(settings.model_dir, "fp32")
    fp32 = Embedder(settings.model_dir, query_cache=0)
    texts = questions(split)
    reference = as_queries(fp32, texts)
    names = [n for n in matmul_names(fp32_file) if not n.endswith(("self/MatMul", "self/MatMul_1"))]  # weights only
    logging.getLogger().setLevel(logging.ERROR)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.onnx"
        for name in names:
            quantize_dynamic(str(fp32_file), str(path), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=[n for n in names if n != name])
            c = cosines(reference, as_queries(Embedder(settings.model_dir, onnx_path=path, query_cache=0), texts))
            out.append((name, float(1 - c.mean()), float(c.min())))
    return sorted(out, key=lambda r: -r[1])


def main(argv=None) -> int:
    from app.config import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", nargs="+", default=["dev"], choices=["dev", "test"])
    ap.add_argument("--precision", nargs="+", default=["int8", "mixed"], choices=["int8", "mixed"])
    ap.add_argument("--sensitivity", action="store_true", help="rank the MatMuls by the error their int8 alone causes")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    if args.sensitivity:
        print(f"One weight MatMul in int8 at a time, the rest fp32: mean cosine error on the {args.dataset[0]} questions")
        for name, err, worst in sensitivity(settings, args.dataset[0]):
            print(f"  {name:<52} {err:.2e}  min cosine {worst:.5f}")
        return 0
    for prec, figures in compare(settings, tuple(args.dataset), tuple(args.precision)).items():
        print(f"{prec} vs fp32 embeddings (cosine of the same text's two vectors)")
        for name, f in figures.items():
            if "n" in f:
                print(f"  {name:<16} n={f['n']:<4} min {f['min']:.4f}  p01 {f['p01']:.4f}  mean {f['mean']:.5f}")
            else:
                print(f"  {name}: {f[f'{prec} index']:.3f} with a {prec} index, {f['fp32 index']:.3f} against fp32 chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
