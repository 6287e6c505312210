"""What the conversation log says about a period: ``compute(log, period, embed)`` -> ``Insights``.

Totals and per-day counts by channel; the codes agents met, split into those the article's table
holds and those it lacks (the content gaps, each with its bounce reason and an example message);
refused questions grouped by similarity (``app.insights.grouping``); thumbs-down answers with the
agent's comment; the slowest answers. Every text comes from the log as stored: redacted unless
``BOUNCEBOT_LOG_KEEP_PERSONAL_DATA`` is on. ``Insights.csv(table)`` exports one table
(``app.insights.export``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from app.insights.grouping import group, shorten
from app.insights.period import Period, day_of, iso

CHANNELS = ("chat", "widget", "api")
TABLES = ("per_day", "codes_in_table", "codes_missing", "refused_groups", "thumbs_down", "slowest")
SLOWEST = 20  # answers in the slowest table
EXAMPLE_CHARS = 300  # an example message in the code tables


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Insights:
    period: Period
    totals: dict
    per_day: list[dict] = field(default_factory=list)
    codes_in_table: list[dict] = field(default_factory=list)
    codes_missing: list[dict] = field(default_factory=list)
    refused_groups: list[dict] = field(default_factory=list)
    thumbs_down: list[dict] = field(default_factory=list)
    slowest: list[dict] = field(default_factory=list)
    grouping: str = "tokens"  # how refused questions were grouped: "embeddings" or "tokens"

    def to_dict(self) -> dict:
        return {"period": self.period.to_dict(), "totals": dict(self.totals), "grouping": self.grouping,
                **{t: [dict(r) for r in getattr(self, t)] for t in TABLES}}

    def csv(self, table: str) -> str:
        from app.insights.export import table_csv

        return table_csv(self, table)


def _totals(entries) -> dict:
    n = len(entries)
    answered = sum(e.answered for e in entries)
    refused = sum(e.refused for e in entries)
    return {
        "questions": n, "answered": answered, "refused": refused,
        "fallback": sum(e.fallback is not None for e in entries),
        "up": sum(e.rating == "up" for e in entries), "down": sum(e.rating == "down" for e in entries),
        "answered_rate": _rate(answered, n), "refused_rate": _rate(refused, n),
        "latency_ms_median": _median([e.latency_ms for e in entries]),
    }


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return round(s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2, 1)


def _per_day(entries, period: Period) -> list[dict]:
    days = {d: {"day": d, **{c: 0 for c in CHANNELS}, "answered": 0, "refused": 0, "up": 0, "down": 0}
            for d in period.days()}
    for e in entries:
        row = days.get(day_of(e.created))
        if row is None:  # outside the period's days (cannot happen for rows the log selected)
            continue
        if e.channel in CHANNELS:
            row[e.channel] += 1
        row["answered"] += e.answered
        row["refused"] += e.refused
        if e.rating in ("up", "down"):
            row[e.rating] += 1
    return list(days.values())


def _canonical(entries) -> dict[str, str]:
    """A tabled enhanced code alone ("5.4.4") is exact only when one row holds it, so it counts as that
    row's code ("554-5.4.4") when the period holds the full code too (else it stays as asked)."""
    full: dict[str, set[str]] = {}
    for e in entries:
        for c in e.codes:
            code = str(c.get("code") or "")
            if c.get("tabled") and "-" in code:
                full.setdefault(code.split("-", 1)[1], set()).add(code)
    return {enhanced: next(iter(codes)) for enhanced, codes in full.items() if len(codes) == 1}


def _codes(entries) -> tuple[list[dict], list[dict]]:
    """Per code: how many messages held it (once per message), an example (the newest), its reason."""
    canonical = _canonical(entries)
    counts: Counter = Counter()
    examples: dict[tuple[str, bool], str] = {}
    reasons: dict[str, Counter] = {}
    for e in entries:  # newest first: the first message seen is the example
        seen = set()
        for c in e.codes:
            code, tabled = str(c.get("code") or ""), bool(c.get("tabled"))
            if not code:
                continue
            key = (canonical.get(code, code) if tabled else code, tabled)
            if key in seen:
                continue
            seen.add(key)
            counts[key] += 1
            examples.setdefault(key, shorten(e.question, EXAMPLE_CHARS))
            if not tabled and c.get("reason"):
                reasons.setdefault(code, Counter())[c["reason"]] += 1
    order = sorted(counts, key=lambda k: (-counts[k], k[0]))
    tabled = [{"code": k[0], "count": counts[k], "example": examples[k]} for k in order if k[1]]
    missing = [{"code": k[0], "count": counts[k],
                "reason": reasons[k[0]].most_common(1)[0][0] if k[0] in reasons else "",
                "example": examples[k]} for k in order if not k[1]]
    return tabled, missing


def _row(e, *fields: str) -> dict:
    out = {"id": e.id, "when": iso(e.created), "channel": e.channel, "question": e.question}
    for f in fields:
        out[f] = getattr(e, f) if f != "comment" else (e.comment or "")
    return out


def compute(log, period: Period, embed: Callable | None = None) -> Insights:
    """The insights of ``period`` from ``log`` (a ``ConversationLog``). ``embed`` (texts -> vectors,
    the MiniLM embedder's ``embed_documents``) groups refused questions by meaning; without it,
    by shared words."""
    entries = log.entries(period.since, period.until)  # newest first
    tabled, missing = _codes(entries)
    refused = [(e.id, e.question) for e in entries if e.refused]
    down = [_row(e, "answer", "comment") for e in entries if e.rating == "down"]
    slow = sorted(entries, key=lambda e: (-e.latency_ms, -(e.id or 0)))[:SLOWEST]
    return Insights(
        period=period, totals=_totals(entries), per_day=_per_day(entries, period),
        codes_in_table=tabled, codes_missing=missing, refused_groups=group(refused, embed),
        thumbs_down=down, slowest=[{**_row(e), "latency_ms": round(e.latency_ms, 1)} for e in slow],
        grouping="embeddings" if embed is not None else "tokens")
