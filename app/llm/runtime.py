"""The model in this process: one ``xllamacpp.Server`` over the verified GGUF, loaded once.

- **Once per process**: ``runtime()`` keeps one server per (file, threads, context) and every
  ``LocalChatModel`` shares it; the server is thread-safe and queues requests for its one slot.
- **Threads**: generation uses ``threads`` (1 by default); prompt processing (a batch of new
  prompt tokens) uses ``batch_threads`` (``BATCH_THREADS``: 2 on a machine with 2 cores or more),
  which is what time to first token pays for. With 2, OpenMP must not spin while it waits, so
  ``OMP_WAIT_POLICY=PASSIVE`` is put in the environment before xllamacpp (and its libgomp)
  is first loaded. If another library started OpenMP earlier, the setting comes too late:
  a warning says so (start the process with the variable set).
- **Only a verified file**: ``server_params`` refuses a file whose verification marker does
  not match it (``app.llm.model_file``).
- The HTTP listener that xllamacpp always opens is bound to 127.0.0.1 on a random port and
  locked with a random API key: only this process's calls reach the model. This process uses
  it for one thing the Python API lacks: saving and restoring the slot's KV cache
  (``/slots/0?action=save|restore``, files in ``<model cache>/kv/``). ``app.llm.serve`` uses
  the same parameters with a port and key of its choosing, and no slot files.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import LLMFailed, ModelUnavailable
from .model_file import QWEN_CODER_1_5B, is_verified

log = logging.getLogger(__name__)

N_CTX = 4096  # instructions + article (~1,050 tokens) + passages, history and the answer
BATCH_THREADS = min(2, os.cpu_count() or 1)  # prompt processing: measured 2x faster than 1 (README)
CACHE_RAM_MIB = 256  # host-memory copies of earlier prompts' KV caches (xllamacpp's default is 8 GiB)


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


def _import_xllamacpp(threads: int):
    """xllamacpp, with OpenMP told not to spin (set before its libgomp starts)."""
    late = _libgomp_loaded() and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if late and threads > 1:
        log.warning("OpenMP was started by another library before OMP_WAIT_POLICY=PASSIVE could be set: with %d "
                    "threads generation may crawl while another process is busy. Start the process with "
                    "OMP_WAIT_POLICY=PASSIVE, or use BOUNCEBOT_LLM_THREADS=1.", threads)
    try:
        import xllamacpp
    except ImportError:
        raise ModelUnavailable("The local model's runtime (xllamacpp) is not installed: run `make llm` "
                               "(it installs the `llm` extra and the model file).") from None
    return xllamacpp


def server_params(model_path: Path, *, threads: int = 1, batch_threads: int | None = None, n_ctx: int = N_CTX,
                  host: str = "127.0.0.1",
                  port: int = 0, api_key: str | None = None, alias: str | None = None, http_threads: int = 1,
                  slot_dir: Path | None = None):
    """``xllamacpp.CommonParams`` for the verified file (refused when it is not verified)."""
    model_path = Path(model_path)
    if not is_verified(model_path):
        raise ModelUnavailable(f"{model_path} is not a verified model file (no matching .verified.json marker); "
                               "run `python -m app.llm.model_file` (or `make llm`). It was not loaded.")
    batch_threads = batch_threads or threads
    xlc = _import_xllamacpp(max(threads, batch_threads))
    p = xlc.CommonParams()
    p.model.path = str(model_path)
    p.n_ctx = n_ctx
    p.n_parallel = 1
    p.cpuparams.n_threads, p.cpuparams_batch.n_threads = threads, batch_threads
    p.cache_prompt = True
    p.cache_ram_mib = CACHE_RAM_MIB
    p.hostnames = [host]
    p.port = port
    p.n_threads_http = http_threads
    p.api_keys = [api_key] if api_key else []
    p.model_alias = {alias or QWEN_CODER_1_5B.filename.removesuffix(".gguf")}
    p.slot_save_path = f"{slot_dir}/" if slot_dir else ""  # empty: no slot files
    p.verbosity = 0
    return xlc, p


@dataclass
class Runtime:
    """One loaded model: an ``xllamacpp.Server``, what loading it cost, and its slot's KV files."""

    server: Any
    model_path: Path
    threads: int
    load_seconds: float
    version: str  # xllamacpp's: a saved KV cache is only read back by the version that wrote it
    api_key: str = ""
    slot_dir: Path | None = None
    prefix_tokens: int = 0  # the warmed prefix, as the server counted it

    def slot_action(self, action: str, filename: str) -> dict:
        """``save`` slot 0's KV cache (its tokens included) to ``slot_dir/filename``, or ``restore`` it."""
        request = urllib.request.Request(
            f"{self.server.listening_address}/slots/0?action={action}", method="POST",
            data=json.dumps({"filename": filename}).encode(),
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        try:
            with opener.open(request, timeout=60) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
            raise LLMFailed(f"the slot {action} of {filename} failed ({e})") from None


_RUNTIMES: dict[tuple, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime(model_path: Path, threads: int = 1, n_ctx: int = N_CTX, batch_threads: int | None = None) -> Runtime:
    """The model loaded once per process (per file, thread counts and context size)."""
    key = (str(model_path), threads, batch_threads or threads, n_ctx)
    with _RUNTIMES_LOCK:
        if key not in _RUNTIMES:
            api_key, slot_dir = secrets.token_urlsafe(24), Path(model_path).parent / "kv"
            xlc, params = server_params(model_path, threads=threads, batch_threads=batch_threads, n_ctx=n_ctx,
                                        api_key=api_key, slot_dir=slot_dir)
            slot_dir.mkdir(exist_ok=True)
            start = time.monotonic()
            try:
                server = xlc.Server(params)
            except RuntimeError as e:
                raise ModelUnavailable(f"xllamacpp could not load {model_path}: {e}") from None
            _RUNTIMES[key] = Runtime(server, Path(model_path), threads, time.monotonic() - start, xlc.__version__,
                                     api_key, slot_dir)
            log.info("loaded %s with %d thread(s), %d for prompts, in %.1f s", model_path, threads,
                     batch_threads or threads, _RUNTIMES[key].load_seconds)
        return _RUNTIMES[key]


def unload_all() -> None:
    """Drop every loaded model (its memory is freed once no request is running on it)."""
    with _RUNTIMES_LOCK:
        _RUNTIMES.clear()
