"""Every call to the vector store goes through one guard: bounded in time,
bounded in number, and remembered.

- **Time**: a call that has not answered within ``timeout`` seconds *of
  running* raises ``SearchUnavailable`` (the call itself goes on in a worker
  thread of the guard's own; the caller is free). The clock starts when a
  worker starts the call, not when it is handed in: the wait for a free worker
  is the server's own load, not the store's slowness (under load the two were
  confused: a 0.6 ms query counted as 2 s behind a busy pool and a contended
  GIL, and answered 503).
- **Number**: at most ``workers`` calls run at once; more wait their turn. A
  waiting call gives up only when the store really is slow: when a call that
  *is* running has gone past its own limit (the workers it waits for are stuck
  on a hung store), or when the guard has just seen the store fail. So a hung
  store still answers 503 within about ``timeout``, while a busy one answers
  late but answers. A call whose caller gave up before it started is
  cancelled, so a hung store cannot collect a backlog of stale searches, and
  the web server's own threads are never the ones left waiting. (How many
  answers a process works on at once, and so how many callers can queue here,
  is the web server's admission: ``app.web.admission``.)
- **Memory**: after a failure the guard fails fast for ``cooldown`` seconds,
  then lets the next call try again. ``status()`` says what it last saw, for
  ``/healthz``; ``probe()`` checks the store in the background without ever
  making its caller wait. ``figures()`` counts the calls and their waits.

Look-up never goes through here: it needs no store.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

from app.errors import BouncebotError, SearchUnavailable

T = TypeVar("T")

__all__ = ["SearchGuard"]

WAITED = 0.001  # seconds: a call started that long after it was handed in counts as having waited
CHECK = 0.05  # seconds: how often a waiting call looks whether the store has turned slow
RECENT = 4096  # the run times of the last this many calls of each kind are kept, for figures()' percentiles
PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))


class SearchGuard:
    def __init__(self, timeout: float = 2.0, workers: int = 16, cooldown: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, timer: Callable[[], float] = time.monotonic):
        """``clock`` paces the cooldown; ``timer`` times the calls (both monotonic seconds)."""
        self.timeout, self.workers, self.cooldown, self.clock = timeout, workers, cooldown, clock
        self.timer = timer
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store")
        self._lock = threading.Lock()
        self._problem: str | None = None  # what went wrong last, None while the store answers
        self._since: float | None = None  # wall-clock time of the first failure in a row
        self._retry_at = 0.0
        self._last_ok: float | None = None
        self._probing = False
        self._failures = 0  # failures so far: a waiting call gives up when this moves
        self._running: dict[int, tuple[float, float, str]] = {}  # call -> (started, its limit, what)
        self._ids = itertools.count()
        self._counts = {"calls": 0, "waited": 0, "timed_out": 0, "gave_up_waiting": 0, "failed": 0}
        self._waited_s = 0.0  # time calls spent between being handed in and starting, in all
        self._ran_s = 0.0  # time the calls ran, in all
        self._recent: dict[str, deque[float]] = {}  # what -> the last calls' run times, seconds

    # ------------------------------------------------------------------ calls

    def call(self, what: str, fn: Callable[..., T], *args, timeout: float | None = None, **kwargs) -> T:
        """``fn(*args, **kwargs)`` within the time limit (counted from when it
        starts running), or ``SearchUnavailable``.

        ``what`` names the call for messages ("search", "opening the index").
        Errors that are the user's to fix (``IndexNotReady``) pass through as
        they are; anything else the store raises becomes ``SearchUnavailable``.
        """
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            if self._problem and self.clock() < self._retry_at:
                raise SearchUnavailable(self._problem)
            failures = self._failures
            self._counts["calls"] += 1
        key, started, box = next(self._ids), threading.Event(), {}
        handed_in = self.timer()

        def run():
            with self._lock:
                box["start"] = start = self.timer()
                self._running[key] = (start, limit, what)
            started.set()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    del self._running[key]
                    ran = self.timer() - start
                    self._ran_s += ran
                    self._recent.setdefault(what, deque(maxlen=RECENT)).append(ran)

        future = self._pool.submit(run)
        problem = self._wait_for_a_worker(future, started, failures)
        if problem is not None:
            raise self._fail(problem, "gave_up_waiting") from None
        start = box["start"]
        with self._lock:
            self._waited_s += max(0.0, start - handed_in)
            self._counts["waited"] += start - handed_in > WAITED
        try:
            result = future.result(timeout=max(0.0, start + limit - self.timer()))
        except FutureTimeout:
            raise self._fail(f"the vector store did not answer {what} within {limit:g} s", "timed_out") from None
        except BouncebotError:
            raise
        except Exception as e:  # the store's own errors: connection refused, corrupt file, ...
            raise self._fail(f"{what} failed: {type(e).__name__}: {str(e)[:200]}", "failed") from e
        self._succeeded()
        return result

    def _wait_for_a_worker(self, future, started: threading.Event, failures: int) -> str | None:
        """Wait until ``future``'s call starts in a worker; the problem (and the call
        cancelled) when the store is slow meanwhile: a running call past its own limit, or
        a failure seen since this call came in. None once it has started (or finished)."""
        while not started.wait(timeout=self._next_check()):
            with self._lock:
                now = self.timer()
                late = [(what, lim) for start, lim, what in self._running.values() if now - start >= lim]
                problem = self._problem if self._failures != failures else None
            if late or problem:
                if not future.cancel():  # it just started: time it as any other
                    started.wait()
                    return None
                if problem:
                    return problem
                what, lim = late[0]
                return f"the vector store did not answer {what} within {lim:g} s"
        return None

    def _next_check(self) -> float:
        """Seconds until the first running call reaches its limit (``CHECK`` at most: a failure
        seen by another caller is noticed that soon)."""
        with self._lock:
            now = self.timer()
            due = min((start + lim - now for start, lim, _ in self._running.values()), default=CHECK)
        return min(CHECK, max(0.001, due))

    def _fail(self, problem: str, kind: str) -> SearchUnavailable:
        with self._lock:
            if self._problem is None:
                self._since = time.time()
            self._problem = problem
            self._retry_at = self.clock() + self.cooldown
            self._failures += 1
            self._counts[kind] += 1
        return SearchUnavailable(problem)

    def _succeeded(self) -> None:
        with self._lock:
            self._problem, self._since, self._last_ok = None, None, time.time()

    # ----------------------------------------------------------------- health

    def figures(self) -> dict:
        """Calls so far: how many, how many started later than ``WAITED`` after being handed in
        (no free worker, or the worker thread not scheduled yet), how many timed out running,
        gave up waiting (the store slow meanwhile) or failed; seconds spent waiting and running,
        in all; how many are running now; and by what was called ("the search", "opening the
        index", ...), the percentiles of the last ``RECENT`` calls' run times, in ms."""
        with self._lock:
            recent = {what: sorted(times) for what, times in self._recent.items()}
            counts = {**self._counts, "waited_s": round(self._waited_s, 3), "ran_s": round(self._ran_s, 3),
                      "running": len(self._running), "workers": self.workers}

        def ms(times: list[float], q: float) -> float:
            return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 1)

        return {**counts, "run_ms": {what: {"n": len(t), **{k: ms(t, q) for k, q in PERCENTILES}}
                                     for what, t in recent.items()}}

    def status(self) -> dict:
        """What the guard last saw: ``{"state": "ok"|"unavailable", ...}``. Never waits."""
        with self._lock:
            if self._problem is None:
                return {"state": "ok", "last_ok": self._last_ok}
            return {"state": "unavailable", "problem": self._problem, "since": self._since,
                    "retry_in": max(0.0, round(self._retry_at - self.clock(), 1))}

    def probe(self, fn: Callable[[], object], every: float = 5.0) -> None:
        """Check the store in the background, at most once per ``every``
        seconds and one at a time; the result shows in ``status()``. ``fn``
        makes its own guarded call(s) (``lambda: guard.call(...)``)."""
        with self._lock:
            recent = self._last_ok is not None and time.time() - self._last_ok < every and self._problem is None
            if self._probing or recent or (self._problem and self.clock() < self._retry_at):
                return
            self._probing = True

        def run():
            try:
                fn()
            except Exception:  # noqa: BLE001 - recorded in status()
                pass
            finally:
                with self._lock:
                    self._probing = False

        threading.Thread(target=run, name="store-probe", daemon=True).start()
