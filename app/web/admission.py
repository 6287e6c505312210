"""Admission for the answer routes (``/api/ask``, ``/widget/api/ask`` and their streams): at most
``active`` answers are worked on at once in a process; the others wait their turn in a queue on the
event loop (a waiting request holds no thread); a request that finds ``queue`` others already
waiting gets a 503 at once, in the API's error shape with a ``Retry-After``, and nothing else is
refused for load.

Why: an answer is CPU work (the query embedding, BM25, the contract's models) on threads that share
one interpreter lock. Before, every request took a thread of its own (up to the server's 40), so under
50 clients dozens of answers ran at once and each went as slowly as all of them together: a 0.6 ms
vector-store query took 15-25 ms at the median, and with the wait for the guard's pool up to 0.9-1.2 s
at load ~11; the store guard's 2-second limit (``app.search.guard``) was reached on a busier machine,
and busy answers were refused as "search is unavailable". A few answers at a time finish as fast and
the rest wait in line, where waiting is cheap and visible (``/healthz``'s ``answers``).

How many at once (``ACTIVE``): measured with 50 clients on one embedded process, 2 cores, load 7-8 from
other work, 15 s a run (``python -m evals.load``'s clients, the guard's call times recorded): unbounded
193-197 answers/s, a store call's p99 118-235 ms (max 185-579 ms); two a core 153/s, p99 29 ms; four a
core 178-182/s (-7%), p99 59-61 ms (max 142-222 ms); six a core 195/s, p99 79 ms. Fewer at once keeps
a store call's time the store's, more overlaps the answers' interpreter-free part (the ONNX embedding)
better; four a core is the middle. With ``serve --workers N`` the N processes share those
(``for_workers``): more at once would only queue inside the Chroma server instead, counted against the
guard's limit (two replicas of two workers, three runs at eight a process: searches p95 227-328 ms; one run at
four: 127-147 ms).

Bad input is refused before it queues (the body is validated first); the streams give their slot back
once the answer is decided (their first event), so a language model's token stream does not hold it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from app.errors import ServerBusy

T = TypeVar("T")

__all__ = ["Admission", "ACTIVE", "QUEUE"]

ACTIVE = 4 * max(1, os.cpu_count() or 1)  # answers worked on at once: four a core (see the module's doc)
QUEUE = 128  # answers waiting beyond those; one more is refused at once (503, Retry-After)
RETRY_AFTER = 1  # seconds, in the refusal's Retry-After


class Admission:
    def __init__(self, active: int = ACTIVE, queue: int = QUEUE):
        if active < 1 or queue < 0:
            raise ValueError(f"admission needs active >= 1 and queue >= 0, not {active} and {queue}")
        self.active, self.queue = active, queue
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop, on first use
        self._loop = None  # that loop (a test's next client runs another one: it gets slots of its own)
        self.running = 0
        self.waiting = 0
        self.admitted = 0
        self.refused = 0

    @classmethod
    def for_workers(cls, workers: int, queue: int = QUEUE, at_once: int = 0) -> "Admission":
        """One of ``serve --workers N``'s processes: the machine's ``at_once`` answers (0: ``ACTIVE``)
        shared between them (two at least each, one when ``at_once`` is 1), so that N workers do not
        put N times the work on the same cores."""
        total = at_once or ACTIVE
        return cls(active=max(min(2, total), total // max(1, workers)), queue=queue)

    @classmethod
    def from_settings(cls, settings) -> "Admission":
        """``BOUNCEBOT_ANSWERS_AT_ONCE`` (the machine's) and ``BOUNCEBOT_ANSWER_QUEUE`` (a process's)."""
        return cls.for_workers(settings.workers, queue=settings.answer_queue, at_once=settings.answers_at_once)

    async def run(self, fn: Callable[..., T], *args, **kwargs):
        """``fn(*args, **kwargs)`` in a worker thread once a slot is free, or the 503 response
        (``JSONResponse``) when ``queue`` requests are waiting already."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self.active)
        if self.waiting >= self.queue and self._slots.locked():
            self.refused += 1
            return self.busy()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        self.admitted += 1
        slots = self._slots
        work = asyncio.ensure_future(run_in_threadpool(fn, *args, **kwargs))

        def free(_=None) -> None:
            self.running -= 1
            slots.release()

        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            # The request was cancelled; its thread cannot be: the slot is given back when the work ends.
            work.add_done_callback(free) if not work.done() else free()
            raise
        except BaseException:
            free()
            raise
        free()
        return result

    def busy(self) -> JSONResponse:
        """The refusal: 503 in the API's error shape (``{"error": ...}``), with ``Retry-After``."""
        error = ServerBusy(self.running, self.waiting, RETRY_AFTER)
        return JSONResponse({"error": str(error)}, status_code=error.http_status,
                            headers={"Retry-After": str(error.retry_after)})

    def state(self) -> dict:
        """For ``/healthz``: the limits and what is in them now, and the counts since start."""
        return {"active": self.active, "queue": self.queue, "running": self.running, "waiting": self.waiting,
                "admitted": self.admitted, "refused": self.refused}
