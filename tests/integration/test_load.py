"""The load harness (``evals/load.py``, what ``make bench`` runs) on a tiny run: 2 clients for 2 s
against a real server on loopback (``tests/servers.py`` LiveServer: the real app, model and Chroma)."""

from __future__ import annotations

import pytest

from evals.load import dev_requests, run_load, table

from ..conftest import run_coroutine

pytestmark = pytest.mark.slow


def test_the_dev_split_requests_are_mixed_single_turn_and_conversations():
    bodies = dev_requests()
    assert len(bodies) > 200 and all(b["question"] for b in bodies)
    assert any("history" in b for b in bodies[:4]) and any("history" not in b for b in bodies[:4])


def test_a_tiny_run_against_a_live_server_has_no_errors(server):
    result = run_coroutine(run_load([server.url], dev_requests(), clients=2, seconds=2, name="live"))
    assert result.errors == 0, result.kinds
    assert len(result.latencies) >= 2 and result.rate > 0
    assert result.pct(0.5) <= result.pct(0.95) <= result.pct(0.99)
    d = result.as_dict()
    assert d["errors"] == 0 and d["answered"] == len(result.latencies) and d["p99_ms"] >= d["p50_ms"]
    assert "live" in table([result])
    assert len(d["load_average"]) == 2 and len(d["servers"]) == 1
    answers, calls = d["servers"][0]["answers"], d["servers"][0]["store_calls"]
    assert answers["admitted"] >= len(result.latencies) and answers["refused"] == 0  # through the admission
    assert calls["timed_out"] == calls["gave_up_waiting"] == 0
    assert "answers admitted" in table([result]) and "store calls" in table([result])


def test_a_failing_server_is_counted_as_errors_not_hidden(server):
    bodies = [{"question": ""}]  # 422 on every request: each one is an error, with its status
    result = run_coroutine(run_load([server.url], bodies, clients=2, seconds=1))
    assert result.errors > 0 and not result.latencies and set(result.kinds) == {"422"}
