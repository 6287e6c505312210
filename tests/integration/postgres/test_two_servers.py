"""Two replicas, end to end: two `bouncebot serve` processes (on two ports)
against one real PostgreSQL (BOUNCEBOT_DATABASE_URL) and one real Chroma
server (BOUNCEBOT_CHROMA_URL, ingested into first). Feedback posted to one
is counted by the other, and the widget's and feedback's rate limits hold
across both. Each server is started once for the module."""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import ExitStack

import httpx
import pytest

from ...conftest import ROOT
from ...servers import ChromaServer, free_port, wait_until_ok
from ..test_cli import BIN, run

pytestmark = pytest.mark.slow
WIDGET_RATE, FEEDBACK_RATE = 3, 4  # per day: a window boundary (UTC midnight) cannot fall inside the test
POST = {"rating": "down", "question": "What does 550 5.1.1 mean?", "answer": "**550-5.1.1** ...",
        "comment": "posted to one replica", "answered": True}


class Replica:
    """`bouncebot serve` in a process on a free loopback port; ``url`` once /healthz answers 200."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.output = ""

    def __enter__(self) -> "Replica":
        self._log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill and stall the server
        self.proc = subprocess.Popen([str(BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        wait_until_ok(self, f"{self.url}/healthz", 240,
                      lambda: f"bouncebot serve did not answer on {self.url}: {self.output[-3000:]}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=30)
            self._log.seek(0)
            self.output = self._log.read()
            self._log.close()
            self.proc = None


@pytest.fixture(scope="module")
def replicas(postgres, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-replicas")
    with ExitStack() as stack:
        chroma = stack.enter_context(ChromaServer(tmp / "chroma"))
        env = {**os.environ, "BOUNCEBOT_CHROMA_URL": chroma.url, "BOUNCEBOT_INDEX_DIR": str(tmp / "index"),
               "BOUNCEBOT_DATABASE_URL": postgres.create_database("two_replicas"),
               "BOUNCEBOT_FEEDBACK_DB": str(tmp / "unused-feedback.sqlite3"),
               "BOUNCEBOT_WIDGET_RATE": f"{WIDGET_RATE}/day", "BOUNCEBOT_FEEDBACK_RATE": f"{FEEDBACK_RATE}/day",
               "BOUNCEBOT_WORKERS": "1", "OMP_NUM_THREADS": "1"}
        r = run(["ingest"], env, timeout=600)
        assert r.returncode == 0, r.stderr
        a = stack.enter_context(Replica(env))
        b = stack.enter_context(Replica(env))
        yield a, b, tmp


def healthz(replica) -> dict:
    r = httpx.get(f"{replica.url}/healthz", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_feedback_posted_to_one_replica_is_counted_by_the_other(replicas):
    a, b, tmp = replicas
    start = healthz(a)["feedback"]
    assert healthz(b)["feedback"] == start
    r = httpx.post(f"{a.url}/api/feedback", json=POST, timeout=30)
    assert r.status_code == 201, r.text
    assert healthz(b)["feedback"] == start + 1
    r = httpx.post(f"{b.url}/api/feedback", json={**POST, "rating": "up", "comment": "posted to the other"},
                   timeout=30)
    assert r.status_code == 201
    assert healthz(a)["feedback"] == healthz(b)["feedback"] == start + 2
    assert healthz(a)["feedback_problem"] is None
    assert not (tmp / "unused-feedback.sqlite3").exists()  # nothing went to the embedded default


def test_the_widget_rate_limit_holds_across_both_replicas(replicas):
    a, b, _ = replicas
    ask = {"question": "How do I get an address off the bounce list?"}  # searched on the Chroma server
    codes = []
    for replica in [a, b, a]:  # WIDGET_RATE (3) questions, spread over both
        r = httpx.post(f"{replica.url}/widget/api/ask", json=ask, timeout=120)
        codes.append(r.status_code)
        if r.status_code == 200:
            assert r.json()["answered"] and r.json()["sources"]
    assert codes == [200] * WIDGET_RATE
    for replica in (b, a):  # each replica alone would still allow it: together they refuse
        r = httpx.post(f"{replica.url}/widget/api/ask", json=ask, timeout=120)
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert f"{WIDGET_RATE} per day" in r.json()["error"] and int(r.headers["Retry-After"]) >= 1


def test_the_feedback_rate_limit_holds_across_both_replicas(replicas):
    """Every post of the module comes from one client (127.0.0.1) within one day: whatever ran before,
    exactly FEEDBACK_RATE posts are stored in all, over both replicas, and the rest are refused."""
    a, b, _ = replicas
    statuses = [httpx.post(f"{(a, b)[i % 2].url}/api/feedback", json=POST, timeout=30).status_code
                for i in range(FEEDBACK_RATE + 1)]
    assert set(statuses) == {201, 429} and statuses[-1] == 429
    assert statuses == sorted(statuses)  # accepted until the limit, refused after it
    assert healthz(a)["feedback"] == healthz(b)["feedback"] == FEEDBACK_RATE  # a refused post is not stored
