"""Agents' thumbs up/down on answers, kept in SQLite, and turned into eval
cases: ``bouncebot feedback export`` writes every thumbs-down as a JSON
Lines case in the eval dataset's format, so a bad answer becomes a
regression case once someone fills in what was expected.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BouncebotError

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


class BadFeedback(BouncebotError):
    exit_code = 2


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


class FeedbackStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)

    def add(self, rating: str, question: str, answer: str, comment: str = "", answered: bool | None = None,
            codes: list | None = None, sources: list | None = None) -> int:
        if rating not in ("up", "down"):
            raise BadFeedback("rating must be 'up' or 'down'.")
        if not question.strip():
            raise BadFeedback("feedback needs the question it is about.")
        if len(comment) > MAX_COMMENT:
            raise BadFeedback(f"the comment is longer than {MAX_COMMENT} characters.")
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO feedback (created, rating, comment, question, answer, answered, codes, sources)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), rating, comment, question, answer, None if answered is None else int(answered),
                 json.dumps(codes or [], ensure_ascii=False), json.dumps(sources or [], ensure_ascii=False)),
            )
            return int(cur.lastrowid)

    def all(self, rating: str | None = None) -> list[Feedback]:
        sql = "SELECT id, created, rating, comment, question, answer, answered, codes, sources FROM feedback"
        args: tuple = ()
        if rating:
            sql, args = sql + " WHERE rating = ?", (rating,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [
            Feedback(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]), json.loads(r[7]),
                     json.loads(r[8]))
            for r in rows
        ]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

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


def export_down(store: FeedbackStore, out) -> int:
    n = 0
    for f in store.all("down"):
        out.write(json.dumps(as_eval_case(f), ensure_ascii=False) + "\n")
        n += 1
    return n
