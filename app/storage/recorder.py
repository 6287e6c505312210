"""Recording answers in the conversation log without failing or slowing them.

The surfaces (chat, widget, API) call ``Recorder.record(answer, channel, latency_ms)`` after an
answer is made. The row is written by one background thread (redaction included), in the order
the calls came; ``record`` waits at most ``wait`` seconds (50 ms) for the row's id, which the
surfaces hand back to the agent so a thumbs up/down can be attached to it (``rate``, queued behind
the writes). A write that takes longer still happens, the answer just goes out without an id; a
full queue (``max_queue`` rows waiting: the database is stuck), a failed write or a failed rating
is logged as a warning (at most one line a minute) and counted (``stats``, shown on /healthz).
Nothing the log does raises into a request.

The same thread deletes expired rows (``ConversationLog.purge``) at most once an hour, waking up
for it when nothing is written; ``Storage.open`` purged once at start-up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from app.storage.conversations import ConversationLog, LogEntry

log = logging.getLogger("bouncebot.conversations")
PURGE_EVERY = 3600.0  # seconds between retention purges
WARN_EVERY = 60.0  # seconds between two warning lines (the counts say how many failed in between)
_STOP = object()


class _Job:
    __slots__ = ("kind", "args", "done", "result")

    def __init__(self, kind: str, args: tuple):
        self.kind, self.args, self.done, self.result = kind, args, threading.Event(), None


class Recorder:
    def __init__(self, conversations: ConversationLog, wait: float = 0.05, rate_wait: float = 2.0,
                 max_queue: int = 1000, purge_every: float = PURGE_EVERY, clock=time.time):
        self.log, self.wait, self.rate_wait, self.purge_every, self.clock = (
            conversations, wait, rate_wait, purge_every, clock)
        self.recorded = self.failed = self.dropped = self.purged = 0
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()  # request threads and the writer both count
        self._last_purge = clock()  # Storage.open purged at start-up
        self._last_warning = float("-inf")

    # ------------------------------------------------------------------ the surfaces' calls

    def record(self, answer, channel: str, latency_ms: float) -> int | None:
        """Queue ``answer`` (an ``Answer`` or its dict) for the log; its row id when written within
        ``wait`` seconds, else None. Never raises."""
        try:
            entry = LogEntry.of(answer, channel, latency_ms)
        except Exception as e:  # noqa: BLE001  (a malformed answer is the log's problem, not the agent's)
            self._count("failed")
            self._failure("an answer could not be read for the log", e)
            return None
        job = self._submit("record", (entry,))
        if job is None or not job.done.wait(self.wait):
            return None
        return job.result

    def rate(self, log_id: int, rating: str, comment: str = "") -> bool:
        """Attach a thumbs up/down to the row ``log_id`` (after the writes queued before it); False when the
        id is unknown, or the rating could not be written in ``rate_wait`` seconds. Never raises."""
        job = self._submit("rate", (log_id, rating, comment or ""))
        if job is None or not job.done.wait(self.rate_wait):
            return False
        return bool(job.result)

    def stats(self) -> dict:
        return {"recorded": self.recorded, "failed": self.failed, "dropped": self.dropped,
                "waiting": self._queue.qsize(), "purged": self.purged}

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job is done (tests, shutdown); False on timeout."""
        job = self._submit("noop", (), block=timeout)
        return job is not None and job.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return
            thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread

    def _submit(self, kind: str, args: tuple, block: float | None = None) -> _Job | None:
        """The job queued (``block``: waiting up to that many seconds for room), or None: dropped, counted."""
        job = _Job(kind, args)
        try:
            self._queue.put(job, timeout=block) if block else self._queue.put_nowait(job)
        except queue.Full:
            self._count("dropped")
            self._failure(f"the conversation log is {self._queue.maxsize} rows behind; a {kind} was dropped", None)
            return None
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="bouncebot-conversation-log",
                                                    daemon=True)
                    self._thread.start()
        return job

    def _loop(self) -> None:
        while True:
            wait = max(0.0, self._last_purge + self.purge_every - self.clock())
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else None
            except queue.Empty:
                job = None
            if job is _STOP:
                return
            if job is not None:
                self._run(job)
            if self.clock() - self._last_purge >= self.purge_every:
                self._last_purge = self.clock()
                try:
                    self.purged += self.log.purge(now=self.clock())
                except Exception as e:  # noqa: BLE001
                    self._failure("expired conversation-log rows could not be deleted", e)

    def _run(self, job: _Job) -> None:
        try:
            if job.kind == "record":
                job.result = self.log.record(*job.args)
                self._count("recorded")
            elif job.kind == "rate":
                job.result = self.log.rate(*job.args)
        except Exception as e:  # noqa: BLE001  (logged and counted; the answer went out)
            self._count("failed")
            self._failure(f"the conversation log did not keep a {job.kind}", e)
        finally:
            job.done.set()

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + 1)

    def _failure(self, what: str, e: Exception | None) -> None:
        now = time.monotonic()
        if now - self._last_warning < WARN_EVERY:
            return
        self._last_warning = now
        log.warning("%s%s (so far: %d failed, %d dropped; answers are not affected)", what,
                    f": {e}" if e is not None else "", self.failed, self.dropped)
