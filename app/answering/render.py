"""Render a decided answer: the answerer decides the structured parts of a
``contract.Answer`` (codes, sources, notices, support...), this module writes
them out, and nothing here decides anything.

- ``markdown(answer)``: the ``answer`` text the chat shows and the API sends.
- ``lookup_text(lookup)``: ``bouncebot lookup``'s plain-text lines.
- The pieces every surface shares (``plain``, ``severity_label``,
  ``basis_label``, ``table_row``, ``recipient_code``, ``LABELS``), so the chat
  shows the same words as the Markdown and the CLI; a pasted bounce's
  recipients and message kind are written by ``render_bounce``.

All wording is in ``data/wording.yaml``. The table's words are never changed:
rows and passages are quoted as they are, and wording templates lose their
Markdown (``plain``) before anything is filled into them, never after.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.answering import render_bounce
from app.answering.render_bounce import recipient_code
from app.answering.wording import LABELS, WORDING, plain

if TYPE_CHECKING:  # annotations only: `bouncebot lookup` renders without pydantic
    from app.answering.contract import Answer, Code, Lookup, Notice, Source, Support

__all__ = [
    "LABELS", "WORDING", "basis_label", "fallback_mark", "lookup_text", "markdown", "notice", "plain", "quote",
    "recipient_code", "severity_label", "small_talk_text", "table_row", "with_lead",
]

FALLBACK_ARTICLE = "Common Email Delivery Errors"  # named in "I don't know" when the KB has no support section
# The caps are said together, recipients first, in one paragraph after the codes.
CAPS = ("recipients_capped", "codes_capped")
HOLDERS_SHOWN = 3  # articles cited by name for a row several tables hold word for word (panel-answer.js too)
NOTICE_WORDING = {"recipients_capped": "limits_recipients", "codes_capped": "limits_codes",
                  "search_unavailable": "search_unavailable"}


# ------------------------------------------------------------ shared pieces

def quote(text: str) -> str:
    """``text`` as a Markdown block quote, blank lines included."""
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def severity_label(severity: str) -> str:
    return WORDING["severity_labels"].get(severity, severity)


def basis_label(basis: str) -> str:
    return WORDING["basis_labels"][basis]


def table_row(row_code: str) -> str:
    return LABELS["table_row"].format(row_code=row_code)


def notice(kind: str, **values) -> Notice:
    """The notice of ``kind`` with its sentence (``examined``/``found`` for a cap, ``problem`` for search)."""
    from app.answering.contract import Notice

    return Notice(kind=kind, text=WORDING[NOTICE_WORDING[kind]].format(**values))


# ----------------------------------------------------------------- Markdown

def step_pattern() -> str:
    """A regular expression finding the step heading in an earlier answer (group 1: its number)."""
    p = re.escape(WORDING["step_heading"])
    for name, sub in (("n", r"(\d+)"), ("total", r"\d+"), ("section", ".*?"), ("url", ".*?")):
        p = p.replace(re.escape("{" + name + "}"), sub)
    return p


def markdown(answer: Answer, small_talk: str | None = None, articles: int = 1) -> str:
    """The Markdown ``answer`` of a decided answer; ``articles``: how many the KB answers from (its
    "I don't know" and support lines say "the article" for one, the help centre's articles for more).

    Small talk, drafts, hand-offs and follow-ups have their own shapes (``_conversation``);
    the rest is the single-turn answer:

    In order: for a pasted message, what it is when it is not a failure and its
    recipients with Bouncebot's reading (``render_bounce.lead``); a block per code;
    the caps' notice; then, when no code was exact, the search notice and either the
    passages quoted (``sources``), or "I don't know" (no code, no passage), or the
    support section (codes, no passage)."""
    if answer.intent != "question" and (answer.intent != "follow_up" or any(c.from_history for c in answer.codes)
                                        or not answer.codes):
        return _conversation(answer, small_talk, articles)
    parts = render_bounce.lead(answer.message_kind, answer.recipients)
    parts += [_exact(c) if c.match == "exact" else _untabled(c) for c in answer.codes]
    caps = [n.text for kind in CAPS for n in answer.notices if n.kind == kind]
    if caps:
        parts.append(" ".join(caps))
    if not answer.exact:  # the exact codes' sources are their rows, cited in their blocks
        parts += [n.text for n in answer.notices if n.kind == "search_unavailable"]
        if answer.sources:
            parts.append(WORDING["passages_intro_after_codes"] if answer.codes
                         else WORDING["passages_intro"].format(article=answer.sources[0].article))
            parts += [_passage(s) for s in answer.sources]
        elif not answer.codes:
            parts.append(_dont_know(answer, articles))
        elif answer.support is not None:
            parts.append(_support(answer.support, articles))
    return "\n\n".join(parts)


def _table_words(code: str | None, meaning: str, action: str, general: bool = False) -> str:
    label = WORDING["general_action_label" if general else "action_label"]
    head = "" if general else f"**{WORDING['meaning_label']}:** "
    body = f"{head}{meaning}\n\n**{label}:** {action}"
    return f"**{code}**\n\n{body}" if code else body


def _exact(c: Code) -> str:
    row = c.row
    rows = c.rows or [row]
    # Rows of several full codes (an enhanced code alone: 550-5.7.1 here, 554-5.7.1 there) name theirs each.
    via = WORDING["exact_via"].format(table_row=table_row(row.code)) if c.code != row.code and all(
        r.code == row.code for r in rows) else ""
    if len(rows) > 1:  # several articles' tables hold the code: each row whole, with its own citation
        groups = same_words(rows)
        key = ("exact_rows_heading" if len(groups) == len(rows) else
               "exact_rows_same_heading" if len(groups) == 1 else "exact_rows_grouped_heading")
        head = WORDING[key].format(code=c.code, via=via, severity_label=severity_label(c.severity),
                                   count=len(rows), wordings=len(groups))
        return "\n\n".join([head] + [_row_from(g) + "\n\n" + quote(_table_words(None, g[0].meaning, g[0].action))
                                      for g in groups])
    head = WORDING["exact_heading"].format(code=c.code, via=via, severity_label=severity_label(c.severity),
                                           section=row.section, url=row.url)
    return head + "\n\n" + quote(_table_words(None, row.meaning, row.action))


def same_words(rows: list) -> list[list]:
    """``rows`` in groups of the same words (code, meaning and action), in the order each first comes:
    a row a hundred articles' tables hold word for word is quoted once, with their citations."""
    groups: dict[tuple[str, str, str], list] = {}
    for r in rows:
        groups.setdefault((r.code, r.meaning, r.action), []).append(r)
    return list(groups.values())


def _row_from(group: list) -> str:
    """Where a row's words are from: its table's citation, or (the same words in several tables) the
    first ``HOLDERS_SHOWN`` of them and how many more."""
    r = group[0]
    if len(group) == 1:
        return WORDING["exact_row_from"].format(article=r.article or "", section=r.section, url=r.url,
                                                table_row=table_row(r.code))
    return holders_line(group, lambda h: f"[{LABELS['source_link'].format(article=h.article or '', section=h.section)}]"
                                         f"({h.url})")


def holders_line(group: list, cite, text=lambda s: s) -> str:
    """``labels.row_holders`` for rows of the same words in several tables: the first ``HOLDERS_SHOWN``
    of them each as ``cite(row)`` gives it, then how many more; ``text`` is applied to the label's own
    words (the chat card escapes them)."""
    cites = ", ".join(cite(h) for h in group[:HOLDERS_SHOWN])
    if len(group) > HOLDERS_SHOWN:
        cites += " " + text(LABELS["row_holders_more"].format(count=len(group) - HOLDERS_SHOWN))
    before, _, after = LABELS["row_holders"].partition("{citations}")
    fill = lambda part: text(part.format(count=len(group), table_row=table_row(group[0].code)))  # noqa: E731
    return fill(before) + cites + fill(after)


def _untabled(c: Code) -> str:
    lines = [WORDING["not_in_table"].format(code=c.code, severity_label=severity_label(c.severity))]
    e = c.explanation
    if e is None:
        lines.append(WORDING["no_general"])
    else:
        lines.append(WORDING["general_heading"].format(basis_label=basis_label(e.basis)))
        lines.append(quote(_table_words(None, e.meaning, e.action, general=True)))
    if c.related:
        codes = ", ".join(f"[{r.code}]({r.url}) ({r.shares})" for r in c.related)
        lines.append(WORDING["related_line"].format(codes=codes))
    return "\n\n".join(lines)


def _passage(s: Source) -> str:
    quoted = (s.focused or s.text) if s.kind == "section" or s.row is None else _table_words(
        s.row.code, s.row.meaning, s.row.action)
    return quote(quoted) + "\n\n" + WORDING["citation"].format(article=s.article, section=s.section, url=s.url)


def _support(s: Support, articles: int = 1) -> str:
    intro = WORDING["support_intro" if articles <= 1 else "support_intro_many"]
    return intro.format(section=s.section, url=s.url, article=s.article) + "\n\n" + quote(s.text)


def _dont_know(answer: Answer, articles: int = 1) -> str:
    s = answer.support
    text = (WORDING["dont_know"].format(article=s.article if s else FALLBACK_ARTICLE) if articles <= 1
            else WORDING["dont_know_many"].format(count=f"{articles:,}"))
    if answer.other_article:
        text += " " + WORDING["other_article"].format(title=answer.other_article)
    return text + ("\n\n" + _support(s, articles) if s else "")


def fenced(text: str) -> str:
    """``text`` as a fenced block (the chat gives it a copy button), fence longer than any backtick run inside."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def _conversation(answer: Answer, small_talk: str | None, articles: int = 1) -> str:
    if answer.intent == "small_talk":  # small_talk: greeting, thanks or help (the opening line)
        return small_talk_text(small_talk)
    if answer.intent == "draft":
        return _draft(answer)
    if answer.intent == "handoff":
        return _handoff(answer)
    parts = []
    if answer.codes:
        parts.append(WORDING["from_history"].format(codes=", ".join(f"**{c.code}**" for c in answer.codes)))
        parts += [_exact(c) if c.match == "exact" else _untabled(c) for c in answer.codes]
        if not answer.exact and answer.support is not None:
            parts.append(_support(answer.support, articles))
        return "\n\n".join(parts)
    for s in answer.sources:  # a section continued: the whole of it, or the next step of its list
        parts.append(WORDING["topic_from_history"].format(section=s.section, url=s.url))
        parts.append(quote(s.text) + "\n\n" + WORDING["citation"].format(article=s.article, section=s.section,
                                                                          url=s.url))
    return "\n\n".join(parts)


def small_talk_text(kind: str | None, opening: str | None = None) -> str:
    """The small-talk reply: its opening (the wording's, or ``opening``, the model's), then the examples."""
    w = WORDING["small_talk"]
    kind = kind if kind in ("greeting", "thanks", "help") else "help"
    examples = "\n".join(f"- {e}" for e in w["examples"])
    opening = opening or f"{w[kind]} {w['what'].format(article=FALLBACK_ARTICLE)}"
    return f"{opening}\n\n{w['try']}\n\n{examples}"


def with_lead(lead: str, answer_markdown: str) -> str:
    """The language model's short answer above the decided answer (its rows and passages, verbatim)."""
    return f"{lead.strip()}\n\n{answer_markdown}"


def fallback_mark(reason: str, answer_markdown: str) -> str:
    """The default mode's answer, marked as shown without the language model's text, and why."""
    w = WORDING["llm"]
    return w["fallback"].format(why=w["fallback_reasons"][reason]) + "\n\n" + answer_markdown


def _draft(answer: Answer) -> str:
    w, d = WORDING["draft"], answer.draft
    parts = [f"**{w['label']}**", w["channel_" + d.channel], fenced(d.text)]
    rows = [s for s in answer.sources if s.kind == "row" and s.row is not None]
    for s in rows:  # the table's facts the draft relies on, verbatim and cited
        parts.append(w["facts"].format(code=s.row.code) + "\n\n" + quote(_table_words(None, s.row.meaning, s.row.action))
                     + "\n\n" + WORDING["citation"].format(article=s.article, section=s.section, url=s.url))
    if not rows:
        parts.append(w["no_facts"])
    return "\n\n".join(parts)


def _handoff(answer: Answer) -> str:
    w, h = WORDING["handoff"], answer.handoff
    parts = [_exact(c) for c in answer.codes if c.match == "exact"]  # the rows the request is about, verbatim
    for s in [s for s in answer.sources if s.kind == "section"][:1]:
        parts.append(w["intro"].format(section=s.section, url=s.url) + "\n\n" + quote(s.text))
    parts += [w["request"], fenced(f"{h.subject}\n\n{h.text}")]
    parts.append(w["mailto"].format(to=h.to, mailto=h.mailto) if h.mailto else w["no_address"])
    return "\n\n".join(parts)


# --------------------------------------------------------------- plain text

def lookup_text(lookup: Lookup) -> str:
    """``bouncebot lookup``'s lines: what a pasted message is when it is not a failure,
    the recipients of a bounce (each with Bouncebot's reading, when it has one), then
    each code with the table's words, or marked as not in the table with general guidance."""
    cli = WORDING["cli"]
    kind = render_bounce.kind_sentence(lookup.message_kind)
    lines = [plain(kind)] if kind else []
    for r in lookup.recipients:
        if r.recipient or len(lookup.recipients) > 1:
            recipient = render_bounce.one_line(r.recipient) if r.recipient else LABELS["recipient_not_named"]
            lines.append(cli["recipient"].format(recipient=recipient, code=recipient_code(r) or LABELS["no_code"],
                                                 decisive=r.decisive))
            lines += render_bounce.lookup_lines(r)
    if not lookup.codes:
        lines.append(LABELS["no_codes"])
    for c in lookup.codes:
        severity = severity_label(c.severity)
        if c.match == "exact":
            rows = c.rows or [c.row]
            if len(rows) > 1:
                lines.append(cli["exact_rows"].format(code=c.code, count=len(rows), severity_label=severity))
            else:
                lines.append(cli["exact"].format(code=c.code, table_row=table_row(c.row.code), severity_label=severity))
            for g in same_words(rows):  # the same words in several tables: once, with the first few of them
                r = g[0]
                if len(g) > 1:
                    lines.append("  " + holders_line(g, lambda h: cli["holder"].format(
                        article=h.article or "", section=h.section, url=h.url)))
                elif len(rows) > 1:
                    lines.append(cli["row_from"].format(article=r.article or "", section=r.section, url=r.url,
                                                        table_row=table_row(r.code)))
                lines.append(cli["meaning"].format(meaning_label=WORDING["meaning_label"], meaning=r.meaning))
                lines.append(cli["action"].format(action_label=WORDING["action_label"], action=r.action))
            continue
        lines.append(cli["not_in_table"].format(code=c.code, not_in_table=LABELS["not_in_table"],
                                                severity_label=severity))
        e = c.explanation
        if e is not None:
            heading = plain(WORDING["general_heading"]).format(basis_label=basis_label(e.basis))
            lines.append(cli["general"].format(general_heading=heading, meaning=e.meaning))
            lines.append(cli["general_action"].format(general_action_label=WORDING["general_action_label"],
                                                      action=e.action))
        if c.related:
            related = plain(WORDING["related_line"]).format(codes=", ".join(r.code for r in c.related))
            lines.append(cli["related"].format(related_line=related))
    return "\n".join(lines)
