"""The code choice per recipient: of the codes its delivery-status block and
the report text give one recipient, which decide.

1. the ``Diagnostic-Code`` of the RFC 3464 delivery-status report: it is the
   remote server's own reply, while ``Status:`` is the reporting server's
   summary of it (often ``5.0.0``, or ``4.4.7`` when it gave up). A reply quoted
   inside it (``554 4.4.7 expired <421 4.4.2 timed out>``) is the remote
   server's answer and wins over the summary around it;
2. else the ``Status:`` field, unless it is the unspecific ``X.0.0`` and the
   report text names a more specific code of the same class;
3. else the most specific code in the report text: Postfix ``said:``, Sendmail
   and Exim transcripts, Exchange ``#550 5.1.1 ... ##``, qmail ``(#5.1.1)``,
   Gmail ``550-5.7.26``;
4. ``X.4.7`` (message expired) gives way to the error of an earlier attempt
   when the report names one: it says why the message expired.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from app.codes.decode import unfold
from app.codes.scan import MAX_DIAGNOSTIC, MAX_FIELD, Code, is_failure, scan

__all__ = ["Choice", "best", "choose"]

_STATUS_FIELD = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_MULTILINE_PREFIX = re.compile(r"(\d{3})-(?:[245]\.\d{1,3}\.\d{1,3} )?")
_DIAG, _TEXT = "Diagnostic-Code", "report text"


class Choice(NamedTuple):
    status: str | None  # enhanced status code, '5.1.1'
    reply_code: str | None  # SMTP reply code, '550'
    diagnostic: str | None  # the server's words, unfolded, at most ~MAX_DIAGNOSTIC characters
    decisive: str  # which code was decisive, and why


def best(codes: list[Code]) -> Code | None:
    """A failure over a success; the most specific enhanced code; of equals, a
    nested reply (the remote server's own) if any, else the first."""
    pool = [c for c in codes if is_failure(c)] or codes
    with_enhanced = [c for c in pool if c.enhanced]
    if with_enhanced:
        top = max(_specificity(c.enhanced) for c in with_enhanced)
        pool = [c for c in with_enhanced if _specificity(c.enhanced) == top]
    nested = [c for c in pool if c.nested]
    return nested[-1] if nested else (pool[0] if pool else None)


def choose(block: dict[str, str], text_codes: list[Code]) -> Choice:
    """The decisive codes for one recipient (its DSN fields, maybe none, and
    the report text's codes that are its), by the order in the module doc."""
    m = _STATUS_FIELD.match(block.get("status", ""))
    status_field = m.group(1) if m and int(m.group(1).split(".")[1]) <= 7 else None
    diag = _diagnostic_value(block)
    diag_codes = scan(unfold(diag[:MAX_FIELD])) if diag else []
    d, t = best(diag_codes), best(text_codes)
    text_word = "most specific code" if len({c.enhanced for c in text_codes if c.enhanced}) > 1 else "code"

    status, origin, why, source = None, "", "", diag
    if d and d.enhanced:
        status, origin, why = d.enhanced, _DIAG, "enhanced code from the Diagnostic-Code"
        if d.nested:
            why = "reply quoted inside the Diagnostic-Code (the remote server's own answer)"
        elif status_field and status_field != status:
            why = f"enhanced code from the Diagnostic-Code (the server's reply), over Status: {status_field}"
    elif status_field:
        status, origin, why = status_field, "Status:", "Status: field of the delivery-status report"
        if t and t.enhanced and _more_specific(t.enhanced, status):
            why = f"{text_word} in the report text, more specific than Status: {status}"
            status, origin, source = t.enhanced, _TEXT, t.context
    elif t and t.enhanced:
        status, origin, why, source = t.enhanced, _TEXT, f"{text_word} in the report text", t.context
    if status and status[1:] == ".4.7":
        cause = best([c for c in text_codes + diag_codes if c.enhanced and c.enhanced[1:] != ".4.7"])
        if cause and is_failure(cause):
            why = f"error of an earlier attempt; {status} only says the message expired"
            status, origin, source = cause.enhanced, "", cause.context

    reply, reply_origin = _reply_for(diag_codes, status), _DIAG
    if not reply:
        reply, reply_origin = _reply_for(text_codes, status), _TEXT
    if not (status or reply):
        return Choice(None, None, _trim(diag), "no code found")
    if not status:
        why = f"reply code from the {reply_origin}"
        source = diag if reply_origin == _DIAG else (t.context if t else None)
    elif reply and reply_origin == origin and why in (f"enhanced code from the {_DIAG}", f"code in the {_TEXT}"):
        why = f"reply code and enhanced code from the {origin}"
    elif reply and reply_origin != origin:
        why += f"; reply code from the {reply_origin}"
    return Choice(status, reply, _trim(source or (t.context if t else None)), why)


def _specificity(enhanced: str) -> int:
    _, subject, detail = enhanced.split(".")
    return (subject != "0") + (detail != "0")


def _reply_for(codes: list[Code], enhanced: str | None) -> str | None:
    """The reply paired with ``enhanced``; else the decisive reply of its class."""
    for c in codes:
        if c.reply and enhanced and c.enhanced == enhanced:
            return c.reply
    if enhanced is None:
        top = best([c for c in codes if c.reply])
        return top.reply if top else None
    for c in codes:
        if c.reply and c.reply[0] == enhanced[0]:
            return c.reply
    return None


def _diagnostic_value(block: dict[str, str]) -> str | None:
    """'smtp; 550 5.1.1 ...' -> '550 5.1.1 ...'; the type is dropped."""
    value = block.get("diagnostic-code") or ""
    head, sep, rest = value.partition(";")
    if sep and len(head) <= 24 and " " not in head.strip():
        value = rest
    return value.strip() or None


def _more_specific(candidate: str, than: str) -> bool:
    """``candidate`` says more than ``than``: same class, and ``than`` is X.0.0."""
    return candidate[0] == than[0] and than.endswith(".0.0") and _specificity(candidate) > 0


def _trim(text: str | None) -> str | None:
    """Unfolded, without the code prefix a multi-line reply repeats on every
    line ('550-5.7.26 ... 550-5.7.26 ...'), at most MAX_DIAGNOSTIC characters."""
    if not text:
        return None
    text = unfold(text[:MAX_FIELD])
    m = _MULTILINE_PREFIX.match(text)
    if m:
        rest = text[m.end() :]
        for prefix in (m.group(), m.group().replace("-", " ", 1), m.group(1) + "-", m.group(1) + " "):
            rest = rest.replace(prefix, "")
        text = m.group() + rest
    return text if len(text) <= MAX_DIAGNOSTIC else text[: MAX_DIAGNOSTIC - 1].rstrip() + "…"
