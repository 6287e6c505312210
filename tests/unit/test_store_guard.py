"""The vector-store guard: every store call bounded in time and number, and
remembered (fast, with fakes: the real Chroma server case is in
tests/integration/test_store_faults.py)."""

from __future__ import annotations

import threading
import time

import pytest

from app.errors import IndexNotReady, SearchUnavailable
from app.search.guard import SearchGuard


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_call_that_answers_returns_its_result_and_status_is_ok():
    guard = SearchGuard(timeout=1)
    assert guard.call("the search", lambda a, b=0: a + b, 2, b=3) == 5
    assert guard.status()["state"] == "ok"


def test_a_hung_call_raises_within_the_timeout_and_marks_the_store_unavailable():
    release = threading.Event()
    guard = SearchGuard(timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(SearchUnavailable, match="did not answer the search within 0.2 s"):
        guard.call("the search", release.wait)
    assert time.monotonic() - t0 < 10  # returned (the call itself is still hanging)
    status = guard.status()
    assert status["state"] == "unavailable" and "0.2 s" in status["problem"]
    release.set()


def test_calls_beyond_the_workers_wait_their_turn_and_a_stale_one_never_runs():
    release = threading.Event()
    guard = SearchGuard(timeout=0.2, workers=2, cooldown=0)
    for _ in range(2):  # both workers stuck on a hung store
        with pytest.raises(SearchUnavailable):
            guard.call("the search", release.wait)
    ran = []
    with pytest.raises(SearchUnavailable, match="within 0.2 s"):
        guard.call("the search", lambda: ran.append("stale"))  # queued behind them; its caller gives up
    release.set()
    assert guard.call("the search", lambda: "back") == "back"  # the workers are free again
    assert ran == []  # the abandoned call was cancelled, not run late


def test_many_quick_calls_at_once_all_succeed():
    from concurrent.futures import ThreadPoolExecutor

    guard = SearchGuard(timeout=5, workers=2)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: guard.call("the search", lambda: time.sleep(0.001) or i), range(200)))
    assert results == list(range(200)) and guard.status()["state"] == "ok"


def test_after_a_failure_calls_fail_fast_until_the_cooldown_ends():
    clock = Clock()
    guard = SearchGuard(timeout=1, cooldown=5, clock=clock)

    def broken():
        raise ConnectionError("connection refused")

    with pytest.raises(SearchUnavailable, match="ConnectionError: connection refused"):
        guard.call("the search", broken)
    tried = []
    with pytest.raises(SearchUnavailable):
        guard.call("the search", lambda: tried.append(1))
    assert tried == []  # within the cooldown: not even tried
    clock.now = 5.1
    assert guard.call("the search", lambda: tried.append(1) or "ok") == "ok"
    assert tried == [1] and guard.status()["state"] == "ok"


@pytest.mark.parametrize("error", [RuntimeError("database disk image is malformed"), OSError("disk I/O error"),
                                   ValueError("Collection does not exist")])
def test_any_store_error_becomes_search_unavailable_with_the_reason(error):
    guard = SearchGuard(timeout=1)

    def fail():
        raise error

    with pytest.raises(SearchUnavailable) as info:
        guard.call("the search", fail)
    assert str(error) in str(info.value) and "Exact code look-ups still work" in str(info.value)


def test_the_users_own_errors_pass_through_unchanged():
    guard = SearchGuard(timeout=1)

    def stale():
        raise IndexNotReady("run `bouncebot ingest`")

    with pytest.raises(IndexNotReady):
        guard.call("opening the index", stale)
    assert guard.status()["state"] == "ok"  # the store answered: it is the index that is wrong


def test_probe_never_waits_and_runs_one_check_at_a_time():
    release = threading.Event()
    guard = SearchGuard(timeout=0.3)
    started = []

    def check():
        started.append(1)
        guard.call("a health check", release.wait)

    t0 = time.monotonic()
    guard.probe(check)
    guard.probe(check)  # the first is still running: not started again
    assert time.monotonic() - t0 < 1
    deadline = time.monotonic() + 10
    while guard.status()["state"] == "ok":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert started == [1]
    release.set()
