"""The insights page's charts, drawn server-side by matplotlib as SVG (``charts(insights)``).

Why matplotlib and not a JavaScript library: the page then runs no script at all (its policy is
``script-src 'none'``), nothing is fetched from a CDN or npm at run time, and the same figures
render identically in a browser, a screenshot or a test. Each chart is drawn from the
``Insights`` object's own figures (``per_day`` and ``totals``): nothing is counted again here,
only a day's answered and refused counts divided by that day's questions for the rate chart.

The figures are built with the object API (``matplotlib.figure.Figure``, never pyplot, whose
global state is not thread-safe) under one lock, and returned as ``data:image/svg+xml`` URIs: the
page is one response whose charts and tables come from one ``compute``.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

CHANNELS = ("chat", "widget", "api")
COLOURS = {"chat": "#2563eb", "widget": "#f59e0b", "api": "#10b981", "answered": "#2563eb",
           "refused": "#dc2626", "up": "#16a34a", "down": "#dc2626"}
SIZE = (4.4, 2.6)  # inches; at 96 dpi three charts sit side by side on a 1366-pixel screen
_LOCK = threading.Lock()
_CACHE: OrderedDict[str, list] = OrderedDict()  # the same figures drawn again (a page reloaded): reused
CACHE_SIZE = 8
_RC = {"svg.fonttype": "none", "svg.hashsalt": "bouncebot-insights", "font.family": "sans-serif",
       "font.size": 8.5, "axes.spines.top": False, "axes.spines.right": False}  # titles: the page's own headings


@dataclass(frozen=True)
class Chart:
    name: str  # "per_channel", "rates", "ratings"
    title: str
    alt: str  # what the chart shows, in words (the image's alt text)
    uri: str  # data:image/svg+xml;base64,...


def _pct(rate) -> str:
    return "no questions" if rate is None else f"{rate * 100:.0f}%"


def _ticks(ax, days: list[str]) -> None:
    step = max(1, round(len(days) / 8))
    idx = list(range(0, len(days), step))
    ax.set_xticks(idx)
    ax.set_xticklabels([days[i][5:] for i in idx])  # "11-30"
    ax.set_xlim(-0.7, len(days) - 0.3)
    ax.tick_params(axis="both", length=2)
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)


def _legend(ax, columns: int, handle: float) -> None:
    ax.legend(frameon=False, ncols=columns, loc="lower left", bbox_to_anchor=(0, 1.0), borderaxespad=0.2,
              fontsize=8, handlelength=handle)


def _svg(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _per_channel(fig, per_day: list[dict]) -> None:
    ax = fig.subplots()
    days = [d["day"] for d in per_day]
    x = list(range(len(days)))
    bottom = [0] * len(days)
    for channel in CHANNELS:
        values = [d.get(channel, 0) for d in per_day]
        ax.bar(x, values, bottom=bottom, color=COLOURS[channel], width=0.8, label=channel, linewidth=0)
        bottom = [b + v for b, v in zip(bottom, values)]
    _legend(ax, 3, 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    _ticks(ax, days)


def _rates(fig, per_day: list[dict], totals: dict) -> None:
    ax = fig.subplots()
    days = [d["day"] for d in per_day]
    x = list(range(len(days)))
    for key in ("answered", "refused"):
        values = []
        for d in per_day:
            n = sum(d.get(c, 0) for c in CHANNELS)
            values.append(100.0 * d.get(key, 0) / n if n else float("nan"))  # a day without questions: a gap
        ax.plot(x, values, color=COLOURS[key], linewidth=1.4, marker="o", markersize=2.2,
                label=f"{key} ({_pct(totals.get(f'{key}_rate'))} overall)")
        rate = totals.get(f"{key}_rate")
        if rate is not None:
            ax.axhline(rate * 100, color=COLOURS[key], linewidth=0.8, linestyle="--", alpha=0.6)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of the day's questions")
    _legend(ax, 2, 1.2)
    _ticks(ax, days)


def _ratings(fig, per_day: list[dict]) -> None:
    ax = fig.subplots()
    days = [d["day"] for d in per_day]
    x = list(range(len(days)))
    ax.bar(x, [d.get("up", 0) for d in per_day], color=COLOURS["up"], width=0.8, label="thumbs up", linewidth=0)
    ax.bar(x, [-d.get("down", 0) for d in per_day], color=COLOURS["down"], width=0.8, label="thumbs down",
           linewidth=0)
    ax.axhline(0, color="#6b7280", linewidth=0.6)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{abs(v):g}")
    _legend(ax, 2, 1)
    _ticks(ax, days)


def charts(insights) -> list[Chart]:
    """The three charts of ``insights`` (an ``app.insights.Insights``), as SVG data URIs."""
    import matplotlib
    from matplotlib.figure import Figure

    t, per_day = insights.totals, insights.per_day
    key = json.dumps([t, per_day], sort_keys=True, default=str)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    specs = [
        ("per_channel", "Questions per day, by channel", lambda f: _per_channel(f, per_day),
         f"{t.get('questions', 0)} questions over {len(per_day)} days: "
         + ", ".join(f"{c} {sum(d.get(c, 0) for d in per_day)}" for c in CHANNELS)),
        ("rates", "Answered and refused rates", lambda f: _rates(f, per_day, t),
         f"answered {_pct(t.get('answered_rate'))}, refused {_pct(t.get('refused_rate'))} of the period's questions"),
        ("ratings", "Thumbs up and down per day", lambda f: _ratings(f, per_day),
         f"{t.get('up', 0)} thumbs up, {t.get('down', 0)} thumbs down"),
    ]
    out = []
    with _LOCK, matplotlib.rc_context(_RC):
        for name, title, draw, alt in specs:
            fig = Figure(figsize=SIZE, dpi=96, layout="constrained")  # all three the same size
            draw(fig)
            out.append(Chart(name, title, alt, _svg(fig)))
        _CACHE[key] = out
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out
