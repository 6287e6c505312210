"""Read a bounced email (or a piece of one) and say, per failed recipient,
which SMTP reply code and enhanced status code the mail servers gave.

>>> (r,) = parse_bounce("Remote host said: 550 5.1.1 <a@example.org>... User Unknown")
>>> r.recipient, r.status, r.reply_code
('a@example.org', '5.1.1', '550')
>>> r.decisive
'reply code and enhanced code from the report text'

The pipeline, one stage a module, each run once per message:

1. decode (:mod:`app.codes.decode`): the message into a report: headers,
   report text, HTML as text, delivery-status blocks, the original's headers;
2. codes in the report text, line by line (:mod:`app.codes.scan`);
3. recipients (:mod:`app.codes.recipients`): who failed, from the DSN fields or
   the shapes mail servers write, each with the codes that are theirs;
4. the decisive code per recipient (:mod:`app.codes.choose`).

What a bounce is (``Bounce.kind``) and what to do with an address
(``Recipient.verdict``) are decided after this, from tables.

Stdlib only. Never raises; linear in the size of the input.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from app.codes.addresses import from_mail_system
from app.codes.choose import choose
from app.codes.decode import Report, looks_like_mail, message_text, read_report, split_mbox, to_text
from app.codes.kind import action_of, kind_of
from app.codes.recipients import pull
from app.codes.registry import named_providers
from app.codes.scan import MAX_DIAGNOSTIC, MAX_FIELD, MAX_SCANNED, scan_lines
from app.codes.verdict import Verdict, decide

__all__ = [
    "MAX_DIAGNOSTIC", "MAX_FIELD", "MAX_RECIPIENTS", "MAX_SCANNED", "Bounce", "Recipient",
    "looks_like_bounce_message", "parse_bounce", "read_bounce",
]

# Recipients read per bounce. Real bounces name one to a few (the corpus: at
# most 4); a mailing-list bounce a few dozen. Each costs a diagnostic of up to
# MAX_DIAGNOSTIC characters in every answer; the rest are counted, not read.
MAX_RECIPIENTS = 100
MAX_MESSAGES = 100  # of an mbox
_MAX_DEPTH = 3  # forwarded bounces inside forwarded bounces


@dataclass(frozen=True)
class Recipient:
    """One failed (or, in a success report, delivered) recipient."""

    recipient: str | None
    status: str | None  # enhanced status code, '5.1.1'
    reply_code: str | None  # SMTP reply code, '550'
    diagnostic: str | None  # the server's words, unfolded, at most ~500 characters
    decisive: str  # which code was decisive, and why
    action: str = "failed"  # RFC 3464 Action: 'failed', 'delayed', 'delivered', 'relayed', 'expanded'
    verdict: Verdict | None = None  # what to do with the address (app.codes.verdict)

    def to_dict(self) -> dict:
        """{"recipient", "status", "reply_code", "diagnostic", "decisive", "action", "verdict"}."""
        return asdict(self)


@dataclass(frozen=True)
class Bounce:
    """The recipients read from a bounce, and how many it names."""

    recipients: list[Recipient]  # at most MAX_RECIPIENTS, in the order the bounce lists them
    found: int  # failed recipients named in the part read (more than len(recipients) when capped)
    # What the message is (app.codes.kind): 'failure', 'delay', 'success', 'autoreply',
    # 'challenge', 'complaint' or 'not_report'. Only failures and delays have failed recipients.
    kind: str = "failure"


def parse_bounce(text: str | bytes) -> list[Recipient]:
    """The recipients of a bounce, in the order the bounce lists them, each
    with the codes that explain the failure; [] when it names none and holds
    no code. At most MAX_RECIPIENTS: :func:`read_bounce` also says how many
    there were."""
    return read_bounce(text).recipients


def read_bounce(text: str | bytes) -> Bounce:
    """The first MAX_RECIPIENTS recipients of a bounce, and the count of all
    it names (the first MAX_SCANNED characters of each report text, of up to
    MAX_MESSAGES messages of an mbox); recipients past the cap are counted,
    never read."""
    try:
        found: list[Recipient] = []
        total = 0
        kinds: list[str] = []
        for message in split_mbox(to_text(text))[:MAX_MESSAGES]:
            recipients, named, kind = _read_message(message, 0, MAX_RECIPIENTS - len(found))
            found.extend(recipients)
            total += named
            kinds.append(kind)
        return Bounce(found, total, _overall(kinds))
    except Exception:  # noqa: BLE001 - a paste must never crash the chat: read it as plain text
        try:
            plain = to_text(text)
            if looks_like_mail(plain):  # the headers are the sender's and full of look-alikes
                plain = plain.partition("\n\n")[2]
            return Bounce(*_read_report(Report(text=plain), MAX_RECIPIENTS, coded_only=False, kind="failure"))
        except Exception:  # noqa: BLE001
            return Bounce([], 0)


# A challenge-response mail is no delivery report: the addresses it names are nobody's failure.
_NO_RECIPIENTS = frozenset({"challenge"})
# An mbox of several messages is, as a whole, the most urgent kind among them.
_URGENCY = ("failure", "delay", "complaint", "success", "autoreply", "challenge", "not_report")


def _overall(kinds: list[str]) -> str:
    return min(kinds, key=_URGENCY.index) if kinds else "not_report"


def _read_message(text: str, depth: int, room: int, kind: str | None = None) -> tuple[list[Recipient], int, str]:
    """At most ``room`` recipients of one message, how many it names, and the
    message's kind (stage 1b: app.codes.kind; an attached message takes the
    kind of the message it came in). An attached message (a forwarded bounce)
    is read when the message names none, or (not being a mail system's report)
    names some without a code. A message that is no report names no one."""
    report = read_report(text)
    kind = kind or kind_of(report)
    if kind in _NO_RECIPIENTS:
        return [], 0, kind
    system = from_mail_system(report)
    found, total = _read_report(report, room, coded_only=depth > 0 and not system, kind=kind)
    if kind == "not_report" and any(r.recipient for r in found):
        kind = "failure"  # no report's wording, but a failed recipient in a bounce's own shape: a pasted failure note
    if depth >= _MAX_DEPTH or not (total == 0 or not system and not any(r.status or r.reply_code for r in found)):
        return found, total, kind
    inner: list[Recipient] = []
    named = 0
    for message in report.attached:
        try:
            attached = message_text(message)
        except Exception:  # noqa: BLE001 - a broken attachment is no bounce
            continue
        more, count, _ = _read_message(attached, depth + 1, room - len(inner), kind)
        inner.extend(more)
        named += count
    return (inner, named, kind) if named else (found, total, kind)


def _read_report(report: Report, room: int, coded_only: bool, kind: str) -> tuple[list[Recipient], int]:
    """Stages 2 to 5 on one decoded message: the first ``room`` recipients,
    each with its decisive code, its action and the verdict on its address,
    and their count. A recipient without an address counts only with a code;
    with ``coded_only`` (an attached message that is no bounce of its own)
    none counts without one."""
    lines = report.text[:MAX_SCANNED].split("\n")
    out: list[Recipient] = []
    total = 0
    context: tuple[str, set[str]] | None = None  # what every verdict reads, worked out once
    for candidate, codes in pull(report, lines, scan_lines(lines)):
        if len(out) >= room:  # past the cap: counted, never read (choosing each one's code is quadratic)
            block = candidate.block or {}
            total += bool(candidate.address and not coded_only or codes or block.get("status", "").strip()
                          or block.get("diagnostic-code"))
            continue
        choice = choose(candidate.block, codes)
        if not (choice.status or choice.reply_code) and (coded_only or not candidate.address):
            continue
        total += 1
        if context is None:
            text = "\n".join([report.text[:MAX_SCANNED], *report.dsn])
            context = (text, named_providers(text))
        action = action_of(candidate.block or {}, kind)
        status, reply, diagnostic, _ = choice
        verdict = decide(status, reply, diagnostic, action=action, kind=kind, text=context[0],
                         providers=context[1])
        out.append(Recipient(candidate.address, *choice, action=action, verdict=verdict))
    return out, total


_STRUCTURE = re.compile(
    r"^(?:(?:From|To|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|Content-Type|X-Failed-Recipients"
    r"|Final-Recipient|Original-Recipient|Diagnostic-Code|Status|Action|Reporting-MTA|Remote-MTA|Arrival-Date"
    r"|Last-Attempt-Date):|<<< |>>> |\S+@\S+>?:? ?(?:host|said|\.\.\.)|Remote Server returned)",
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_bounce_message(text: str | bytes) -> bool:
    """Whether a paste is (part of) a bounce message rather than a question:
    two or more header, delivery-status or transcript lines. For such text
    the decisive code of each recipient counts, not every code-like token."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    count = 0
    for _ in _STRUCTURE.finditer(text[:65536]):
        count += 1
        if count >= 2:
            return True
    return False
