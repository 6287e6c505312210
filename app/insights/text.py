"""Insights as text for the terminal (``bouncebot insights --since 7d``): the totals, then every
table with its rows, long texts cut to fit a line (``--json`` and the CSV keep them whole)."""

from __future__ import annotations

from app.insights.grouping import shorten
from app.insights.report import TABLES, Insights

TITLES = {
    "per_day": "Questions per day",
    "codes_in_table": "Codes asked about that the article's table holds",
    "codes_missing": "Codes missing from the article's table (content gaps)",
    "refused_groups": "Refused questions, grouped by similarity",
    "thumbs_down": "Thumbs-down answers",
    "slowest": "Slowest answers",
}
SHOWN = {  # columns shown and their widths (None: the rest of the line)
    "per_day": (("day", 10), ("chat", 5), ("widget", 6), ("api", 5), ("answered", 8), ("refused", 7),
                ("up", 4), ("down", 4)),
    "codes_in_table": (("code", 12), ("count", 5), ("example", None)),
    "codes_missing": (("code", 12), ("count", 5), ("reason", 14), ("example", None)),
    "refused_groups": (("count", 5), ("label", 60), ("ids", None)),
    "thumbs_down": (("id", 6), ("when", 20), ("channel", 7), ("question", 40), ("comment", None)),
    "slowest": (("id", 6), ("when", 20), ("channel", 7), ("latency_ms", 10), ("question", None)),
}
WIDTH = 120
NUMERIC = {"count", "chat", "widget", "api", "answered", "refused", "up", "down", "latency_ms", "id"}


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _value(row: dict, col: str) -> str:
    v = row.get(col)
    if col == "ids":
        return "ids " + ", ".join(str(i) for i in v[:8]) + (f", … (+{len(v) - 8})" if len(v) > 8 else "")
    if col == "latency_ms":
        return f"{v:,.0f} ms"
    return "" if v is None else str(v)


def _table(name: str, rows: list[dict]) -> list[str]:
    cols = SHOWN[name]
    lines = [f"{TITLES[name]} ({len(rows)})"]
    if not rows:
        return lines + ["  (none in this period)"]
    fixed = sum(w + 2 for _, w in cols if w)
    rest = max(20, WIDTH - 2 - fixed)

    def fmt(values: list[str]) -> str:
        parts = []
        for (col, w), v in zip(cols, values):
            width = w or rest
            v = shorten(v, width)
            parts.append(v.rjust(width) if col in NUMERIC and w else v.ljust(width) if w else v)
        return "  " + "  ".join(parts).rstrip()

    lines.append(fmt([c.replace("_", " ") for c, _ in cols]))
    lines += [fmt([_value(r, c) for c, _ in cols]) for r in rows]
    return lines


def render(insights: Insights) -> str:
    p, t = insights.period, insights.totals
    out = [
        f"Insights from {p.to_dict()['since_iso']} to {p.to_dict()['until_iso']} ({p.text or 'period'})",
        f"  questions {t['questions']}   answered {t['answered']} ({_pct(t['answered_rate'])})   "
        f"refused {t['refused']} ({_pct(t['refused_rate'])})   language-model fallbacks {t['fallback']}   "
        f"thumbs up {t['up']}   thumbs down {t['down']}",
        f"  refused questions grouped by {'meaning (embeddings)' if insights.grouping == 'embeddings' else 'shared words'}",
    ]
    for name in TABLES:
        out += [""] + _table(name, getattr(insights, name))
    return "\n".join(out) + "\n"
