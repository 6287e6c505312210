"""Agents' thumbs up/down on answers, and their export as eval cases:
``bouncebot feedback export`` writes every thumbs-down as a JSON Lines case in
the eval dataset's format, so a bad answer becomes a regression case once
someone fills in what was expected.

The log itself lives in the storage layer (``app.storage``): SQLite by
default, PostgreSQL with ``BOUNCEBOT_DATABASE_URL``. These names are kept
here for the web layer's callers and tests.
"""

from __future__ import annotations

from app.errors import BadFeedback, BadSetting, FeedbackFull, FeedbackTooLarge, FeedbackUnavailable
from app.storage.feedback import MAX_COMMENT, MB, Feedback, FeedbackLimits, as_eval_case, export_down
from app.storage.sqlite import (SQLITE_BUSY, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_LOCKED,
                                SQLITE_NOTADB, SQLITE_READONLY, FeedbackLog)

__all__ = ["BadFeedback", "BadSetting", "FeedbackFull", "FeedbackTooLarge", "FeedbackUnavailable", "MAX_COMMENT",
           "MB", "Feedback", "FeedbackLimits", "FeedbackLog", "as_eval_case", "export_down", "SQLITE_BUSY",
           "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_FULL", "SQLITE_LOCKED", "SQLITE_NOTADB", "SQLITE_READONLY"]
