"""What kind of message a pasted report is, and each recipient's RFC 3464 action.

>>> from app.codes.decode import read_report
>>> kind_of(read_report("Subject: Automatic reply: Invoice\\nFrom: a@example.org\\n\\nI am out of the office."))
'autoreply'
>>> kind_of(read_report("550 5.1.1 <a@example.org>: user unknown"))
'failure'
>>> kind_of(read_report("Hello, how do I change my password?"))
'not_report'

Kinds: ``failure`` (the message was not delivered), ``delay`` (not failed yet:
the server keeps trying), ``success`` (a delivery or relay DSN), ``autoreply``
(out of office, RFC 3834), ``challenge`` (challenge-response: "verify you are
a human"), ``complaint`` (an ARF feedback report) and ``not_report``. Only
failures and delays have failed recipients.

The signals and the order they are read in are data (``data/kinds.yaml``,
which says why that order); the first rule that matches names the kind:

1. complaint: ``report-type=feedback-report``, ARF wording, Amazon SES complaints;
2. the DSN's ``Action:`` fields (the delivery-status parts, else field lines in
   the text): any failed recipient makes a failure, else any delayed one a
   delay, else delivered/relayed/expanded only a success;
3. challenge-response, delay, failure and success wording, in that order;
4. a bounce's headers (X-Failed-Recipients, report-type=delivery-status, From
   MAILER-DAEMON or postmaster): a failure;
5. auto-reply headers (Auto-Submitted: auto-replied, X-Autoreply, ...),
   subjects ("Out of Office", "Automatic reply", "Auto:") and wording;
6. a 4xx/5xx code (a reply with its enhanced code anywhere; a lone code at
   the start of a line, after '#' or a label's colon): a pasted log line or
   bounce fragment is a failure, and so is a question quoting a code;
7. else ``not_report``: a plain question, a newsletter, a customer's email;
   unless a message attached to it (a bounce forwarded as an attachment) is
   of another kind, which is then the answer.

Never raises; linear in the size of the input (each expression is searched
once over at most MAX_SCANNED characters).
"""

from __future__ import annotations

import re
from functools import lru_cache

from app._data import data_file
from app.codes._lazy import pattern
from app.codes.decode import Report, dsn_blocks, message_text, read_report
from app.codes.find import find_codes

__all__ = ["ACTIONS", "KINDS", "MAX_SCANNED", "action_of", "kind_of"]

KINDS = ("failure", "delay", "success", "autoreply", "challenge", "complaint", "not_report")
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
MAX_SCANNED = 64 * 1024  # characters of report text read (a bounce's report text is a few KB)
_MAX_DEPTH, _MAX_ATTACHED = 3, 5  # forwarded bounces inside forwarded messages; attachments read per message
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_IMPLIED = {"delay": "delayed", "success": "delivered"}  # a recipient's action when its block names none
# What may stand before a lone code: the start of its line, a '#' (qmail
# '(#5.1.1)'), or a label's colon ('Status: 5.1.1', 'said: 550'); not a word
# ('CommuniGate Pro SMTP 5.0.9' is a version).
_CODE_BEFORE = re.compile(r"(?:^|[\n#:])[ \t>*|('\"-]{0,8}$")
_SPACE = re.compile(r" \??")


class _Rule:
    """One row of data/kinds.yaml, each expression compiled once, when first searched."""

    def __init__(self, row: dict):
        self.kind: str | None = row.get("kind")
        self.test: str | None = row.get("test")
        self.prefixes = [(n[:-1], _compile([v])) for n, v in (row.get("headers") or {}).items() if n.endswith("*")]
        self.headers = {n: _compile([v]) for n, v in (row.get("headers") or {}).items() if not n.endswith("*")}
        self.text = _compile(row["text"]) if row.get("text") else None

    def matches(self, headers: dict[str, str], text: str) -> bool:
        if any(name in headers and rx.search(headers[name]) for name, rx in self.headers.items()):
            return True
        if any(rx.search(v) for p, rx in self.prefixes for n, v in headers.items() if n.startswith(p)):
            return True
        return bool(self.text and self.text.search(text))


def _compile(patterns: list[str]):
    """One expression for all of ``patterns``; a space matches a run of white space, ' ?' an optional one.
    Compiled when first searched: a header rule's expression only for a message with that header."""
    joined = _SPACE.sub(lambda m: r"\s*" if m.group() == " ?" else r"\s+", "|".join(f"(?:{p})" for p in patterns))
    return pattern(joined, re.IGNORECASE | re.MULTILINE)


@lru_cache(maxsize=1)
def _table() -> tuple[list[tuple[str, str]], list[_Rule]]:
    data = data_file("app.codes", "kinds.yaml")
    starts = [(start, action) for action, words in data["actions"].items() for start in words]
    return starts, [_Rule(row) for row in data["rules"]]


def _normal_action(value: str | None) -> str | None:
    """'Delayed' -> 'delayed', 'deliverable' -> 'delivered', 'expired' -> 'failed'."""
    word = str(value or "").strip().lower().split(" ")[0].strip(";,.")
    if not word:
        return None
    return next((action for start, action in _table()[0] if word.startswith(start)), None)


def action_of(block: dict, kind: str) -> str:
    """A recipient's RFC 3464 action: its DSN block's ``action`` field, else
    what the kind implies (delay -> 'delayed', success -> 'delivered', else 'failed')."""
    try:
        found = _normal_action(block.get("action")) if isinstance(block, dict) else None
        return found or _IMPLIED.get(kind, "failed")
    except Exception:  # noqa: BLE001 - a strange block or kind: the default
        return "failed"


def _by_actions(report: Report) -> str | None:
    """failure, delay or success from the DSN's Action fields; None without any."""
    blocks = getattr(report, "blocks", None) or [
        b for source in (report.dsn or [report.text]) for b in dsn_blocks(source[:MAX_SCANNED])
    ]
    actions = {_normal_action(b.get("action")) for b in blocks if "action" in b} - {None}
    if "failed" in actions:
        return "failure"
    if "delayed" in actions:
        return "delay"
    return "success" if actions and actions <= _SUCCESS_ACTIONS else None


def _names_failure_code(text: str) -> bool:
    """A 4xx/5xx code: a reply with its enhanced code ('550 5.1.1') anywhere,
    a lone code only where _CODE_BEFORE allows."""
    return any(
        (f.enhanced or f.reply)[0] in "45"
        and ((f.reply and f.enhanced) or _CODE_BEFORE.search(text[max(0, f.start - 9) : f.start]))
        for f in find_codes(text)
    )


MAX_SUBJECT = 1000  # characters of a Subject read (decode_header is quadratic in its length)


def _subject(headers: dict[str, str]) -> str:
    raw = headers.get("subject", "")[:MAX_SUBJECT]
    if not raw:  # a pasted text without headers: nothing to decode (nor the email package to import)
        return raw
    import email.header

    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except Exception:  # noqa: BLE001 - a broken encoded word is read as written
        return raw


def kind_of(report: Report) -> str:
    """One of KINDS for ``report`` (see the module doc for the rules)."""
    return _kind_of(report, 0)


def _kind_of(report: Report, depth: int) -> str:
    try:
        kind = _top_level(report)
    except Exception:  # noqa: BLE001 - a paste must never crash the chat: read it as the parser always did
        return "failure"
    if kind != "not_report" or depth >= _MAX_DEPTH:
        return kind
    for message in list(getattr(report, "attached", None) or [])[:_MAX_ATTACHED]:  # a bounce forwarded as attachment
        try:
            inner = _kind_of(read_report(message_text(message)), depth + 1)
        except Exception:  # noqa: BLE001 - a broken attachment says nothing
            continue
        if inner != "not_report":
            return inner
    return kind


def _top_level(report: Report) -> str:
    headers = {str(k).lower(): str(v) for k, v in (report.headers or {}).items()}
    headers["subject"] = _subject(headers)
    feedback = str(getattr(report, "feedback", ""))[:MAX_SCANNED]  # the ARF part's fields
    text = "\n".join((headers["subject"], feedback, (report.text or "")[:MAX_SCANNED]))
    for rule in _table()[1]:
        if rule.test == "actions":
            found = _by_actions(report)
            if found:
                return found
        elif rule.test == "codes":
            if _names_failure_code(text):
                return rule.kind or "failure"
        elif rule.matches(headers, text):
            return rule.kind or "not_report"
    return "not_report"
