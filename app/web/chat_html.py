"""The chat's side panels as HTML, built from the answer contract, never from its Markdown.

- ``code_cards_html``: one card per code (``codes[]``). An exact match shows the table's
  words verbatim, each row holding the code (``codes[].rows``) cited on its own, never merged;
  a code the table lacks gets a not-in-table card, with general guidance labelled by its basis
  and the closest rows (``related``) named, never offered as its meaning. A code carried from
  an earlier message (``from_history``) gets the widget's "from earlier in the conversation" badge.
- ``recipients_html``: what a pasted message is (``message_kind``) and each failed recipient with
  its decisive code and why; a ``verdict`` gets badges and one sentence, under the label that
  says it is Bouncebot's reading, not the article's.
- ``sources_html``: the cited parts of the article (``sources[]``), each linked, expandable.

Every value from the answer is HTML-escaped where it is shown; the labels are the ones every
surface shares (``app/answering/data/wording.yaml``).
"""

from __future__ import annotations

import html

from app.answering.contract import Answer, Code, Recipient, Source
from app.answering.render import (LABELS, WORDING, basis_label, holders_line, plain, recipient_code, same_words,
                                  severity_label, table_row)
from app.answering.render_bounce import (badges, evidence_label, kind_sentence, one_line, reason_sentence,
                                         recipients_label, retry_sentence)

VERDICT = WORDING["verdict"]  # Bouncebot's reading of a bounce: its labels (render_bounce has its sentences)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _multiline(text: str) -> str:
    return _e(text).replace("\n", "<br>")


def _answer(answer: Answer | dict) -> Answer:
    return answer if isinstance(answer, Answer) else Answer.model_validate(answer)


def _head(c: Code, badge: str, kind: str, extra: str = "") -> str:
    sev = _e(c.severity)
    return (f'<div class="bb-card-head"><span class="bb-code">{_e(c.code)}</span>'
            f'<span class="bb-badge bb-{sev}">{_e(severity_label(c.severity))}</span>'
            f'<span class="bb-badge bb-{kind}">{_e(badge)}</span>{extra}</div>')


# The badge of a code carried from an earlier message (codes[].from_history), shared with the widget.
FROM_HISTORY = WORDING["labels"]["from_history"]


def _carried(c: Code) -> tuple[str, str]:
    """The card's extra class and badge when ``c`` comes from earlier in the conversation."""
    if not c.from_history:
        return "", ""
    return " bb-carried", f'<span class="bb-badge bb-from-history">{_e(FROM_HISTORY)}</span>'


def _words(meaning: str, action: str) -> str:
    """A row's meaning and action, verbatim, under the shared labels."""
    return (f'<p><b>{_e(WORDING["meaning_label"])}:</b> <span class="bb-meaning">{_e(meaning)}</span></p>'
            f'<p><b>{_e(WORDING["action_label"])}:</b> <span class="bb-action">{_e(action)}</span></p>')


def _card(c: Code) -> str:
    carried, badge = _carried(c)
    if c.match == "exact":
        r = c.row
        cited = c.rows or [r]  # every row holding the code (several articles' tables), each cited, never merged
        one_code = all(x.code == r.code for x in cited)  # else each row names its own (550-5.7.1, 554-5.7.1)
        via = f' <span class="bb-via">{_e(table_row(r.code))}</span>' if r.code != c.code and one_code else ""
        # the same words in several tables: quoted once, with the first few of them (render.same_words)
        words = "".join((_holders(g) if len(g) > 1 else _row_cite(g[0]) if len(cited) > 1 else "")
                        + _words(g[0].meaning, g[0].action) for g in same_words(cited))
        return (f'<div class="bb-card bb-exact{carried}" data-code="{_e(c.code)}">'
                f'{_head(c, LABELS["in_table"], "intable", via + badge)}{words}</div>')
    warning = _plain_wording("not_in_table", code=c.code, severity_label=severity_label(c.severity))
    body = [f'<p class="bb-warn">{_e(warning)}</p>']
    e = c.explanation
    if e is None:
        body.append(f'<p class="bb-general">{_e(WORDING["no_general"])}</p>')
    else:
        heading = _plain_wording("general_heading", basis_label=basis_label(e.basis))
        body.append(f'<p class="bb-general"><b>{_e(heading)}</b> {_e(e.meaning)}</p><p class="bb-general">'
                    f'<b>{_e(WORDING["general_action_label"])}:</b> {_e(e.action)}</p>')
    if c.related:
        codes = ", ".join(f"{r.code} ({r.shares})" for r in c.related)
        body.append(f'<p class="bb-related">{_e(_plain_wording("related_line", codes=codes))}</p>')
    return (f'<div class="bb-card bb-none{carried}" data-code="{_e(c.code)}">'
            f'{_head(c, LABELS["not_in_table"], "notintable", badge)}{"".join(body)}</div>')


def _holders(group) -> str:
    line = holders_line(group, lambda h: f'<a href="{_e(h.url)}" target="_blank" rel="noopener">'
                        f'{_e(LABELS["source_link"].format(article=h.article or "", section=h.section))}</a>', _e)
    return f'<p class="bb-cite bb-row-holders">{line}</p>'


def _row_cite(r) -> str:
    label = LABELS["source_link"].format(article=r.article or "", section=r.section)
    return (f'<p class="bb-cite"><a href="{_e(r.url)}" target="_blank" rel="noopener">{_e(label)}</a>'
            f' <span class="bb-row-code">{_e(table_row(r.code))}</span></p>')


def _plain_wording(key: str, **values) -> str:
    """A sentence of wording.yaml as plain text (escaped where it is shown)."""
    return plain(WORDING[key]).format(**values)


def code_cards_html(answer: Answer | dict) -> str:
    """One card per code (``codes[]``): the table's words for an exact match; a clearly
    marked not-in-table card, with general guidance labelled as such, otherwise."""
    codes = _answer(answer).codes
    if not codes:
        return f'<p class="bb-empty">{_e(LABELS["no_codes"])}</p>'
    return "\n".join(_card(c) for c in codes)


def recipients_html(answer: Answer | dict) -> str:
    """For a pasted message: what it is when it is not a failure (``message_kind``), and each
    recipient of a bounce (``recipients[]``) with its decisive code and why, and Bouncebot's reading
    (``verdict``): badges (hard or soft bounce, or the action; suppress or keep) and one sentence."""
    a = _answer(answer)
    kind = kind_sentence(a.message_kind)
    head = f'<p class="bb-kind">{_e(plain(kind))}</p>' if kind else ""
    recipients = [r for r in a.recipients if r.recipient or r.status or r.reply_code or r.verdict]
    if not recipients or (len(recipients) == 1 and not recipients[0].recipient):  # a code quoted in a question
        return f'<div class="bb-recipients">{head}</div>' if head else ""
    ours = f'<p class="bb-ours">{_e(VERDICT["label"])}</p>' if any(r.verdict for r in recipients) else ""
    rows = "".join(_recipient(r) for r in recipients)
    return (f'<div class="bb-recipients">{head}<b>{_e(recipients_label(a.message_kind))}</b>{ours}'
            f'<ul>{rows}</ul></div>')


def _recipient(r: Recipient) -> str:
    """One recipient: address, code, why; with a verdict, its badges, sentence, next step and evidence."""
    line = (f'<span class="bb-rcpt">{_e(r.recipient or LABELS["recipient_not_named"])}</span>: '
            f'<span class="bb-code">{_e(recipient_code(r) or LABELS["no_code"])}</span>'
            f' <span class="bb-why">({_e(r.decisive)})</span>')
    v = r.verdict
    if v is None and r.action == "failed":
        return f"<li>{line}</li>"
    marks = "".join(f'<span class="bb-badge bb-verdict bb-{_e(name)}">{_e(label)}</span>' for name, label in badges(r))
    body = ""
    if v is not None:
        body = (f'<div class="bb-verdict-sentence">{_e(plain(reason_sentence(v)))}</div><div class="bb-next">'
                f'<b>{_e(VERDICT["next_label"])}:</b> {_e(plain(retry_sentence(v)))}</div>')
        if v.evidence:
            body += (f'<div class="bb-evidence">{_e(evidence_label(v))}: '
                     f'<code>{_e(one_line(v.evidence))}</code></div>')
    return f'<li class="bb-recipient" data-action="{_e(r.action)}">{line}<div class="bb-badges">{marks}</div>{body}</li>'


def _source(s: Source) -> str:
    link = LABELS["source_link"].format(article=s.article, section=s.section)
    if s.kind == "row" and s.row is not None:  # a table row: its code, then its words
        opening = f'<span class="bb-code">{_e(s.row.code)}</span> {_e(LABELS["in_table"])}'
        body = _words(s.row.meaning, s.row.action)
    else:
        words = s.text.replace("\n", " ").split()
        opening = "“" + _e(" ".join(words[:7]) + (" …" if len(words) > 7 else "")) + "”"
        body = f"<blockquote>{_multiline(s.text)}</blockquote>"
    return (f'<details class="bb-source bb-source-{_e(s.kind)}"><summary><a href="{_e(s.url)}" target="_blank" '
            f'rel="noopener noreferrer">{_e(link)}</a> <span class="bb-score">{s.score:.2f}</span>'
            f'<div class="bb-opening">{opening}</div></summary>{body}</details>')


def sources_html(answer: Answer | dict) -> str:
    """The cited parts of the article (``sources[]``), each linked; expand one to read it."""
    sources = _answer(answer).sources
    if not sources:
        return f'<p class="bb-empty">{_e(LABELS["no_sources"])}</p>'
    return "\n".join(_source(s) for s in sources)


def panels(answer: Answer) -> tuple[str, str]:
    """The side panels for ``answer``: its recipients and code cards, and its cited sources."""
    return recipients_html(answer) + code_cards_html(answer), sources_html(answer)
