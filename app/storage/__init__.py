"""What Bouncebot stores, behind one store with two backends:

- SQLite (the default): the file ``BOUNCEBOT_FEEDBACK_DB``; rate limits are
  counted in memory, per process (``app.web.widget.RateLimiter``);
- PostgreSQL, when ``BOUNCEBOT_DATABASE_URL=postgresql://...`` is set: shared
  by every replica, rate-limit counters included.

The schema is versioned (``app.storage.migrations``) and migrated by the app
when it opens the store. ``Storage.open(settings)`` is called once at
start-up and its parts passed in: ``feedback`` (the ``FeedbackLog`` port)
and ``rate_counter`` (None: count in memory). A new kind of record is one
migration and one class beside ``feedback``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.errors import ConversationLogUnavailable
from app.storage.conversations import ConversationLog, LogEntry
from app.storage.feedback import Feedback, FeedbackLimits, as_eval_case, export_down
from app.storage.sqlite import FeedbackLog

__all__ = ["ConversationLog", "Feedback", "FeedbackLimits", "FeedbackLog", "LogEntry", "Storage", "as_eval_case",
           "export_down"]


@dataclass
class Storage:
    backend: str  # "sqlite" or "postgresql"
    feedback: object  # FeedbackLog (SQLite) or PostgresFeedbackLog
    rate_counter: object | None  # PostgresRateCounter, or None to count in memory
    conversations: ConversationLog | None = None  # the conversation log (issue 15); None when it is off
    conversations_problem: str | None = None  # read_only: why the log could not be opened (an older file)

    @classmethod
    def open(cls, settings: Settings, read_only: bool = False) -> "Storage":
        """Open (and migrate, unless ``read_only``) the store the settings name; fails at once, saying what
        to do, when it cannot be written (``FeedbackUnavailable``)."""
        if settings.database_url:
            from app.storage.postgres import PostgresFeedbackLog, PostgresRateCounter, PostgresStore

            log = PostgresFeedbackLog.from_settings(settings, read_only=read_only)
            # the counters' own connection, with short timeouts: a feedback write never delays a
            # request's rate check, and a database that does not answer is given up on quickly
            counter = PostgresRateCounter(PostgresStore(settings.database_url, connect_timeout=2,
                                                        statement_timeout_ms=1000))
            return cls("postgresql", log, counter)._with_log(settings, read_only)
        feedback = FeedbackLog.from_settings(settings, read_only=read_only)
        return cls("sqlite", feedback, None)._with_log(settings, read_only)

    def _with_log(self, settings: Settings, read_only: bool) -> "Storage":
        """The conversation log beside feedback (migrated with it), its expired rows deleted at start-up
        (``app.storage.recorder.Recorder`` then purges at most hourly). Read-only, a log that cannot be
        opened leaves ``conversations`` None and says why in ``conversations_problem``."""
        try:
            self.conversations = ConversationLog.open(settings, read_only=read_only)
        except ConversationLogUnavailable as e:
            if not read_only:
                self.feedback.close()
                raise
            self.conversations_problem = str(e)
            return self
        if self.conversations is not None and not read_only:
            self.conversations.purge()
        return self

    def close(self) -> None:
        self.feedback.close()
        if self.conversations is not None:
            self.conversations.close()
        if self.rate_counter is not None:
            self.rate_counter.store.close()
