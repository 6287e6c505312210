"""Addresses in a bounce and whose they are: the shapes of an address, of one
leading a line, and the addresses that are never a failed recipient (the
bounce's own sender, the original sender, an alias a recipient was expanded
from). Used by the recipients stage (:mod:`app.codes.recipients`,
:mod:`app.codes.shapes`).
"""

from __future__ import annotations

import re

from app.codes.decode import Report

__all__ = ["ADDR", "ADDRESS", "HEADERISH", "LED", "aliases", "from_mail_system", "key", "own", "senders", "unique"]

# An address. The look-behind keeps the scan linear: a match can only start
# where a run of local-part characters starts.
ADDRESS = r"[\w.+'=/%-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}"
ADDR = re.compile(r"(?<![\w.+'=/%-])" + ADDRESS)
# An address leading a line, after indentation (group 1), a bullet, a quote or
# a type ('SMTP=', 'rfc822;', 'mailto:'); the address is group 2.
LED = re.compile(
    r"""([ \t]{0,16})[>*\u2022\u00b7"'(\[-]{0,3}[ \t]{0,4}(?:(?:smtp|rfc822|mailto)[ \t]?[:=;][ \t]?)?<?"""
    + f"({ADDRESS})",
    re.I,
)
# Header lines of the bounce or of a quoted original: never a recipient source.
HEADERISH = re.compile(
    r"[ \t]*(?:from|to|cc|bcc|reply-to|sender|return-path|delivered-to|envelope-to|received|subject|date|sent"
    r"|message-id|in-reply-to|references|x-[\w-]{1,40}|original-recipient|final-recipient|reporting-mta"
    r"|remote-mta|x-actual-recipient|original-mail-from|arrival-date)[ \t]*:",
    re.I,
)
# The address a failed one was expanded from (Postfix '(expanded from <x>)',
# Exim '(ultimately generated from x)'): an alias, never a recipient.
_ALIAS = re.compile(r"(?:expanded|generated)\s+from\s{0,4}<?(" + ADDRESS + ")", re.I)
_SYSTEM_SENDER = re.compile(r"mailer-daemon|postmaster|mail\s+delivery|delivery\s+subsystem|mail\s+system", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned\s+mail|delivery\s+(?:status|fail|notification|report|problem)|failure\s+notice"
    r"|not\s+(?:be\s+)?delivered|mail\s+delivery|delivery\s+has\s+failed|could\s+not\s+be\s+delivered",
    re.I,
)
_SENDER_LINES = ("from:", "reply-to:", "return-path:", "sender:")
_BOUNCE_TO = ("to", "delivered-to", "x-original-to", "return-path")
_ORIGINAL_SENDER = ("from", "sender", "reply-to", "return-path")


def key(addr: str | None) -> str | None:
    """An address to compare: without brackets, lower case."""
    return addr.strip().strip("<>").lower() if addr else None


def unique(addresses) -> list[str]:
    """Each address once (the first spelling), in order."""
    out: dict[str | None, str] = {}
    for a in addresses:
        out.setdefault(key(a), a)
    return list(out.values())


def own(report: Report) -> set[str | None]:
    """The bounce's own sender: its From: and Sender: (MAILER-DAEMON, postmaster)."""
    return {key(m.group()) for h in ("from", "sender") for m in ADDR.finditer(report.headers.get(h, ""))}


def senders(report: Report, lines: list[str], bounce_to: bool = True) -> set[str | None]:
    """The original sender's addresses (the bounce goes back to them): the
    returned original's From, MAIL FROM in a transcript, From: lines in a
    paste; with ``bounce_to`` the bounce's own To (which a test bounce of a
    message sent to oneself shares with the failed recipient)."""
    headers = _BOUNCE_TO if bounce_to else ()
    out = {key(m.group()) for h in headers for m in ADDR.finditer(report.headers.get(h, ""))}
    out |= {key(m.group()) for h in _ORIGINAL_SENDER for m in ADDR.finditer(report.original.get(h, ""))}
    for line in lines:
        lower = line.lower()
        labelled = 0 if lower.lstrip().startswith(_SENDER_LINES) else -1
        at = max(lower.find("mail from"), lower.find("envelope-from"), labelled)
        m = ADDR.search(line, at) if at >= 0 else None
        if m:  # the first address after the label; a line may name a recipient too
            out.add(key(m.group()))
    return out


def aliases(lines: list[str]) -> set[str | None]:
    """The addresses failed recipients were expanded from."""
    return {key(m.group(1)) for line in lines for m in _ALIAS.finditer(line)}


def from_mail_system(report: Report) -> bool:
    """A report from a mail system: a delivery-status part, failed-recipient
    headers, a mail system's From:, a Subject: that reports a delivery."""
    headers = report.headers
    return bool(
        report.dsn
        or "x-failed-recipients" in headers
        or _SYSTEM_SENDER.search(headers.get("from", ""))
        or _BOUNCE_SUBJECT.search(headers.get("subject", ""))
    )
