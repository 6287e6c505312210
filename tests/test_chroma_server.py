"""Beyond one machine: the same code against a real Chroma server on
loopback (``BOUNCEBOT_CHROMA_URL``), as several replicas would share it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import kb_documents

from .test_cli import run

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma-server")), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn", "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma run did not answer its heartbeat"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_ingest_and_ask_against_a_chroma_server(chroma_url, tmp_path):
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    r = run(["ingest"], env)
    assert r.returncode == 0, r.stderr
    assert f"{kb_documents()} added" in r.stdout and chroma_url in r.stderr
    assert not (tmp_path / "unused").exists()  # nothing written to the embedded store

    r = run(["ask", "--json", "How do I get an address off the bounce list?"], env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["answered"] and d["sources"][0]["section"] == "Email address is on a bounce list"

    r = run(["ingest"], env)  # a second replica finds the index up to date
    assert f"0 added, {kb_documents()} kept, 0 removed" in r.stdout


def test_bad_chroma_url_is_a_clear_error():
    r = run(["ask", "how do I reduce bounces?"], {"BOUNCEBOT_CHROMA_URL": "not a url"})
    assert r.returncode == 1 and "BOUNCEBOT_CHROMA_URL" in r.stderr
