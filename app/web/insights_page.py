"""The insights page's HTML (``login_page``, ``dashboard``, ``message_page``): rendered from an
``Insights`` object and its charts, every text escaped, no script and no inline style (the page's
policy forbids both); the stylesheet is ``app/web/static/insights.css``.
"""

from __future__ import annotations

import json
from html import escape

from app.insights.period import iso

PERIODS = ("7d", "30d", "90d")
CSS_URL = "/insights/static/insights.css"
TEXT_CLIP = 400  # characters of a long text shown in a cell before "show all"
MAX_ROWS = 200  # rows of a table shown on the page (the CSV has them all)
TABLE_TITLES = {
    "codes_in_table": "Most asked codes in the article's table",
    "codes_missing": "Codes missing from the table: the content gaps",
    "refused_groups": "Refused questions, grouped by similarity",
    "thumbs_down": "Thumbs-down answers, with the agent's comment",
    "slowest": "The slowest answers",
    "per_day": "Per day: the figures behind the charts",
}


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _shell(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="same-origin"><title>{_e(title)}</title>'
            f'<link rel="stylesheet" href="{CSS_URL}"></head><body>{body}</body></html>')


def login_page(since: str, problem: str | None = None) -> str:
    alert = f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else ""
    return _shell("Bouncebot insights: log in", f"""
<main class="login"><h1>Bouncebot insights</h1>
<p>What agents ask, what the article lacks, how answers land. Enter the insights token
(the value of <code>BOUNCEBOT_INSIGHTS_TOKEN</code> on the server) to see them.</p>
{alert}
<form method="post" action="/insights/login" autocomplete="off">
<label for="token">Insights token</label>
<input id="token" name="token" type="password" required autocomplete="current-password" autofocus>
<input type="hidden" name="since" value="{_e(since)}">
<button type="submit">Log in</button>
</form></main>""")


def message_page(title: str, message: str, back: str | None = "/insights") -> str:
    link = f'<p><a href="{_e(back)}">Back to the insights</a></p>' if back else ""
    return _shell(title, f'<main class="login"><h1>{_e(title)}</h1><p class="problem" role="alert">{_e(message)}</p>'
                         f'{link}</main>')


def _clip(text, limit: int = TEXT_CLIP) -> str:
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return f'<span class="text">{_e(text)}</span>'
    return (f'<details class="long"><summary><span class="text">{_e(text[:limit].rstrip())}…</span></summary>'
            f'<div class="text">{_e(text)}</div></details>')


def _csv_link(table: str, since: str) -> str:
    return (f'<a class="csv" href="/insights/export/{table}.csv?since={_e(since)}" download '
            f'data-table="{table}">Download CSV</a>')


def _eval_button(ids: list[int], cases: dict[int, str], label: str = "Make an eval case") -> str:
    if not ids:
        return ""
    first = ids[0]
    line = cases.get(first)
    shown = (f'<details class="case"><summary>Show it to copy</summary><pre tabindex="0">{_e(line)}</pre></details>'
             if line else "")
    more = ""
    if len(ids) > 1:
        more = (f' <a class="button quiet" href="/insights/eval-case/{",".join(map(str, ids[:100]))}.jsonl" download>'
                f'all {min(len(ids), 100)} cases</a>')
    return (f'<a class="button eval-case" href="/insights/eval-case/{first}.jsonl" download data-id="{first}">'
            f'{_e(label)}</a>{more}{shown}')


def _table(name: str, since: str, head: list[str], rows: list[str], note: str = "", total: int = 0) -> str:
    if total > len(rows):
        note += (f'<p class="note more">Showing the first {len(rows)} of {total:,} rows: '
                 f'the CSV has them all.</p>')
    body = "".join(rows) or f'<tr><td colspan="{len(head)}" class="empty">Nothing in this period.</td></tr>'
    return (f'<section class="table" id="{name}"><header><h2>{_e(TABLE_TITLES[name])}</h2>{_csv_link(name, since)}'
            f'</header>{note}<div class="scroll"><table data-table="{name}"><thead><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table></div></section>")


CURRENT = ' aria-current="page"'
MISSING_NOTE = ('<p class="note">Codes agents met that the article’s table does not hold: each is a row the article '
                'could add.</p>')


def _ms(v) -> str:
    return f"{v:,.0f} ms"


def _when(text) -> str:
    """``2026-11-30T14:05:09Z`` as ``2026-11-30 14:05`` (the page says its times are UTC)."""
    return f'<td class="when">{_e(str(text).replace("T", " ")[:16])}</td>'


def _num(v) -> str:
    return f'<td class="num">{_e(v)}</td>'


def _tiles(t: dict) -> str:
    def pct(r):
        return "–" if r is None else f"{r * 100:.0f}%"

    median = t.get("latency_ms_median")
    tiles = [("Questions", t.get("questions", 0)), ("Answered", pct(t.get("answered_rate"))),
             ("Refused", pct(t.get("refused_rate"))), ("Language-model fallbacks", t.get("fallback", 0)),
             ("Thumbs up", t.get("up", 0)), ("Thumbs down", t.get("down", 0)),
             ("Median latency", "–" if median is None else f"{median:g} ms")]
    return '<dl class="tiles">' + "".join(f'<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>' for k, v in tiles) + "</dl>"


def shown(rows: list) -> list:
    """The rows of a table the page shows: the first ``MAX_ROWS`` (most asked, newest or slowest first)."""
    return rows[:MAX_ROWS]


def dashboard(insights, charts, cases: dict[int, str], log_on: bool = True) -> str:
    """The whole page for ``insights`` (``app.insights.Insights``) with its ``charts``
    (``app.web.insights_charts.Chart``); ``cases``: log id -> its eval case line, for the buttons."""
    p = insights.period
    since = p.text or "30d"
    chooser = "".join(
        f'<a href="/insights?since={d}"{CURRENT if d == since else ""}>Last {d[:-1]} days</a>'
        for d in PERIODS)
    off = ("" if log_on else '<p class="problem" role="alert">The conversation log is off '
           '(BOUNCEBOT_CONVERSATION_LOG=off): nothing new is recorded. Turn it on to fill this page.</p>')
    figures = "".join(
        f'<figure class="chart" data-chart="{c.name}"><h2>{_e(c.title)}</h2><img src="{c.uri}" '
        f'alt="{_e(c.title)}: {_e(c.alt)}" width="420" height="250"><figcaption>{_e(c.alt)}</figcaption></figure>'
        for c in charts)

    def n(table: str) -> int:
        return len(getattr(insights, table))

    tabled = [f'<tr><td class="code"><code>{_e(r["code"])}</code></td>{_num(r["count"])}'
              f'<td>{_clip(r["example"], 240)}</td></tr>'
              for r in shown(insights.codes_in_table)]
    missing = [f'<tr><td class="code"><code>{_e(r["code"])}</code></td>{_num(r["count"])}'
               f'<td class="code">{_e(r.get("reason") or "–")}</td>'
               f'<td>{_clip(r["example"], 240)}</td></tr>' for r in shown(insights.codes_missing)]
    groups = [f'<tr><td>{_e(g["label"])}</td>{_num(g["count"])}<td><ul>'
              + "".join(f"<li>{_clip(x, 200)}</li>" for x in g["examples"])
              + f'</ul></td><td class="actions">{_eval_button(list(g["ids"]), cases)}</td></tr>'
              for g in shown(insights.refused_groups)]
    down = [f'<tr>{_when(r["when"])}<td>{_e(r["channel"])}</td><td>{_clip(r["question"], 300)}</td>'
            f'<td>{_clip(r["answer"], 300)}</td><td>{_clip(r.get("comment") or "–", 300)}</td>'
            f'<td class="actions">{_eval_button([r["id"]], cases)}</td></tr>' for r in shown(insights.thumbs_down)]
    slow = [f'<tr>{_when(r["when"])}<td>{_e(r["channel"])}</td><td>{_clip(r["question"], 300)}</td>'
            f'{_num(_ms(r["latency_ms"]))}</tr>' for r in shown(insights.slowest)]
    days = [f'<tr><td class="when">{_e(d["day"])}</td>' + "".join(_num(d[k]) for k in
            ("chat", "widget", "api", "answered", "refused", "up", "down")) + "</tr>" for d in shown(insights.per_day)]
    grouping = ("by meaning (the MiniLM embedding model)" if insights.grouping == "embeddings"
                else "by shared words (the embedding model was not available)")

    refused_note = f'<p class="note">Questions answered with "I don’t know", grouped {_e(grouping)}.</p>'
    return _shell("Bouncebot insights", f"""
<header class="top"><h1>Bouncebot insights</h1>
<nav class="periods" aria-label="Period">{chooser}</nav>
<p class="period">{_e(iso(p.since).replace("T", " ")[:16])} to {_e(iso(p.until).replace("T", " ")[:16])} UTC</p>
<form method="post" action="/insights/logout" class="logout"><button type="submit" class="quiet">Log out</button></form>
</header>
<main>{off}
{_tiles(insights.totals)}
<div class="charts">{figures}</div>
<div class="pair">
{_table("codes_in_table", since, ["Code", "Messages", "Example"], tabled, total=n("codes_in_table"))}
{_table("codes_missing", since, ["Code", "Messages", "Reason", "Example"], missing,
        MISSING_NOTE, n("codes_missing"))}
</div>
{_table("refused_groups", since, ["Group", "Messages", "Examples", "Eval case"], groups,
        refused_note, n("refused_groups"))}
{_table("thumbs_down", since, ["When", "Channel", "Question", "Answer", "Comment", "Eval case"], down,
        total=n("thumbs_down"))}
{_table("slowest", since, ["When", "Channel", "Question", "Latency"], slow, total=n("slowest"))}
<details class="days"><summary>{_e(TABLE_TITLES["per_day"])}</summary>
{_table("per_day", since, ["Day", "Chat", "Widget", "API", "Answered", "Refused", "Up", "Down"], days,
        total=n("per_day"))}</details>
<p class="foot">Texts are shown as the log stores them (redacted unless BOUNCEBOT_LOG_KEEP_PERSONAL_DATA is on).
An eval case is the JSON Lines line of <code>bouncebot feedback export</code>: fill in its <code>expect</code>
and add it to a dataset.</p>
</main>""")


def case_line(case: dict) -> str:
    return json.dumps(case, ensure_ascii=False)
