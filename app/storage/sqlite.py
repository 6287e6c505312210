"""The embedded backend: one SQLite file (``BOUNCEBOT_FEEDBACK_DB``), the default.

``migrate`` brings a file to the latest schema (``app/storage/migrations.py``;
a second process starting at the same time waits on ``BEGIN IMMEDIATE``);
``FeedbackLog`` keeps agents' thumbs up/down in it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from app.config import Settings
from app.errors import FeedbackFull, FeedbackUnavailable
from app.storage.feedback import COLUMNS, MB, Feedback, FeedbackLimits, check_post
from app.storage.migrations import MIGRATIONS, SCHEMA_VERSION_SQL, newer_than_known, pending

# SQLite's primary result codes (extended codes keep these in their low byte)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = (
    5, 6, 8, 11, 13, 14, 26)


class NewerSchema(sqlite3.DatabaseError):
    """The file was migrated by a newer Bouncebot than this one."""


def applied_versions(db: sqlite3.Connection) -> set[int]:
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    return {int(r[0]) for r in db.execute("SELECT version FROM schema_version")} if has else set()


WAL_WAIT = 30.0  # seconds a process starting beside others waits to switch the file to WAL


def use_wal(db: sqlite3.Connection, wait: float = WAL_WAIT) -> None:
    """``PRAGMA journal_mode=WAL``, waiting while another connection holds a write lock: SQLite answers
    "database is locked" at once there, without its busy handler (two processes starting at the same
    time on a new file, one of them migrating, hit it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(db: sqlite3.Connection, migrations=MIGRATIONS) -> list[int]:
    """Apply the pending migrations, each once and in its own ``BEGIN IMMEDIATE`` transaction (another
    process migrating the same file waits for it, then finds it done); the versions this call applied.
    ``db`` must be in autocommit mode (``isolation_level=None``)."""
    done: list[int] = []
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(SCHEMA_VERSION_SQL["sqlite"])
            applied = applied_versions(db)
            newer = newer_than_known(applied, migrations)
            if newer:
                raise NewerSchema(f"its schema is version {newer}, newer than this Bouncebot knows "
                                  f"({migrations[-1].version})")
            todo = pending(applied, migrations)
            if todo:
                m = todo[0]
                for statement in m.statements("sqlite"):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version, name, applied) VALUES (?, ?, ?)",
                           (m.version, m.name, time.time()))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if not todo:
            return done
        done.append(m.version)


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
                newer = newer_than_known(applied_versions(self._db))
                if newer:
                    raise NewerSchema(f"its schema is version {newer}, newer than this Bouncebot knows")
                self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()
                return
            use_wal(self._db)
            self._db.execute("PRAGMA synchronous=FULL")  # each commit synced: a 201 means the row is on disk
            migrate(self._db)
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
        """The feedback log where the settings keep it: PostgreSQL when ``BOUNCEBOT_DATABASE_URL`` is set
        (``app.storage.postgres.PostgresFeedbackLog``), else the file ``BOUNCEBOT_FEEDBACK_DB`` names."""
        if settings.database_url:
            from app.storage.postgres import PostgresFeedbackLog

            return PostgresFeedbackLog.from_settings(settings, read_only=read_only)
        return cls(settings.feedback_db, FeedbackLimits.from_settings(settings), read_only=read_only)

    # ------------------------------------------------------------------ errors

    def _unavailable(self, e: sqlite3.Error, starting: bool = False, reading: bool = False) -> FeedbackUnavailable:
        """SQLite's error as one that says what to do."""
        code = (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF
        if isinstance(e, NewerSchema):
            return FeedbackUnavailable(f"The feedback database {self.path} cannot be used: {e}. Run the newer "
                                       "Bouncebot that migrated it, or set BOUNCEBOT_FEEDBACK_DB to another file.")
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
        return check_post(self.limits, rating, question, answer, comment, codes, sources)

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
        sql = f"SELECT {COLUMNS} FROM feedback"
        args: tuple = ()
        if rating:
            sql, args = sql + " WHERE rating = ?", (rating,)
        with self._lock:
            try:
                rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
            except sqlite3.Error as e:
                raise self._unavailable(e, reading=True) from e
        return [Feedback.from_row(r) for r in rows]

    def count(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
            except sqlite3.Error as e:
                raise self._unavailable(e, reading=True) from e

    def close(self) -> None:
        with self._lock:
            self._db.close()
