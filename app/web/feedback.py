"""Agents' thumbs up/down on answers, kept in SQLite, and turned into eval
cases: ``bouncebot feedback export`` writes every thumbs-down as a JSON
Lines case in the eval dataset's format, so a bad answer becomes a
regression case once someone fills in what was expected.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.errors import BadFeedback, BadSetting, FeedbackFull, FeedbackTooLarge, FeedbackUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    created   REAL    NOT NULL,
    rating    TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
    comment   TEXT    NOT NULL DEFAULT '',
    question  TEXT    NOT NULL,
    answer    TEXT    NOT NULL,
    answered  INTEGER,
    codes     TEXT    NOT NULL DEFAULT '[]',
    sources   TEXT    NOT NULL DEFAULT '[]'
)
"""
MAX_COMMENT = 2000
MB = 1024 * 1024
# SQLite's primary result codes (extended codes keep these in their low byte)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = (
    5, 6, 8, 11, 13, 14, 26)


@dataclass(frozen=True)
class FeedbackLimits:
    """What one feedback post may hold, and how much the feedback log keeps in all."""

    question_bytes: int = Settings.max_question_bytes  # the same limit as for questions (UTF-8 bytes)
    answer_bytes: int = 64 * 1024
    comment_chars: int = MAX_COMMENT
    list_items: int = 100  # codes and sources each
    list_bytes: int = 64 * 1024  # codes and sources each, as stored (JSON, UTF-8)
    database_bytes: int = int(Settings.feedback_max_mb * MB)  # the database's content (pages in use)

    @classmethod
    def from_settings(cls, settings: Settings) -> "FeedbackLimits":
        if not math.isfinite(settings.feedback_max_mb):
            raise BadSetting(f"BOUNCEBOT_FEEDBACK_MAX_MB={settings.feedback_max_mb!r} is not a finite number.")
        return cls(question_bytes=settings.max_question_bytes, database_bytes=int(settings.feedback_max_mb * MB))


@dataclass(frozen=True)
class Feedback:
    id: int
    created: float
    rating: str
    comment: str
    question: str
    answer: str
    answered: bool | None
    codes: list
    sources: list


def _utf8_size(field: str, text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadFeedback(f"the {field} contains characters that are not text (lone UTF-16 surrogates such as "
                          "\\ud800): send it as valid UTF-8.") from None


class FeedbackLog:
    """Feedback rows in one SQLite file (WAL, ``synchronous=FULL``: a row is on disk when ``add`` returns).

    Opening checks that the file can be written (a write, rolled back) and
    raises ``FeedbackUnavailable`` if not. Each ``add`` checks that the file
    on disk is still the one opened (a deleted or replaced file, or its
    deleted folder, would otherwise take writes that are lost at the next
    start) and turns SQLite's write errors into ``FeedbackUnavailable``
    (``FeedbackFull`` for a full disk or the ``database_bytes`` cap).
    ``read_only=True`` opens an existing file for reading only (export).
    """

    def __init__(self, path: Path, limits: FeedbackLimits | None = None, read_only: bool = False):
        self.path = Path(path)
        self.limits = limits or FeedbackLimits()
        self.read_only = read_only
        self._lock = threading.Lock()
        try:
            if read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        except OSError as e:
            raise FeedbackUnavailable(
                f"The feedback database {self.path} cannot be created: {e.strerror or e}. Make its folder "
                "writable by the user running Bouncebot, or set BOUNCEBOT_FEEDBACK_DB to a file in a writable folder."
            ) from e
        except sqlite3.Error as e:
            raise self._unavailable(e, starting=True) from e
        try:
            if read_only:
                self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()
                return
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # each commit synced: a 201 means the row is on disk
            self._db.execute(SCHEMA)
            self._db.execute("BEGIN IMMEDIATE")  # the start-up check: a real write, rolled back
            try:
                self._db.execute("INSERT INTO feedback (created, rating, question, answer) VALUES (0, 'up', '', '')")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            st = os.stat(self.path)
        except (sqlite3.Error, OSError) as e:
            self._db.close()
            if isinstance(e, OSError):
                raise self._moved(starting=True) from e
            raise self._unavailable(e, starting=True) from e
        self._identity = (st.st_dev, st.st_ino)

    @classmethod
    def from_settings(cls, settings: Settings, read_only: bool = False) -> "FeedbackLog":
        """The feedback log in the file ``BOUNCEBOT_FEEDBACK_DB`` names, with the limits from the settings."""
        return cls(settings.feedback_db, FeedbackLimits.from_settings(settings), read_only=read_only)

    # ------------------------------------------------------------------ errors

    def _unavailable(self, e: sqlite3.Error, starting: bool = False, reading: bool = False) -> FeedbackUnavailable:
        """SQLite's error as one that says what to do."""
        code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
        if starting:
            lead = f"The feedback database {self.path} cannot be {'read' if self.read_only else 'written'}"
        elif reading:
            lead = f"Feedback could not be read from the feedback database {self.path}"
        else:
            lead = f"Feedback was not saved: the feedback database {self.path} cannot be written"
        elsewhere = "or set BOUNCEBOT_FEEDBACK_DB to a file in a writable folder"
        restart = "." if starting else " and restart Bouncebot."
        if code == SQLITE_FULL:
            return FeedbackFull(f"{lead}: the disk is full (SQLite: {e}). Free space on that disk (feedback is "
                                "accepted again at once), or set BOUNCEBOT_FEEDBACK_DB to a file on another disk"
                                f"{restart}")
        if code == SQLITE_READONLY:
            return FeedbackUnavailable(f"{lead}: it is read-only (SQLite: {e}). Make the file and its folder "
                                       f"writable by the user running Bouncebot, {elsewhere}{restart}")
        if code == SQLITE_CANTOPEN:
            return FeedbackUnavailable(f"{lead}: SQLite cannot open it ({e}). Check that it is a file, not a "
                                       "folder, and that its folder exists and is writable by the user running "
                                       f"Bouncebot, {elsewhere}{restart}")
        if code in (SQLITE_BUSY, SQLITE_LOCKED):
            return FeedbackUnavailable(f"{lead}: another process keeps it locked (SQLite: {e}). Try again in a "
                                       "moment; if it persists, stop the other process using that file.")
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return FeedbackUnavailable(f"{lead}: it is damaged or not an SQLite database (SQLite: {e}). Move it "
                                       f"aside (a new one is created), {elsewhere}{restart}")
        return FeedbackUnavailable(f"{lead} (SQLite: {e}). Check the file, its folder and the disk "
                                   f"(BOUNCEBOT_FEEDBACK_DB names the file){restart}")

    def _moved(self, starting: bool = False) -> FeedbackUnavailable:
        if starting:
            return FeedbackUnavailable(f"The feedback database {self.path} disappeared while it was being opened. "
                                       "Check what removes files in its folder (BOUNCEBOT_FEEDBACK_DB names it).")
        return FeedbackUnavailable(
            f"Feedback was not saved: the feedback database {self.path} was deleted or replaced while Bouncebot "
            "was running, so a write would be lost. Restart Bouncebot to open it (or create it) again, and find "
            "what removed it (a clean-up of its folder?); feedback given since then was refused, not stored."
        )

    def problem(self) -> str | None:
        """Why an ``add`` would be refused right now because of the file on disk (for a health check), or None."""
        if self.read_only:
            return f"the feedback database {self.path} was opened read-only"
        try:
            st = os.stat(self.path)
        except OSError:
            return str(self._moved())
        return None if (st.st_dev, st.st_ino) == self._identity else str(self._moved())

    # ------------------------------------------------------------------ writing

    def _check(self, rating: str, question: str, answer: str, comment: str, codes: list, sources: list
               ) -> tuple[str, str, int]:
        """Validate a post; its codes and sources as stored, and its size in bytes."""
        lim = self.limits
        if rating not in ("up", "down"):
            raise BadFeedback("rating must be 'up' or 'down'.")
        if not question.strip():
            raise BadFeedback("feedback needs the question it is about.")
        size = _utf8_size("question", question)
        if size > lim.question_bytes:
            raise FeedbackTooLarge("question", size, lim.question_bytes, "bytes")
        n = _utf8_size("answer", answer)
        if n > lim.answer_bytes:
            raise FeedbackTooLarge("answer", n, lim.answer_bytes, "bytes")
        size += n
        if len(comment) > lim.comment_chars:
            raise FeedbackTooLarge("comment", len(comment), lim.comment_chars, "characters")
        size += _utf8_size("comment", comment)
        stored = []
        for field, items in (("codes", codes), ("sources", sources)):
            if not isinstance(items, list):
                raise BadFeedback(f"{field} must be a list.")
            if len(items) > lim.list_items:
                raise FeedbackTooLarge(field, len(items), lim.list_items, "items")
            text = json.dumps(items, ensure_ascii=False)
            n = _utf8_size(field, text)
            if n > lim.list_bytes:
                raise FeedbackTooLarge(field, n, lim.list_bytes, "bytes")
            stored.append(text)
            size += n
        return stored[0], stored[1], size

    def _check_file(self) -> None:
        """The path still names the file that was opened (not deleted, not replaced); called under the lock."""
        try:
            st = os.stat(self.path)
        except OSError:
            raise self._moved() from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise self._moved()

    def _check_room(self, size: int) -> None:
        """Refuse a row that would take the database's content past ``database_bytes``; called under the lock."""
        page_size, pages, free = (self._db.execute(f"PRAGMA {p}").fetchone()[0]
                                  for p in ("page_size", "page_count", "freelist_count"))
        used = (pages - free) * page_size
        if used + size > self.limits.database_bytes:
            raise FeedbackFull(
                f"Feedback was not saved: the feedback database {self.path} is full: it holds {used / MB:,.1f} MB "
                f"and the cap is {self.limits.database_bytes / MB:,.1f} MB (BOUNCEBOT_FEEDBACK_MAX_MB). An operator "
                "should run `bouncebot feedback export --out cases.jsonl` to keep the thumbs-down cases, then delete "
                f"old rows (for example: sqlite3 {self.path} \"DELETE FROM feedback WHERE created < "
                "strftime('%s','now','-90 days')\"; posts are accepted again at once), or raise "
                "BOUNCEBOT_FEEDBACK_MAX_MB and restart."
            )

    def add(self, rating: str, question: str, answer: str, comment: str = "", answered: bool | None = None,
            codes: list | None = None, sources: list | None = None) -> int:
        codes_json, sources_json, size = self._check(rating, question, answer, comment, codes or [], sources or [])
        if self.read_only:
            raise FeedbackUnavailable(f"Feedback was not saved: the feedback database {self.path} was opened "
                                      "read-only.")
        with self._lock:
            self._check_file()
            try:
                self._check_room(size)
                cur = self._db.execute(
                    "INSERT INTO feedback (created, rating, comment, question, answer, answered, codes, sources)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), rating, comment, question, answer, None if answered is None else int(answered),
                     codes_json, sources_json),
                )
            except sqlite3.Error as e:
                raise self._unavailable(e) from e
            self._check_file()  # removed while writing: the row went into a file that is gone
            return int(cur.lastrowid)

    # ------------------------------------------------------------------ reading

    def all(self, rating: str | None = None) -> list[Feedback]:
        sql = "SELECT id, created, rating, comment, question, answer, answered, codes, sources FROM feedback"
        args: tuple = ()
        if rating:
            sql, args = sql + " WHERE rating = ?", (rating,)
        with self._lock:
            try:
                rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
            except sqlite3.Error as e:
                raise self._unavailable(e, reading=True) from e
        return [
            Feedback(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]), json.loads(r[7]),
                     json.loads(r[8]))
            for r in rows
        ]

    def count(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
            except sqlite3.Error as e:
                raise self._unavailable(e, reading=True) from e

    def close(self) -> None:
        with self._lock:
            self._db.close()


def as_eval_case(f: Feedback) -> dict:
    """A thumbs-down as an eval case. What came back is recorded under
    ``feedback`` and ``expect`` is left for a person to fill in; the case is
    tagged so the eval runner can tell it apart from reviewed cases."""
    return {
        "id": f"feedback-{f.id:05d}",
        "category": "feedback",
        "question": f.question,
        "expect": {},
        "feedback": {
            "rating": f.rating,
            "comment": f.comment,
            "answer": f.answer,
            "answered": f.answered,
            "codes": f.codes,
            "sources": f.sources,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(f.created)),
        },
    }


def export_down(log: FeedbackLog, out) -> int:
    n = 0
    for f in log.all("down"):
        out.write(json.dumps(as_eval_case(f), ensure_ascii=False) + "\n")
        n += 1
    return n
