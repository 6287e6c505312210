"""Real servers on loopback for the API, browser, store and LLM tests: the app
(uvicorn in a thread), a Chroma server (`chroma run` in a process) and an
OpenAI-compatible server over the local GGUF (`python -m app.llm.serve`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class ChromaServer:
    """`chroma run` on a free loopback port, storing in ``path``; ``url`` once it answers its heartbeat."""

    def __init__(self, path: Path):
        self.path, self.port = Path(path), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ChromaServer":
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn", "ANONYMIZED_TELEMETRY": "False"},
        )
        wait_until_ok(self, f"{self.url}/api/v2/heartbeat", 60, lambda: "chroma run did not answer its heartbeat")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a test may have paused it
            self.proc.terminate()
            self.proc.wait(timeout=20)


def wait_until_ok(server, url: str, seconds: float, problem) -> None:
    """Poll ``url`` until it answers 200; when ``server.proc`` exits or ``seconds`` pass, stop the
    server and raise with ``problem()`` (called after the stop, so it may read what the server printed)."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            server.__exit__()
            raise RuntimeError(problem())
        time.sleep(0.2)


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
