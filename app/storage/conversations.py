"""The conversation log (issue 15): one row per answered message of the chat, the widget and the
JSON API (the CLI is not logged), in the table ``conversation_log`` (migration 4) of the store
feedback is kept in: the SQLite file ``BOUNCEBOT_FEEDBACK_DB``, or PostgreSQL with
``BOUNCEBOT_DATABASE_URL``.

- ``LogEntry.of(answer.to_dict(), channel, latency_ms)`` is what is kept of an answer: its mode,
  intent, answered / refused (an "I don't know": not answered, no codes, no recipients, not small
  talk), the language model's fallback reason, the question and answer texts, each code (tabled or
  not, its reason), each source (article, section, link), the latency; feedback comes later (``rate``).
- ``record`` redacts the texts (``app.storage.redact``) unless ``BOUNCEBOT_LOG_KEEP_PERSONAL_DATA``
  is on, caps them at ``MAX_TEXT`` characters, and stores the row; ``purge`` deletes rows older than
  ``BOUNCEBOT_LOG_RETENTION_DAYS`` (``app.storage.recorder`` runs it at start-up and hourly).
- In SQLite the log shares the feedback file: it stops taking rows when the file's content reaches
  ``SHARE_OF_FEEDBACK_CAP`` of ``BOUNCEBOT_FEEDBACK_MAX_MB``, so it never takes the room feedback needs.

The surfaces write through ``app.storage.recorder.Recorder`` (off the request path; a failed write
is logged and counted, never shown to the agent).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from app.config import Settings
from app.errors import ConversationLogUnavailable
from app.storage.redact import redact

CHANNELS = ("chat", "widget", "api")
MODES = ("default", "llm")
RATINGS = ("up", "down")
MAX_TEXT = 4000  # characters of a question or an answer kept
MAX_COMMENT = 2000  # as for feedback
MAX_ITEMS = 50  # codes and sources kept per row (the look-up examines at most 50 codes)
SHARE_OF_FEEDBACK_CAP = 0.8  # SQLite: the log writes while the shared file holds less than this of the cap
DAY = 86400.0
COLUMNS = ("id, created, channel, mode, intent, answered, refused, fallback, question, answer, codes, sources, "
           "latency_ms, rating, comment, redacted")


def _get(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


@dataclass(frozen=True)
class LogEntry:
    id: int | None
    created: float
    channel: str
    mode: str
    intent: str
    answered: bool
    refused: bool
    fallback: str | None
    question: str
    answer: str
    codes: list[dict]
    sources: list[dict]
    latency_ms: float
    rating: str | None = None
    comment: str | None = None
    redacted: bool = True

    @classmethod
    def of(cls, answer, channel: str, latency_ms: float, now: float | None = None) -> "LogEntry":
        """What is logged of ``answer``: the answer contract as a dict (``Answer.to_dict()``) or any
        object with its fields (not redacted yet: ``record`` does it)."""
        if channel not in CHANNELS:
            raise ValueError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")
        d = answer.to_dict() if hasattr(answer, "to_dict") else answer
        codes = [{"code": _get(c, "code"), "tabled": _get(c, "match") == "exact", "reason": _get(c, "reason")}
                 for c in (_get(d, "codes") or [])]
        sources = [{"article": _get(s, "article"), "section": _get(s, "section"), "url": _get(s, "url")}
                   for s in (_get(d, "sources") or [])]
        answered = bool(_get(d, "answered"))
        intent = _get(d, "intent") or "question"
        llm = _get(d, "llm")
        return cls(
            id=None, created=time.time() if now is None else float(now), channel=channel,
            mode=_get(d, "mode") or "default", intent=intent, answered=answered,
            refused=not answered and not codes and not (_get(d, "recipients") or []) and intent != "small_talk",
            fallback=_get(llm, "fallback") if llm is not None else None,
            question=str(_get(d, "question") or ""), answer=str(_get(d, "answer") or ""),
            codes=codes, sources=sources, latency_ms=float(latency_ms), redacted=False,
        )

    @classmethod
    def from_row(cls, r) -> "LogEntry":
        return cls(int(r[0]), float(r[1]), r[2], r[3], r[4], bool(r[5]), bool(r[6]), r[7], r[8], r[9],
                   json.loads(r[10]), json.loads(r[11]), float(r[12]), r[13], r[14], bool(r[15]))

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kept_part(text: str, limit: int) -> str:
    """The part of ``text`` redaction needs to read for ``limit`` characters to be kept: twice that, cut at a
    line end (an address, a number or a signed name never spans one; else at a space), so a 200 KB paste
    is not redacted whole (measured: 133 ms) to keep its first 4,000 characters."""
    if len(text) <= 2 * limit:
        return text
    cut = text.rfind("\n", limit, 2 * limit)
    if cut < 0:
        cut = text.rfind(" ", limit, 2 * limit)
    return text[: cut if cut > 0 else 2 * limit]


class ConversationLog:
    """The log's interface, with what both backends share (redaction, caps, checks); a backend
    supplies ``_insert``, ``_rate``, ``_select``, ``_delete_before``, ``_count``, ``_get`` and ``close``."""

    where = "the conversation log"

    def __init__(self, keep_personal_data: bool = False, retention_days: float = 90, read_only: bool = False):
        if not retention_days > 0:
            raise ValueError("retention_days must be more than 0")
        self.keep_personal_data, self.retention_days, self.read_only = keep_personal_data, retention_days, read_only

    @staticmethod
    def open(settings: Settings, read_only: bool = False) -> "ConversationLog | None":
        """The log the settings name (None when ``BOUNCEBOT_CONVERSATION_LOG`` is off), opened and migrated
        (unless ``read_only``); ``ConversationLogUnavailable``, saying what to do, when it cannot be."""
        if not settings.conversation_log:
            return None
        options = dict(keep_personal_data=settings.log_keep_personal_data,
                       retention_days=settings.log_retention_days, read_only=read_only)
        if settings.database_url:
            from app.storage.conversations_pg import PostgresConversationLog

            return PostgresConversationLog(settings.database_url, **options)
        return SqliteConversationLog(settings.feedback_db, cap_bytes=int(settings.feedback_max_mb * 1024 * 1024
                                                                         * SHARE_OF_FEEDBACK_CAP), **options)

    # ------------------------------------------------------------------ the interface

    def prepare(self, entry: LogEntry) -> LogEntry:
        """The entry as stored: checked, redacted (unless keep), capped."""
        if entry.channel not in CHANNELS or entry.mode not in MODES:
            raise ValueError(f"channel {entry.channel!r} / mode {entry.mode!r}: not one the log knows")
        def clean(text: str, limit: int = MAX_TEXT) -> str:
            return _cap(text if self.keep_personal_data else redact(_kept_part(text, limit)), limit)

        return replace(entry, question=clean(entry.question), answer=clean(entry.answer),
                       codes=list(entry.codes[:MAX_ITEMS]), sources=list(entry.sources[:MAX_ITEMS]),
                       comment=clean(entry.comment, MAX_COMMENT) if entry.comment else None,
                       rating=entry.rating if entry.rating in RATINGS else None,
                       redacted=not self.keep_personal_data)

    def record(self, entry: LogEntry) -> int:
        """Redact (unless keep), cap and store ``entry``; its id."""
        self._writable()
        e = self.prepare(entry)
        return self._insert(e, json.dumps(e.codes, ensure_ascii=False), json.dumps(e.sources, ensure_ascii=False))

    def rate(self, log_id: int, rating: str, comment: str = "") -> bool:
        """Attach an agent's thumbs (and comment, redacted unless keep) to a row; False for an unknown id."""
        if rating not in RATINGS:
            raise ValueError("rating must be 'up' or 'down'")
        self._writable()
        if comment and not self.keep_personal_data:
            comment = redact(_kept_part(comment, MAX_COMMENT))
        return self._rate(int(log_id), rating, _cap(comment, MAX_COMMENT) if comment else None)

    def entries(self, since: float, until: float | None = None) -> list[LogEntry]:
        """Rows with ``since <= created < until`` (no upper bound when None), newest first."""
        return [LogEntry.from_row(r) for r in self._select(float(since), None if until is None else float(until))]

    def get(self, log_id: int) -> LogEntry | None:
        row = self._get(int(log_id))
        return None if row is None else LogEntry.from_row(row)

    def purge(self, now: float | None = None) -> int:
        """Delete the rows older than the retention; how many."""
        self._writable()
        return self._delete_before((time.time() if now is None else now) - self.retention_days * DAY)

    def count(self) -> int:
        return self._count()

    def _writable(self) -> None:
        if self.read_only:
            raise ConversationLogUnavailable(f"{self.where} was opened read-only; nothing was written.")


class SqliteConversationLog(ConversationLog):
    """The log in the SQLite feedback file, on a connection of its own (WAL: the feedback log's writes and
    this one's wait for each other only for the length of one insert). ``synchronous=NORMAL``: a row is
    safe from a crash of Bouncebot, though a power cut may lose the last rows written (feedback keeps FULL)."""

    def __init__(self, path: Path, cap_bytes: int = 80 * 1024 * 1024, **options):
        super().__init__(**options)
        from app.storage.sqlite import migrate, use_wal

        self.path, self.cap_bytes = Path(path), cap_bytes
        self.where = f"the conversation log in {self.path}"
        self._lock = threading.Lock()
        try:
            if self.read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False, isolation_level=None)
                self._db.execute("SELECT COUNT(*) FROM conversation_log").fetchone()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                           timeout=5)
                use_wal(self._db)
                self._db.execute("PRAGMA synchronous=NORMAL")
                migrate(self._db)
        except (sqlite3.Error, OSError) as e:
            raise ConversationLogUnavailable(
                f"{self.where} cannot be {'read' if self.read_only else 'opened'} ({e}). Check the file named by "
                "BOUNCEBOT_FEEDBACK_DB (it exists once `bouncebot serve` has run; its folder must be writable), or "
                "set BOUNCEBOT_CONVERSATION_LOG=off to run without the log.") from e

    def _run(self, sql: str, args: tuple = (), many: bool = False):
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
                return cur.fetchall() if many else cur
            except sqlite3.Error as e:
                raise ConversationLogUnavailable(f"{self.where} failed ({e}). Check the file and its disk "
                                                 "(BOUNCEBOT_FEEDBACK_DB names it).") from e

    def _insert(self, e: LogEntry, codes: str, sources: str) -> int:
        with self._lock:
            try:
                page_size, pages, free = (self._db.execute(f"PRAGMA {p}").fetchone()[0]
                                          for p in ("page_size", "page_count", "freelist_count"))
                if (pages - free) * page_size > self.cap_bytes:
                    raise ConversationLogUnavailable(
                        f"{self.where} is not taking rows: the file holds {(pages - free) * page_size / 2**20:,.1f} "
                        f"MB, {SHARE_OF_FEEDBACK_CAP:.0%} of BOUNCEBOT_FEEDBACK_MAX_MB, and the rest is kept for "
                        "feedback. Lower BOUNCEBOT_LOG_RETENTION_DAYS or raise BOUNCEBOT_FEEDBACK_MAX_MB and restart.")
                cur = self._db.execute(
                    "INSERT INTO conversation_log (created, channel, mode, intent, answered, refused, fallback, "
                    "question, answer, codes, sources, latency_ms, rating, comment, redacted) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.created, e.channel, e.mode, e.intent, int(e.answered), int(e.refused), e.fallback, e.question,
                     e.answer, codes, sources, e.latency_ms, e.rating, e.comment, int(e.redacted)))
                return int(cur.lastrowid)
            except sqlite3.Error as err:
                raise ConversationLogUnavailable(f"{self.where} did not take the row ({err}). Check the file and "
                                                 "its disk (BOUNCEBOT_FEEDBACK_DB names it).") from err

    def _rate(self, log_id: int, rating: str, comment: str | None) -> bool:
        return self._run("UPDATE conversation_log SET rating = ?, comment = ? WHERE id = ?",
                         (rating, comment, log_id)).rowcount > 0

    def _select(self, since: float, until: float | None) -> list:
        sql, args = f"SELECT {COLUMNS} FROM conversation_log WHERE created >= ?", (since,)
        if until is not None:
            sql, args = sql + " AND created < ?", (since, until)
        return self._run(sql + " ORDER BY created DESC, id DESC", args, many=True)

    def _get(self, log_id: int):
        rows = self._run(f"SELECT {COLUMNS} FROM conversation_log WHERE id = ?", (log_id,), many=True)
        return rows[0] if rows else None

    def _delete_before(self, cutoff: float) -> int:
        return self._run("DELETE FROM conversation_log WHERE created < ?", (cutoff,)).rowcount

    def _count(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM conversation_log", many=True)[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
