"""Making the embedding model's files, once, into ``BOUNCEBOT_MODEL_DIR``:
the fp32 ONNX export of the package's weights (needs torch; checked against
sentence-transformers) and the int8 file quantised from it (checked against
fp32). ``app.search.embeddings`` calls these when a file is missing; nothing
here runs on a warm path.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.search.embeddings import _INPUTS, MODEL_NAME, Embedder, cosines, model_path

INT8_MIN_COSINE = 0.98  # the quantised file is refused below this against fp32 on PROBE
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


def quantize_onnx(fp32: Path, dest: Path, probe=PROBE) -> tuple[Path, float, float]:
    """Quantise the fp32 export to int8 at ``dest`` (dynamic: weights int8 per
    channel, activations quantised on the fly; MatMul only, so the embedding
    tables stay exact) and check it against fp32 on ``probe``.
    Returns (dest, min cosine, mean cosine); refuses below INT8_MIN_COSINE."""
    import logging
    import sys

    from onnxruntime.quantization import QuantType, quantize_dynamic

    print(f"Preparing the int8 embedding model once: quantising {fp32.name} to {dest} ...", file=sys.stderr)
    if not fp32.exists():
        export_onnx(fp32)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process first: no gain measured here
    try:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.getLogger().setLevel(quiet)
    probe = list(probe)
    reference = Embedder(fp32.parent, onnx_path=fp32, query_cache=0).embed_documents(probe)
    got = Embedder(tmp.parent, onnx_path=tmp, query_cache=0).embed_documents(probe)
    c = cosines(reference, got)
    worst, mean = float(c.min()), float(c.mean())
    if worst < INT8_MIN_COSINE:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"int8 model differs from fp32 (cosine {worst:.4f} < {INT8_MIN_COSINE}); not used")
    os.replace(tmp, dest)
    print(f"  int8 vs fp32 cosine on {len(probe)} probe texts: min {worst:.4f}, mean {mean:.4f}", file=sys.stderr)
    return dest, worst, mean
