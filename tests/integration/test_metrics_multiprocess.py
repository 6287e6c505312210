"""/metrics with several processes (``serve --workers N``): two real app processes on loopback sharing one
PROMETHEUS_MULTIPROC_DIR, as uvicorn's workers do; either one's /metrics is the whole server's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..servers import free_port
from ..unit.test_metrics_logs import samples, value

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.slow  # starts two server processes


class AppProcess:
    def __init__(self, tmp: Path, name: str, multiproc: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / f"{name}.log", "w+")
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration._metrics_app", str(self.port),
                                      str(tmp / f"{name}-index")], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait(self) -> "AppProcess":
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"the app process did not start: {self.log.read()[-2000:]}")
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def pair(tmp_path):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    a, b = AppProcess(tmp_path, "a", multiproc), AppProcess(tmp_path, "b", multiproc)
    try:
        yield a.wait(), b.wait(), multiproc
    finally:
        a.stop()
        b.stop()


def page(url: str) -> dict:
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200
    return samples(r.text)


def test_either_process_reports_the_whole_servers_figures(pair):
    a, b, multiproc = pair
    for url, question, n in ((a.url, "What does 550 5.1.1 mean?", 3), (b.url, "What does 550 5.1.1 mean?", 2),
                             (b.url, "hi", 1)):
        for _ in range(n):
            assert httpx.post(f"{url}/api/ask", json={"question": question}, timeout=30).status_code == 200
    assert httpx.post(f"{b.url}/api/feedback", json={"rating": "down", "question": "q", "answer": "a"},
                      timeout=10).status_code == 201
    for url in (a.url, b.url):
        got = page(url)
        assert value(got, "bouncebot_answers_total", channel="api", outcome="answered") == 5
        assert value(got, "bouncebot_answers_total", channel="api", outcome="small_talk") == 1
        assert value(got, "bouncebot_http_requests_total", route="/api/ask", status="200") == 6
        assert value(got, "bouncebot_http_request_duration_seconds_count", route="/api/ask") == 6
        assert value(got, "bouncebot_feedback_total", rating="down") == 1

    # a worker that dies: what it counted stays counted; its live gauge is dropped (marked dead on the next scrape)
    b_live = [p for p in os.listdir(multiproc) if p.startswith("gauge_live") and p.endswith(f"_{b.proc.pid}.db")]
    assert b_live
    b.stop(signal.SIGKILL)
    got = page(a.url)
    assert value(got, "bouncebot_answers_total", channel="api", outcome="answered") == 5
    assert got["bouncebot_http_requests_in_progress"] == 1  # the scrape itself, in a
    assert not [p for p in os.listdir(multiproc) if p.endswith(f"_{b.proc.pid}.db") and p.startswith("gauge_live")]
