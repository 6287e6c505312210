"""A pasted bounce written out: what the message is when it is not a failure
(``message_kind``), and each recipient with Bouncebot's reading of it
(``recipients[].verdict``): badges (hard or soft bounce, or the recipient's
action when it did not fail; suppress or keep the address), one sentence, what
to do next, and the line of the bounce it was read from.

The pieces (``badges``, ``reason_sentence``, ``retry_sentence``,
``evidence_label``, ``kind_sentence``) are what the chat shows too; the widget
builds the same from the same fields and labels (``verdict.*``,
``message_kinds.*`` in ``data/wording.yaml``). The sentences are our own words,
never the article's, and always shown under ``verdict.label``.

Pasted text (addresses, evidence) never becomes markup: in Markdown it is a
code span (``code_span``), in plain text one line without control characters
(``one_line``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.answering.wording import LABELS, WORDING, plain

if TYPE_CHECKING:  # annotations only: `bouncebot lookup` renders without pydantic
    from app.answering.contract import Recipient, Verdict

__all__ = [
    "MAX_LISTED", "badges", "code_span", "evidence_label", "kind_sentence", "lead", "lookup_lines", "one_line",
    "reason_sentence", "recipient_code", "recipients_label", "retry_sentence", "shows_recipients",
]

V = WORDING["verdict"]
MAX_LISTED = 10  # recipients listed one by one in the Markdown answer; the rest are counted (all are in the JSON)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BACKTICKS = re.compile(r"`+")


def recipient_code(r: Recipient) -> str:
    """A recipient's decisive codes as the bounce gave them ('550 5.1.1'); '' when none."""
    return " ".join(x for x in (r.reply_code, r.status) if x)


def one_line(text: str) -> str:
    """Pasted text on one line: whitespace runs as one space, control characters as U+FFFD
    (no terminal escape sequence, no line break a renderer could read as structure)."""
    return _CONTROL.sub("\ufffd", " ".join(str(text).split()))


def code_span(text: str) -> str:
    """``text`` as one Markdown code span, shown literally whatever it holds (HTML, links,
    emphasis, backticks): the fence is longer than any run of backticks inside."""
    text = one_line(text) or "\ufffd"
    fence = "`" * (1 + max((len(r) for r in _BACKTICKS.findall(text)), default=0))
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def kind_sentence(kind: str | None) -> str | None:
    """The sentence saying what a pasted message is; None for a failure, a question or a kind without one."""
    return None if kind in (None, "failure") else WORDING["message_kinds"].get(kind)


def badges(r: Recipient) -> list[tuple[str, str]]:
    """(name, label) of a recipient's badges: 'hard' or 'soft' when it failed and has a verdict, else its
    action ('failed', 'delayed', ...); then 'suppress' or 'keep' when it has a verdict."""
    v = r.verdict
    first = r.action if v is None or r.action != "failed" else ("hard" if v.hard else "soft")
    out = [(first, V["actions"][first] if first in V["actions"] else V[first])]
    if v is not None:
        out.append(("suppress", V["suppress"]) if v.suppress else ("keep", V["keep"]))
    return out


def reason_sentence(v: Verdict) -> str:
    return V["reasons"].get(v.reason) or V["unknown_reason"].format(reason=v.reason)


def retry_sentence(v: Verdict) -> str:
    return V["retry"][v.retry]


def evidence_label(v: Verdict) -> str:
    return V["evidence_label"].format(basis_label=V["basis_labels"].get(v.basis, v.basis))


def shows_recipients(recipients: list[Recipient]) -> bool:
    """Whether the answer lists the recipients with their verdicts: the bounce names one or has several
    (a lone unnamed one is a code quoted in a question, answered by its row), and some has a verdict or
    did not simply fail (a delay)."""
    if len(recipients) == 1 and not recipients[0].recipient:
        return False
    return any(r.verdict is not None or r.action != "failed" for r in recipients)


def recipients_label(kind: str | None) -> str:
    """The heading of a recipients list: failed ones, or delayed ones in a delay warning."""
    return LABELS["recipients_delayed" if kind == "delay" else "recipients"]


# ----------------------------------------------------------------- Markdown

def lead(kind: str | None, recipients: list[Recipient]) -> list[str]:
    """The Markdown blocks a pasted message's answer starts with: what the message is (when it is not a
    failure), then the recipients with Bouncebot's reading; [] for a failure whose recipients have none."""
    parts = [s for s in (kind_sentence(kind),) if s]
    if shows_recipients(recipients):
        items = [_item(r) for r in recipients[:MAX_LISTED]]
        if len(recipients) > MAX_LISTED:
            items.append(V["more"].format(n=len(recipients) - MAX_LISTED))
        parts.append(V["heading"].format(label=V["label"]) + "\n\n" + "\n\n".join(items))
    return parts


def _item(r: Recipient) -> str:
    head = V["item"].format(recipient=code_span(r.recipient) if r.recipient else LABELS["recipient_not_named"],
                            code=recipient_code(r) or LABELS["no_code"],
                            badges=", ".join(f"**{label}**" for _, label in badges(r)))
    v = r.verdict
    if v is None:
        return head
    body = [f"{reason_sentence(v)} **{V['next_label']}:** {retry_sentence(v)}"]
    if v.evidence:
        body.append(f"{evidence_label(v)}: {code_span(v.evidence)}")
    return "\\\n".join([head] + ["  " + b for b in body])  # hard line breaks: one paragraph per recipient


# --------------------------------------------------------------- plain text

def lookup_lines(r: Recipient) -> list[str]:
    """``bouncebot lookup``'s lines under a recipient with a verdict: its badges and sentence, what to
    do next, and the line of the bounce it was read from."""
    v, cli = r.verdict, WORDING["cli"]
    if v is None:
        return []
    lines = [cli["verdict"].format(badges=", ".join(label for _, label in badges(r)),
                                   sentence=plain(reason_sentence(v)), label=V["label"]),
             cli["next"].format(next_label=V["next_label"], retry=plain(retry_sentence(v)))]
    if v.evidence:
        lines.append(cli["evidence"].format(evidence_label=evidence_label(v), evidence=one_line(v.evidence)))
    return lines
