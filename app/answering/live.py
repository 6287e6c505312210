"""Re-index without a restart: a running process follows the index's head.

``LiveAnswerer`` is the answerer a server hands to its doors. It holds one
whole ``Answerer`` at a time, built from one version of the knowledge base
(its code table, articles, support section, other articles and retriever over
the matching index version), and each question is answered by the one it holds
when the question arrives: a swap is one reference assignment, so no answer
mixes two versions and none waits for a swap.

``IndexWatch`` is a daemon thread that reads the head every
``BOUNCEBOT_INDEX_POLL`` seconds (one metadata read). When the head has moved
it reads the knowledge base from ``kb_dir`` again, and only when that KB's
fingerprint is the new version's does it build the next ``Answerer``, open its
index, warm it (first search, other articles) and swap. A KB that does not
match (another machine's ``kb_dir``, a shared volume not yet synced) keeps the
old version serving, with a warning, and is tried again later. Once the
process is on the current version it deletes the version the head left, after
the grace ``app.search.chroma.retire_grace`` (see "Live re-index" there).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from app.answering.answerer import Answerer

log = logging.getLogger("bouncebot.index")

WARM_QUESTION = "warm up: how do I get an address off the bounce list?"
RETRY_POLLS = 10  # a KB that did not match the new version is read again after this many polls


def refreeze() -> bool:
    """In a process that froze its start-up out of the garbage collector (a server:
    ``app.web.workers.freeze_start_up``), freeze the version just swapped in too, after collecting the
    old one's cycles: else every full collection walks the new version's objects again (about 450,000 at
    10,000 articles: 130-490 ms in the middle of an answer). Elsewhere (tests, the CLI) nothing is frozen."""
    import gc

    if not gc.get_freeze_count():
        return False
    gc.collect()
    gc.freeze()
    return True


class LiveAnswerer(Answerer):
    """An ``Answerer`` whose knowledge-base version can be swapped while it serves.

    ``ask`` runs on the answerer held when it is called; every other attribute
    (``table``, ``support``, ``retriever``, ``check``, ...) is the held one's."""

    def __init__(self, first: Answerer):  # noqa: super().__init__ not called: everything is the held answerer's
        object.__setattr__(self, "_held", first)

    @property
    def current(self) -> Answerer:
        return object.__getattribute__(self, "_held")

    def swap(self, new: Answerer) -> Answerer:
        """Serve ``new`` from the next question on; the answerer it replaces."""
        old = self.current
        object.__setattr__(self, "_held", new)
        return old

    def __getattr__(self, name):
        return getattr(self.current, name)

    def __setattr__(self, name, value):
        setattr(self.current, name, value)

    def ask(self, question: str, history=None):
        return self.current.ask(question, history)

    @property
    def retriever(self):
        return self.current.retriever

    def retriever_if_open(self):
        return self.current.retriever_if_open()


class LiveStreamingAnswerer(LiveAnswerer):
    """A ``LiveAnswerer`` over the language-model mode: its token stream is the held answerer's too."""

    def stream_ask(self, question: str, history=None):
        return self.current.stream_ask(question, history)


def live_answerer(first) -> LiveAnswerer:
    """The live answerer for ``first``: one that streams tokens when ``first`` does (the doors ask its type)."""
    streams = getattr(type(first), "stream_ask", Answerer.stream_ask) is not Answerer.stream_ask
    return (LiveStreamingAnswerer if streams else LiveAnswerer)(first)


class IndexWatch:
    """Follows the index head for ``live`` (see the module's docstring).

    ``version()`` is the head's current version name (a cheap read);
    ``rebuild(name)`` returns a warmed ``Answerer`` for that version, or None
    when the KB on disk is not that version's; ``retire()`` deletes the
    previous version when its grace has passed."""

    def __init__(self, live: LiveAnswerer, poll: float, version: Callable[[], str | None],
                 rebuild: Callable[[str], Answerer | None], retire: Callable[[], str | None] = lambda: None):
        self.live, self.poll = live, poll
        self._version, self._rebuild, self._retire = version, rebuild, retire
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skip: dict[str, int] = {}  # a version whose KB did not match: polls to wait before trying again
        self.swaps = 0

    def opened(self) -> str | None:
        retriever = self.live.retriever_if_open()
        collection = getattr(retriever, "collection", None)
        return getattr(collection, "name", None)

    def check(self) -> bool:
        """One poll: swap when the head has moved (True when it swapped). Never raises."""
        try:
            name = self._version()
            opened = self.opened()
            if not name or opened is None:
                return False  # an index built before versions, or not opened yet (the first search opens the head's)
            if name == opened:
                retired = self._retire()
                if retired:
                    log.info("index: removed the previous version %s", retired)
                return False
            if self._skip.get(name, 0) > 0:
                self._skip[name] -= 1
                return False
            t0 = time.perf_counter()
            new = self._rebuild(name)
            if new is None:
                self._skip[name] = RETRY_POLLS
                log.warning("index: the head moved to %s, but the knowledge base in this process's kb_dir is not "
                            "that version's; still serving %s. Give every replica the same kb_dir (a shared "
                            "volume), or run `bouncebot ingest` from it.", name, opened)
                return False
            self.live.swap(new)
            refreeze()
            self.swaps += 1
            self._skip.clear()
            log.info("index: now serving %s (was %s; ready in %.2f s)", self.opened(), opened,
                     time.perf_counter() - t0)
            return True
        except Exception as e:  # noqa: BLE001 - the store is down or the swap failed: keep serving, try next poll
            log.warning("index: checking for a new version failed (%s: %s); still serving the version opened",
                        type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            return False

    def start(self) -> "IndexWatch":
        if self._thread is None and self.poll > 0:
            self._thread = threading.Thread(target=self._run, name="bouncebot-index-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.check()
