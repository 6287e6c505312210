"""What both backends share for feedback: the limits, the row, the checks on a
post, and the eval-case export (``bouncebot feedback export``)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from app.config import Settings
from app.errors import BadFeedback, BadSetting, FeedbackTooLarge

MAX_COMMENT = 2000
MB = 1024 * 1024
COLUMNS = "id, created, rating, comment, question, answer, answered, codes, sources"


@dataclass(frozen=True)
class FeedbackLimits:
    """What one feedback post may hold, and how much the feedback log keeps in all."""

    question_bytes: int = Settings.max_question_bytes  # the same limit as for questions (UTF-8 bytes)
    answer_bytes: int = 64 * 1024
    comment_chars: int = MAX_COMMENT
    list_items: int = 100  # codes and sources each
    list_bytes: int = 64 * 1024  # codes and sources each, as stored (JSON, UTF-8)
    database_bytes: int = int(Settings.feedback_max_mb * MB)  # the stored feedback (SQLite: pages in use)

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

    @classmethod
    def from_row(cls, r) -> "Feedback":
        return cls(int(r[0]), float(r[1]), r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]),
                   json.loads(r[7]), json.loads(r[8]))


def _utf8_size(field: str, text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadFeedback(f"the {field} contains characters that are not text (lone UTF-16 surrogates such as "
                          "\\ud800): send it as valid UTF-8.") from None


def check_post(lim: FeedbackLimits, rating: str, question: str, answer: str, comment: str, codes: list,
               sources: list) -> tuple[str, str, int]:
    """Validate a post; its codes and sources as stored (JSON text), and its size in bytes."""
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


def export_down(log, out) -> int:
    n = 0
    for f in log.all("down"):
        out.write(json.dumps(as_eval_case(f), ensure_ascii=False) + "\n")
        n += 1
    return n
