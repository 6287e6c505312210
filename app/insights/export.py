"""Insights out of Bouncebot: a table as CSV, a logged message as an eval case.

CSV: one header row (the table's columns), RFC 4180 quoting (commas, quotes and line breaks stay
inside their cell), lists joined with `` | ``. A text cell that a spreadsheet would run as a formula
(it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with ``'``
(OWASP's advice on CSV injection): a question such as ``=HYPERLINK(...)`` is shown, never run.

``eval_case(entry)`` is the JSON Lines case ``bouncebot feedback export`` writes
(``app.storage.feedback.as_eval_case``), built by that same function from the log's row: ``expect``
is left for a person to fill in. Its id is ``log-NNNNN`` (the log's row id), apart from feedback's.
"""

from __future__ import annotations

import csv
import io

from app.errors import UnknownInsightsTable
from app.storage.feedback import Feedback, as_eval_case

COLUMNS = {
    "per_day": ("day", "chat", "widget", "api", "answered", "refused", "up", "down"),
    "codes_in_table": ("code", "count", "example"),
    "codes_missing": ("code", "count", "reason", "example"),
    "refused_groups": ("label", "count", "examples", "ids"),
    "thumbs_down": ("id", "when", "channel", "question", "answer", "comment"),
    "slowest": ("id", "when", "channel", "question", "latency_ms"),
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str | int | float:
    if isinstance(value, (list, tuple)):
        value = " | ".join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def table_csv(insights, table: str) -> str:
    if table not in COLUMNS:
        raise UnknownInsightsTable(f"no insights table {table!r}: choose one of {', '.join(COLUMNS)}.")
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(COLUMNS[table])
    for row in getattr(insights, table):
        w.writerow([cell(row.get(c)) for c in COLUMNS[table]])
    return out.getvalue()


def eval_case(entry) -> dict:
    """A logged message (refused, or rated) as an eval case, in ``bouncebot feedback export``'s shape."""
    f = Feedback(id=int(entry.id or 0), created=entry.created, rating=entry.rating, comment=entry.comment or "",
                 question=entry.question, answer=entry.answer, answered=entry.answered,
                 codes=list(entry.codes), sources=list(entry.sources))
    case = as_eval_case(f)
    case["id"] = f"log-{f.id:05d}"
    return case
