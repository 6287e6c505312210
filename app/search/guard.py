"""Every call to the vector store goes through one guard: bounded in time,
bounded in number, and remembered.

- **Time**: a call that has not answered within ``timeout`` seconds raises
  ``SearchUnavailable`` (the call itself goes on in a worker thread of the
  guard's own; the caller is free).
- **Number**: at most ``workers`` calls run at once; more wait their turn, within
  the same time limit. A call whose caller gave up before it started is
  cancelled, so a hung store cannot collect a backlog of stale searches, and
  the web server's own threads are never the ones left waiting.
- **Memory**: after a failure the guard fails fast for ``cooldown`` seconds,
  then lets the next call try again. ``status()`` says what it last saw, for
  ``/healthz``; ``probe()`` checks the store in the background without ever
  making its caller wait.

Look-up never goes through here: it needs no store.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

from app.errors import BouncebotError, SearchUnavailable

T = TypeVar("T")

__all__ = ["SearchGuard"]


class SearchGuard:
    def __init__(self, timeout: float = 2.0, workers: int = 16, cooldown: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.timeout, self.workers, self.cooldown, self.clock = timeout, workers, cooldown, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store")
        self._lock = threading.Lock()
        self._problem: str | None = None  # what went wrong last, None while the store answers
        self._since: float | None = None  # wall-clock time of the first failure in a row
        self._retry_at = 0.0
        self._last_ok: float | None = None
        self._probing = False

    # ------------------------------------------------------------------ calls

    def call(self, what: str, fn: Callable[..., T], *args, timeout: float | None = None, **kwargs) -> T:
        """``fn(*args, **kwargs)`` within the time limit, or ``SearchUnavailable``.

        ``what`` names the call for messages ("search", "opening the index").
        Errors that are the user's to fix (``IndexNotReady``) pass through as
        they are; anything else the store raises becomes ``SearchUnavailable``.
        """
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            if self._problem and self.clock() < self._retry_at:
                raise SearchUnavailable(self._problem)
        future = self._pool.submit(fn, *args, **kwargs)
        try:
            result = future.result(timeout=limit)
        except FutureTimeout:
            future.cancel()  # not started yet (every worker busy): it never will be
            raise self._fail(f"the vector store did not answer {what} within {limit:g} s") from None
        except BouncebotError:
            raise
        except Exception as e:  # the store's own errors: connection refused, corrupt file, ...
            raise self._fail(f"{what} failed: {type(e).__name__}: {str(e)[:200]}") from e
        self._succeeded()
        return result

    def _fail(self, problem: str) -> SearchUnavailable:
        with self._lock:
            if self._problem is None:
                self._since = time.time()
            self._problem = problem
            self._retry_at = self.clock() + self.cooldown
        return SearchUnavailable(problem)

    def _succeeded(self) -> None:
        with self._lock:
            self._problem, self._since, self._last_ok = None, None, time.time()

    # ----------------------------------------------------------------- health

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
