"""The recipients stage: who a bounce says failed, each with the codes of the
report text that are theirs. Which of those codes decides is
:mod:`app.codes.choose`'s.

Sources, the first that names anyone wins:

1. structured fields (:func:`_structured`): the delivery-status blocks
   (``Final-Recipient``; else ``Original-Recipient`` when the final one is no
   RFC 822 address, e.g. X.400, or has none; a block whose ``Status:`` is
   empty still counts), ``X-Failed-Recipients:``, an Amazon SES notification's
   recipients, a feedback report's ``Original-Rcpt-To:``;
2. the shapes mail servers write failed recipients in (:mod:`app.codes.shapes`),
   in the text parts, else in the HTML ones; these need no code;
3. only with a failure code (:func:`_weak`): an address leading a line, after
   ``RCPT TO:``, or alone on a failure code's line; the ones with failure codes
   of their own, else one recipient (maybe unnamed) with every code.

Never a recipient: an address a failed one was expanded from, the bounce's
own sender (MAILER-DAEMON, its From:), the header lines of the quoted
original (To:, From:, Cc:); for the weaker shapes, the original sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.codes._lazy import pattern
from app.codes import addresses as a
from app.codes.choose import best
from app.codes.decode import Report
from app.codes.scan import MAX_FIELD, MAX_SCANNED, Code, is_failure
from app.codes.shapes import names_in

__all__ = ["ACTIONS", "Candidate", "pull"]

ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")  # RFC 3464 Action: values
# An Amazon SES notification (JSON): its bounced (or delayed, complained,
# delivered) recipients. It may be a string inside another (an SNS envelope),
# its quotes escaped.
_SES = pattern(r'"(?:bounced|delayed|complained)Recipients\\?"\s*:|"notificationType\\?"\s*:\s*\\?"Delivery')
_SES_ADDRESS = pattern(r'"emailAddress\\?"\s*:\s*\\?"(' + a.ADDRESS + ")")
_SES_DELIVERED = pattern(r'"recipients\\?"\s*:\s*\[([^\]]{0,4000})\]')
_FEEDBACK_FIELDS = ("original-rcpt-to", "removal-recipient")
# Without a shape: an address before ':', '(', '[', '...', ' on' or alone on its line.
_LOOSE_TAIL = pattern(r"""[>"]?(?:\s*$|\s*[:(\[]|\.\.\.|\s+on\s)""")
# The envelope recipient in a transcript or a summary: 'RCPT TO:<a@b>'.
_RCPT_TO = pattern(r"\brcpt\s{1,4}to\s{0,4}:\s{0,8}<?(" + a.ADDRESS + ")", re.I)
_SYSTEM = pattern(r"(?:mailer-daemon|postmaster|no-?reply)@", re.I)


@dataclass(frozen=True)
class Candidate:
    """A failed recipient, before its codes are chosen."""

    address: str | None
    block: dict[str, str] = field(default_factory=dict)  # its delivery-status fields, if any
    action: str = "failed"  # RFC 3464 Action: of its block; 'failed' without one


def pull(report: Report, lines: list[str], scanned: list[list[Code]]) -> list[tuple[Candidate, list[Code]]]:
    """Every failed recipient of ``report``, in the order the bounce names
    them, each with the codes of the report text (``lines``, their codes
    ``scanned``) that are theirs; [] when it names none and holds no code."""
    found = _structured(report, lines)
    if not found:
        names = names_in(lines, report)
        if not names and report.html and report.html != report.text:
            names = names_in(report.html[:MAX_SCANNED].split("\n"), report)
        found = [Candidate(n) for n in names]
    if not found:
        return _weak(report, lines, scanned)
    per = _codes_by_recipient(lines, scanned, [c.address for c in found])
    if len(found) == 1:
        return [(found[0], per[None])]
    return [(c, per.get(a.key(c.address), [])) for c in found]


# -- 1. structured fields ---------------------------------------------------------


def _structured(report: Report, lines: list[str]) -> list[Candidate]:
    failed = [Candidate(x) for x in a.unique(m.group() for m in a.ADDR.finditer(report.headers.get(
        "x-failed-recipients", "")))]
    out = _from_dsn(report)
    if any(c.address is None for c in out):  # 'Final-Recipient: rfc822; @host', a path: named elsewhere
        out = _named_elsewhere(out, [c.address for c in failed] or names_in(lines, report))
    text = report.text[:MAX_SCANNED]
    if not out and not failed and _SES.search(text):
        named = [m.group(1) for m in _SES_ADDRESS.finditer(text)]
        named = named or [x.group() for m in _SES_DELIVERED.finditer(text) for x in a.ADDR.finditer(m.group(1))]
        out = [Candidate(x) for x in a.unique(named)]
    if not out and not failed:
        fields = (line.partition(":") for line in report.feedback.split("\n"))
        named = (v for k, _, v in fields if k.strip().lower() in _FEEDBACK_FIELDS)
        out = [Candidate(x) for x in a.unique(m.group() for v in named for m in a.ADDR.finditer(v))]
    return out or failed


def _from_dsn(report: Report) -> list[Candidate]:
    """One recipient per delivery-status block that names one (or holds a
    code), once per recipient."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for b in report.blocks:
        rcpt = _block_recipient(b)
        if rcpt is None and "diagnostic-code" not in b and not ("status" in b and "action" in b):
            continue  # the per-message block, or a stray 'Status:' line
        k = a.key(rcpt) or f"#{len(out)}"
        if k not in seen:
            seen.add(k)
            out.append(Candidate(rcpt, b, _action(b.get("action"))))
    return out


def _block_recipient(block: dict[str, str]) -> str | None:
    """Final-Recipient when it is an RFC 822 address; else Original-Recipient,
    X-Actual-Recipient, a Final-Recipient of another type, an address in the
    Diagnostic-Code."""
    final = block.get("final-recipient", "")
    kind, _, value = final.rpartition(";")
    if kind.strip().lower() in ("", "rfc822") and _dsn_address(value):
        return _dsn_address(value)
    for name in ("original-recipient", "x-actual-recipient"):
        if _dsn_address(block.get(name, "")):
            return _dsn_address(block.get(name, ""))
    return _dsn_address(final) or _dsn_address(block.get("diagnostic-code", "")[:MAX_FIELD])


def _dsn_address(value: str) -> str | None:
    m = a.ADDR.search(value.rpartition(";")[2] or value)
    return m.group() if m else None


def _named_elsewhere(blocks: list[Candidate], names: list[str]) -> list[Candidate]:
    """The blocks without an address given, in order, the addresses the
    bounce names elsewhere that no block names."""
    given = {a.key(c.address) for c in blocks}
    spare = iter([n for n in names if a.key(n) not in given])
    return [c if c.address else Candidate(next(spare, None), c.block, c.action) for c in blocks]


def _action(value: str | None) -> str:
    word = (value or "").strip().lower()[:12]
    return next((x for x in ACTIONS if word.startswith(x)), "failed")


# -- 3. with a failure code only ------------------------------------------------------


def _weak(report: Report, lines: list[str], scanned: list[list[Code]]) -> list[tuple[Candidate, list[Code]]]:
    """Without a shape: the addresses that lead a line, follow RCPT TO: or
    stand alone on a failure code's line; the ones with failure codes of
    their own, else one recipient with every code of the text."""
    excluded = a.own(report) | a.senders(report, lines) | a.aliases(lines)
    names: dict[str | None, str] = {}
    for line, codes in zip(lines, scanned):
        if a.HEADERISH.match(line):
            continue
        led = a.LED.match(line)
        found = [led.group(2)] if led and _LOOSE_TAIL.match(line, led.end()) else []
        found += [m.group(1) for m in _RCPT_TO.finditer(line)]
        if not found and any(is_failure(c) for c in codes):
            on_line = a.unique(m.group() for m in a.ADDR.finditer(line))
            found = on_line if len(on_line) == 1 else []
        for name in found:
            if a.key(name) not in excluded and not _SYSTEM.match(name):
                names.setdefault(a.key(name), name)
    per = _codes_by_recipient(lines, scanned, list(names.values()))
    failing = [n for n in names.values() if any(is_failure(c) for c in per.get(a.key(n), []))]
    if len(failing) > 1:
        return [(Candidate(n), per[a.key(n)]) for n in failing]
    if not per[None]:
        return []
    rcpt = failing[0] if failing else next(iter(names.values()), None) or _on_decisive_line(per[None], excluded)
    return [(Candidate(rcpt), per[None])]


def _on_decisive_line(codes: list[Code], excluded: set[str | None]) -> str | None:
    """The address on the decisive code's line (and the lines that continue it)."""
    top = best(codes)
    for m in a.ADDR.finditer(top.context) if top else ():
        if a.key(m.group()) not in excluded and not _SYSTEM.match(m.group()):
            return m.group()
    return None


# -- whose codes -------------------------------------------------------------------


def _codes_by_recipient(lines: list[str], scanned: list[list[Code]], names: list[str | None]) -> dict:
    """Codes of the report text per recipient key; key None holds them all. A
    code belongs to the one recipient its line names, else to the recipient
    whose line came last."""
    keys = {a.key(n) for n in names if n}
    per: dict[str | None, list[Code]] = {None: []}
    owner: str | None = None
    for line, codes in zip(lines, scanned):
        led = a.LED.match(line) if keys else None
        if led and a.key(led.group(2)) in keys:
            owner = a.key(led.group(2))
        if not codes:
            continue
        named = {k for k in (a.key(m.group()) for m in a.ADDR.finditer(line)) if k in keys}
        who = next(iter(named)) if len(named) == 1 else owner
        per[None].extend(codes)
        if who:
            per.setdefault(who, []).extend(codes)
    return per
