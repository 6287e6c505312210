"""One log line per request (and per chat answer), on the ``bouncebot.requests`` logger, to stderr.

    BOUNCEBOT_LOG_FORMAT=text  2026-12-01T14:30:00.123Z POST /api/ask 200 5.1ms channel=api outcome=answered codes=550-5.1.1
    BOUNCEBOT_LOG_FORMAT=json  {"ts": "...", "event": "request", "method": "POST", "route": "/api/ask", "status": 200,
                                "duration_ms": 5.1, "channel": "api", "outcome": "answered", "codes": ["550-5.1.1"]}

The route is the route's template (``/widget/{name}``), never the raw path or its query string. The
question's text is logged only with ``BOUNCEBOT_LOG_QUESTIONS=on``, and even then every email address
in it is replaced by ``[email]``: a pasted bounce is full of customers' addresses.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass, field

LOGGER = "bouncebot.requests"
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
EMAIL_MARK = "[email]"


def redact(text: str) -> str:
    """``text`` with every email address replaced by ``[email]``."""
    return EMAIL.sub(EMAIL_MARK, text)


@dataclass
class Entry:
    """What one log line says. ``question`` is kept only when the setting asks for it (see ``RequestLog``)."""

    event: str = "request"  # request | answer (a chat answer: Gradio's queue carries it, not one HTTP request)
    method: str = "-"
    route: str = "-"
    status: int | None = None
    duration_ms: float | None = None
    channel: str | None = None  # api | widget | chat
    outcome: str | None = None  # answered | refused | small_talk | fallback | error
    codes: list[str] = field(default_factory=list)
    question: str | None = None


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ sets it; the property decides
        pass


def logger() -> logging.Logger:
    """The request logger, with its one stderr handler (added once, however many apps are made)."""
    log = logging.getLogger(LOGGER)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))  # the message is the whole line
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # not again through the root logger (or uvicorn's): one line per request
    return log


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class RequestLog:
    """Formats and writes the lines: JSON objects with ``json``, readable lines with ``text``."""

    def __init__(self, log_format: str = "text", log_questions: bool = False):
        if log_format not in ("text", "json"):
            raise ValueError(f"log_format={log_format!r}: text or json")
        self.json, self.log_questions = log_format == "json", log_questions
        self.log = logger()

    @classmethod
    def from_settings(cls, settings) -> "RequestLog":
        return cls(settings.log_format, settings.log_questions)

    def line(self, entry: Entry, now: float | None = None) -> str:
        now = time.time() if now is None else now
        question = redact(entry.question) if self.log_questions and entry.question is not None else None
        if self.json:
            d = {"ts": _timestamp(now), "event": entry.event, "method": entry.method, "route": entry.route,
                 "status": entry.status, "duration_ms": entry.duration_ms, "channel": entry.channel,
                 "outcome": entry.outcome, "codes": list(entry.codes)}
            if question is not None:
                d["question"] = question
            return json.dumps(d, ensure_ascii=False)
        parts = [_timestamp(now), entry.method, entry.route]
        if entry.status is not None:
            parts.append(str(entry.status))
        if entry.duration_ms is not None:
            parts.append(f"{entry.duration_ms:.1f}ms")
        if entry.event != "request":
            parts.append(entry.event)
        for key in ("channel", "outcome"):
            if getattr(entry, key):
                parts.append(f"{key}={getattr(entry, key)}")
        if entry.codes:
            parts.append("codes=" + ",".join(entry.codes))
        if question is not None:
            parts.append("question=" + json.dumps(question, ensure_ascii=False))  # quoted: one line, whatever it holds
        return " ".join(parts)

    def write(self, entry: Entry) -> None:
        self.log.info(self.line(entry))
