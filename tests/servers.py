"""Real servers on loopback for the API, browser, store and LLM tests: the app
(uvicorn in a thread) and an OpenAI-compatible server over the local GGUF
(`python -m app.llm.serve`). The Chroma server and the PostgreSQL cluster live
in ``evals/servers.py`` (the benches start them too) and are re-exported here."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from evals.servers import (  # noqa: F401  (re-exported: tests import them from here)
    ChromaServer, PostgresServer, free_port, postgres_missing, wait_until_ok)


class LiveServer:
    """uvicorn serving an ASGI app in a thread on 127.0.0.1."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


class OpenAICompatibleServer:
    """`python -m app.llm.serve` (xllamacpp's llama.cpp HTTP server, the verified GGUF) on a free loopback
    port; ``base_url`` (``.../v1``) once ``/health`` answers 200, that is once the model is loaded."""

    def __init__(self, model_cache: Path | None = None, threads: int = 1, timeout: float = 120):
        self.port, self.threads, self.timeout = free_port(), threads, timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.env = {**os.environ, **({"BOUNCEBOT_MODEL_CACHE": str(model_cache)} if model_cache else {})}
        self.proc: subprocess.Popen | None = None
        self.output = ""  # what the server printed, once it has stopped

    def __enter__(self) -> "OpenAICompatibleServer":
        self._log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill and stall the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.llm.serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--threads", str(self.threads)],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=Path(__file__).resolve().parent.parent,
        )
        wait_until_ok(self, f"{self.url}/health", self.timeout,
                      lambda: f"app.llm.serve did not become healthy on {self.url}: {self.output[-2000:]}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(timeout=30)
            self._log.seek(0)
            self.output = self._log.read().strip()
            self._log.close()
            self.proc = None
