"""Making the embedding model's files, once, into ``BOUNCEBOT_MODEL_DIR``:
the fp32 ONNX export of the package's weights (needs torch; checked against
sentence-transformers), the int8 file quantised from it and the ``mixed``
file (int8 but for the MatMuls most sensitive to it, kept fp32), each checked
against fp32. ``app.search.embeddings`` calls these when a file is missing;
nothing here runs on a warm path.

Why ``mixed`` keeps these four MatMuls (``python -m evals.embed_precision
--sensitivity`` measures it): quantising one MatMul alone, the mean cosine
error on the dev questions is largest for the feed-forward output of layers 0,
2 and 1 (1.4e-3, 0.9e-3, 0.6e-3) and the feed-forward input of layer 4
(0.6e-3); every query/key/attention-output MatMul stays under 3e-5. With
these four in fp32 an int8 query against the fp32 index gave the dev split's
figures of fp32 case for case (three of them were not enough: one fact lost).
ONNX graph fusions were measured too and not kept: onnxruntime already
applies its own at load, and the transformers optimizer's full BERT fusion
(attention, gelu, layernorm; it needs an eager-attention export) gained 4%.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.search.embeddings import _INPUTS, MODEL_NAME, Embedder, cosines, model_path

INT8_MIN_COSINE = 0.98  # the quantised file is refused below this against fp32 on PROBE
MIXED_MIN_COSINE = 0.99  # the same for the mixed file on PROBE (on the dev questions its worst is 0.983, "thanks!!")
# The MatMuls ``mixed`` keeps in fp32 (names as torch.onnx.export writes them for this model).
KEEP_FP32 = (
    "/inner/encoder/layer.0/output/dense/MatMul",
    "/inner/encoder/layer.2/output/dense/MatMul",
    "/inner/encoder/layer.1/output/dense/MatMul",
    "/inner/encoder/layer.4/intermediate/dense/MatMul",
)
# Texts the int8 file is checked on when it is made: short codes, agents' questions, the article's prose,
# a long truncated one. (The whole KB and the dev split are measured by evals/embed_precision.py.)
PROBE = (
    "550 5.1.1 user unknown",
    "What does 421-4.7.28 mean?",
    "How do I get an address off the bounce list?",
    "her mailbox is full, what can I do?",
    "The recipient's mailbox is full and cannot receive new messages.",
    "Check the address for typos, or ask the customer for another way to reach them.",
    "Your domain's SPF or DKIM records are missing or do not match the sending server.",
    "What is the price of the enterprise plan?",
    "word " * 400,
)


def export_onnx(dest: Path) -> Path:
    """Export the package's weights to ONNX at ``dest`` and verify the result
    against sentence-transformers. Needs torch; run once."""
    import sys
    import warnings

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    print(f"Preparing the embedding model once: exporting {MODEL_NAME} to {dest} ...", file=sys.stderr)
    src = model_path()
    model = AutoModel.from_pretrained(str(src)).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {"0": "batch", "1": "tokens"}
    dynamic = {n: {0: axes["0"], 1: axes["1"]} for n in (*_INPUTS, "last_hidden_state")}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for this model
        torch.onnx.export(
            Encoder(model), (ids, ids, torch.zeros_like(ids)), str(tmp), input_names=list(_INPUTS),
            output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=17, dynamo=False,
        )
    probe = ["550 5.1.1 user unknown", "How do I get an address off the bounce list?", "word " * 400]
    reference = SentenceTransformer(str(src), device="cpu").encode(probe, normalize_embeddings=True)
    got = np.array(Embedder(tmp.parent, onnx_path=tmp).embed_documents(probe))
    worst = float((reference * got).sum(axis=1).min())
    if worst < 0.9999:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export differs from sentence-transformers (cosine {worst:.6f}); not used")
    os.replace(tmp, dest)
    return dest


def matmul_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "MatMul"]


def quantize_onnx(fp32: Path, dest: Path, probe=PROBE, keep_fp32: tuple[str, ...] = (),
                  min_cosine: float = INT8_MIN_COSINE) -> tuple[Path, float, float]:
    """Quantise the fp32 export to int8 at ``dest`` (dynamic: weights int8 per
    channel, activations quantised on the fly; MatMul only, so the embedding
    tables stay exact), but for the MatMuls named in ``keep_fp32`` (all of them
    must be in the graph), and check it against fp32 on ``probe``.
    Returns (dest, min cosine, mean cosine); refuses below ``min_cosine``."""
    import logging
    import sys

    from onnxruntime.quantization import QuantType, quantize_dynamic

    what = "int8" if not keep_fp32 else f"mixed (int8, {len(keep_fp32)} MatMuls fp32)"
    print(f"Preparing the {what} embedding model once: quantising {fp32.name} to {dest} ...", file=sys.stderr)
    if not fp32.exists():
        export_onnx(fp32)
    missing = sorted(set(keep_fp32) - set(matmul_names(fp32))) if keep_fp32 else []
    if missing:
        raise RuntimeError(f"{fp32} has no MatMul named {', '.join(missing)}: the export changed; "
                           "measure again with `python -m evals.embed_precision --sensitivity`")
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process first: no gain measured here
    try:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=list(keep_fp32))
    finally:
        logging.getLogger().setLevel(quiet)
    probe = list(probe)
    reference = Embedder(fp32.parent, onnx_path=fp32, query_cache=0).embed_documents(probe)
    got = Embedder(tmp.parent, onnx_path=tmp, query_cache=0).embed_documents(probe)
    c = cosines(reference, got)
    worst, mean = float(c.min()), float(c.mean())
    if worst < min_cosine:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{what} model differs from fp32 (cosine {worst:.4f} < {min_cosine}); not used")
    os.replace(tmp, dest)
    print(f"  {what} vs fp32 cosine on {len(probe)} probe texts: min {worst:.4f}, mean {mean:.4f}", file=sys.stderr)
    return dest, worst, mean


def make_file(model_dir: Path, precision: str, dest: Path) -> Path:
    """Make the model file of ``precision`` at ``dest`` (the fp32 export first, when missing)."""
    from app.search.embeddings import onnx_file

    if precision == "fp32":
        return export_onnx(dest)
    keep = KEEP_FP32 if precision == "mixed" else ()
    return quantize_onnx(onnx_file(model_dir), dest, keep_fp32=keep,
                         min_cosine=MIXED_MIN_COSINE if keep else INT8_MIN_COSINE)[0]
