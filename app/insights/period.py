"""The period an insights report covers: ``Period.parse("7d")``.

Accepted: ``Nd`` (the last N days), ``Nh`` (the last N hours), and a range of UTC days
``YYYY-MM-DD..YYYY-MM-DD`` (both days included) or one day ``YYYY-MM-DD``. A relative period
ends now; a range ends at midnight UTC after its last day. Anything else is ``BadPeriod``
(exit 2 at the command line, 400 on the web) with the forms to write.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from app.errors import BadPeriod

DAY = 86400.0
MAX_DAYS = 3660  # ten years: more than any retention setting keeps
FORMS = "write 7d (the last 7 days), 24h (the last 24 hours) or 2026-11-01..2026-11-30 (UTC days, both included)"
_RELATIVE = re.compile(r"(\d{1,6})\s*([dh])")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\s*\.\.\s*(\d{4}-\d{2}-\d{2}))?")


def _day(text: str, whole: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadPeriod(f"period {whole!r}: {text} is not a date; {FORMS}.") from None


def _epoch(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()


def iso(t: float) -> str:
    """Epoch seconds as ``2026-11-30T14:05:09Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def day_of(t: float) -> str:
    """The UTC day of epoch seconds, ``2026-11-30``."""
    return time.strftime("%Y-%m-%d", time.gmtime(t))


@dataclass(frozen=True)
class Period:
    since: float  # epoch seconds, included
    until: float  # epoch seconds, excluded
    text: str = ""  # what was asked for, e.g. "7d"

    def __post_init__(self):
        if not self.until > self.since:
            raise BadPeriod(f"period {self.text or ''!r}: it ends before it starts; {FORMS}.")

    @classmethod
    def last(cls, days: float, now: float | None = None) -> "Period":
        now = time.time() if now is None else float(now)
        return cls(now - days * DAY, now, f"{days:g}d")

    @classmethod
    def parse(cls, text: str, now: float | None = None) -> "Period":
        now = time.time() if now is None else float(now)
        whole = (text or "").strip().lower()
        if not whole:
            raise BadPeriod(f"no period given; {FORMS}.")
        m = _RELATIVE.fullmatch(whole)
        if m:
            n, unit = int(m.group(1)), m.group(2)
            seconds = n * (DAY if unit == "d" else 3600.0)
            if n < 1 or seconds > MAX_DAYS * DAY:
                raise BadPeriod(f"period {text!r}: give from 1 to {MAX_DAYS} days (or hours within that); {FORMS}.")
            return cls(now - seconds, now, whole)
        m = _RANGE.fullmatch(whole)
        if m:
            first = _day(m.group(1), text)
            last = _day(m.group(2), text) if m.group(2) else first
            if last < first:
                raise BadPeriod(f"period {text!r}: its last day {last} is before its first {first}; {FORMS}.")
            if (last - first).days + 1 > MAX_DAYS:
                raise BadPeriod(f"period {text!r}: at most {MAX_DAYS} days; {FORMS}.")
            return cls(_epoch(first), _epoch(last + timedelta(days=1)), whole)
        raise BadPeriod(f"period {text!r} cannot be read; {FORMS}.")

    def days(self) -> list[str]:
        """Every UTC day the period touches, oldest first."""
        first = datetime.fromtimestamp(self.since, timezone.utc).date()
        last = datetime.fromtimestamp(self.until - 1e-6, timezone.utc).date()
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    def to_dict(self) -> dict:
        return {"text": self.text, "since": self.since, "until": self.until, "since_iso": iso(self.since),
                "until_iso": iso(self.until), "days": len(self.days())}
