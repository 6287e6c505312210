"""Helpers for the replica and live re-index tests: a KB change, `bouncebot serve`
in a process of its own, a loop of requests, and a Gradio turn whose join and
event stream travel on two different connections (as a browser's may)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from ..conftest import ROOT

BIN = ROOT / ".venv" / "bin" / "bouncebot"
ARTICLE = "common-email-delivery-errors.md"
NEW_CODE = "553-5.3.0"
NEW_MEANING = "A row added by the live re-index test: the sender address was refused."
NEW_ACTION = "Check the sending address, then try again."
BOUNCE_LIST = "How do I get an address off the bounce list?"


def add_row(kb: Path) -> None:
    """A new row in the article's table (so the index's fingerprint and the code table both change)."""
    path = kb / ARTICLE
    text = path.read_text(encoding="utf-8")
    anchor = "| 554-5.4.4 |"
    assert anchor in text
    path.write_text(text.replace(anchor, f"| {NEW_CODE} | {NEW_MEANING} | {NEW_ACTION} |\n{anchor}", 1),
                    encoding="utf-8")


def new_row_is_exact(answer: dict) -> bool:
    codes = answer.get("codes") or []
    return bool(codes) and codes[0]["match"] == "exact" and codes[0]["row"]["meaning"] == NEW_MEANING


class Serve:
    """`bouncebot serve` (with ``args``) in its own process group; ``url`` once /healthz answers."""

    def __init__(self, env: dict, args: list[str], port: int, log: Path):
        self.env, self.args, self.port, self.log = env, args, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Serve":
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen([str(BIN), "serve", "--port", str(self.port), *self.args],
                                     env={**os.environ, **self.env}, cwd=ROOT, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300  # N+1 processes load the model on 2 shared cores
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"serve did not answer: {self.log.read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers, then the chat process
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()


class Loop:
    """POST /api/ask in a thread, over and over, on fresh connections; every failure is kept."""

    def __init__(self, url: str, questions: list[str]):
        self.url, self.questions = url, questions
        self.answers: list[dict] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for q in self.questions:
                try:
                    r = httpx.post(f"{self.url}/api/ask", json={"question": q}, timeout=60)
                    if r.status_code == 200:
                        self.answers.append(r.json())
                    else:
                        self.failures.append(f"{r.status_code}: {r.text[:300]}")
                except httpx.HTTPError as e:
                    self.failures.append(repr(e))

    def __enter__(self) -> "Loop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def chat_turn_split(url: str, question: str) -> tuple[int, int, bool]:
    """One Gradio chat turn: queue/join on one connection, queue/data on a fresh one.
    (join status, data status, whether the event completed)."""
    session = secrets.token_hex(6)
    with httpx.Client(timeout=30) as first:
        ask = next(d for d in first.get(f"{url}/config").json()["dependencies"] if d.get("api_name") == "ask")
        join = first.post(f"{url}/gradio_api/queue/join", json={
            "data": [question, [], None], "fn_index": ask["id"], "trigger_id": ask["targets"][0][0],
            "session_hash": session})
    with httpx.Client(timeout=30) as second, \
            second.stream("GET", f"{url}/gradio_api/queue/data?session_hash={session}") as r:
        try:
            body = b"".join(r.iter_raw())
        except httpx.HTTPError:  # the stream cut short: this worker had no such session
            body = b""
        return join.status_code, r.status_code, b"process_completed" in body and b'"success":true' in body
