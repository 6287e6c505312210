"""Read a bounced email (or a piece of one) and say, per failed recipient,
which SMTP reply code and enhanced status code the mail servers gave.

>>> (r,) = parse_bounce("Remote host said: 550 5.1.1 <a@example.org>... User Unknown")
>>> r.recipient, r.status, r.reply_code
('a@example.org', '5.1.1', '550')
>>> r.decisive
'reply code and enhanced code from the report text'

Which code decides, per recipient:

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

Stdlib only: MIME decoding is :mod:`email`'s (see :mod:`app._mime`); code shapes
are :mod:`app.codes`'. Never raises; linear in the size of the input.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import NamedTuple

from app.codes._mime import Report, dsn_blocks, looks_like_mail, read_report, split_mbox, to_text, unfold
from app.codes.find import find_codes
from app.codes.verdict import Verdict

__all__ = ["MAX_RECIPIENTS", "Bounce", "Recipient", "parse_bounce", "read_bounce"]

MAX_DIAGNOSTIC = 500
# Bounds that keep a huge paste fast. A bounce's report text is a few KB and
# names a handful of recipients; past these sizes the input is a log or a
# mailbox, and what comes first decides.
MAX_SCANNED = 64 * 1024  # characters of report text searched for codes (the corpus's largest: 6.4 KB)
MAX_FIELD = 8 * 1024  # characters of a Diagnostic-Code searched
# Recipients read per bounce. Real bounces name one to a few (the corpus: at
# most 4); a mailing-list bounce a few dozen. Each costs a diagnostic of up to
# MAX_DIAGNOSTIC characters in every answer; the rest are counted, not read.
MAX_RECIPIENTS = 100
MAX_MESSAGES = 100  # of an mbox
_MAX_DEPTH = 3  # forwarded bounces inside forwarded bounces
# An address. The look-behind keeps the scan linear: a match can only start
# where a run of local-part characters starts.
_ADDR = re.compile(r"(?<![\w.+'=/-])[\w.+'=/-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}")
# A line that names a failed recipient before saying what went wrong: Postfix
# '<a@b>: host ...', qmail '<a@b>:', Exim '  a@b', Sendmail '<a@b>', GMX '"a@b":'.
_ANCHOR = re.compile(r'''\s*[<"]?([^<>"\s@]{1,64}@[^<>"\s@]{1,255}?)[>"]?(?:\s*$|\s*[:(]|\.\.\.|\s+\[)''')
# Context in which a reply code without an enhanced code is read as one: the
# start of a line, a transcript arrow, a label such as 'said:' or 'code'.
_REPLY_BEFORE = re.compile(
    r"(?:^|[:;#(<\['\"=]|\.\.\.|<<<|said|returned|reply|error|code|response|was|is)\s*$", re.I
)
_REPLY_AFTER = re.compile(r"""[\s,;:)\]'"-]|$""")
_NOT_REPLY_AFTER = re.compile(r"\s*(?:min|sec|hour|day|byte|[kmg]b\b|ms\b|%)", re.I)
_SENDER_BEFORE = re.compile(r"(?:mail\s+from|envelope-from|sender|return-path|from)\s*[:=]?\s*<?$", re.I)
_STATUS_FIELD = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_MULTILINE_PREFIX = re.compile(r"(\d{3})-(?:[245]\.\d{1,3}\.\d{1,3} )?")
_DIGIT = re.compile(r"\d")
_DIAG, _TEXT = "Diagnostic-Code", "report text"
_SENDER_LINES = ("from:", "reply-to:", "return-path:", "sender:")
_SENDER_HEADERS = ("to", "delivered-to", "x-original-to", "return-path")


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


class _Code(NamedTuple):
    reply: str | None
    enhanced: str | None
    nested: bool  # quoted after another code on its line: '<421 4.4.2 ...>'
    lines: list[str]  # the text it was found in, by line
    i: int  # its line
    start: int  # its column

    @property
    def context(self) -> str:
        """Its line, with the lines that continue it (worked out only when asked)."""
        return _context(self.lines, self.i, self.start)


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
    with the codes that explain the failure; [] when it holds no code. At most
    MAX_RECIPIENTS: :func:`read_bounce` also says how many there were."""
    return read_bounce(text).recipients


def read_bounce(text: str | bytes) -> Bounce:
    """The first MAX_RECIPIENTS recipients of a bounce, and the count of all
    it names (the first MAX_SCANNED characters of each report text, of up to
    MAX_MESSAGES messages of an mbox); recipients past the cap are counted,
    never read."""
    try:
        found: list[Recipient] = []
        total = 0
        for message in split_mbox(to_text(text))[:MAX_MESSAGES]:
            recipients, named = _parse_message(message, 0, MAX_RECIPIENTS - len(found))
            found.extend(recipients)
            total += named
        return Bounce(found, total)
    except Exception:  # noqa: BLE001 - a paste must never crash the chat: read it as plain text
        try:
            plain = to_text(text)
            if looks_like_mail(plain):  # the headers are the sender's and full of look-alikes
                plain = plain.partition("\n\n")[2]
            return Bounce(*_from_text(Report(text=plain), MAX_RECIPIENTS))
        except Exception:  # noqa: BLE001
            return Bounce([], 0)


def _parse_message(text: str, depth: int, room: int) -> tuple[list[Recipient], int]:
    """At most ``room`` recipients of one message, and how many it names."""
    report = read_report(text)
    found, total = _from_dsn(report, room)
    if not total:
        found, total = _from_text(report, room)
    if not total and depth < _MAX_DEPTH:  # a forwarded bounce: the report is attached
        for message in report.attached:
            try:
                attached = to_text(message.as_string())
            except Exception:  # noqa: BLE001 - a broken attachment is no bounce
                continue
            more, named = _parse_message(attached, depth + 1, room - len(found))
            found.extend(more)
            total += named
    return found, total


# -- finding codes -------------------------------------------------------------


def _scan_line(lines: list[str], i: int) -> list[_Code]:
    """The codes on ``lines[i]``, each with its context."""
    line = lines[i]
    if not _DIGIT.search(line):
        return []
    out: list[_Code] = []
    for n, f in enumerate(find_codes(line)):
        before = line[max(0, f.start - 40) : f.start]
        enhanced = f.enhanced if f.enhanced and int(f.enhanced.split(".")[1]) <= 7 else None  # RFC 3463 subjects
        reply = f.reply
        if reply and not enhanced and not _reads_as_reply(before, line[f.start + 3 : f.start + 12]):
            reply = None
        if not (reply or enhanced) or _SENDER_BEFORE.search(before[-20:]):
            continue
        nested = n > 0 and before.rstrip().endswith(("<", "(", "[", "..."))
        out.append(_Code(reply, enhanced, nested, lines, i, f.start))
    return out


def _reads_as_reply(before: str, after: str) -> bool:
    if after[:1] == "-" and not after[1:2].isdigit():  # '550-Unknown user'
        return True
    return bool(_REPLY_BEFORE.search(before[-12:]) and _REPLY_AFTER.match(after)) and not _NOT_REPLY_AFTER.match(
        after
    )


def _context(lines: list[str], i: int, start: int) -> str:
    """``lines[i]`` (from the code on, if it starts far in) and the lines that
    continue it: indented ones (Postfix folds), or the rest of a multi-line
    reply ('550-5.7.26 ...' up to '550 5.7.26 ...')."""
    begin = start if start > 80 else 0
    first = lines[i][begin : begin + MAX_FIELD].strip()  # of a huge line, what a diagnostic keeps
    multi = first[:4] if re.match(r"\d{3}-", first) else None
    parts, size = [first], len(first)
    for nxt in lines[i + 1 : i + 12]:
        if size > MAX_DIAGNOSTIC or not nxt.strip():
            break
        if multi and nxt.startswith((multi, multi[:3] + " ")):
            parts.append(nxt.strip())
            if nxt.startswith(multi[:3] + " "):
                break
        elif not multi and nxt[:1].isspace():
            parts.append(nxt.strip())
        else:
            break
        size += len(nxt)
    return " ".join(parts)


def _scan(text: str) -> list[_Code]:
    return [c for codes in _scan_lines(text.split("\n")) for c in codes]


def _scan_lines(lines: list[str]) -> list[list[_Code]]:
    return [_scan_line(lines, i) for i in range(len(lines))]


def _is_failure(c: _Code) -> bool:
    return (c.enhanced or c.reply or "2")[0] in "45"


def _specificity(enhanced: str) -> int:
    _, subject, detail = enhanced.split(".")
    return (subject != "0") + (detail != "0")


def _best(codes: list[_Code]) -> _Code | None:
    """A failure over a success; the most specific enhanced code; of equals, a
    nested reply (the remote server's own) if any, else the first."""
    pool = [c for c in codes if _is_failure(c)] or codes
    with_enhanced = [c for c in pool if c.enhanced]
    if with_enhanced:
        top = max(_specificity(c.enhanced) for c in with_enhanced)
        pool = [c for c in with_enhanced if _specificity(c.enhanced) == top]
    nested = [c for c in pool if c.nested]
    return nested[-1] if nested else (pool[0] if pool else None)


def _reply_for(codes: list[_Code], enhanced: str | None) -> str | None:
    """The reply paired with ``enhanced``; else the decisive reply of its class."""
    for c in codes:
        if c.reply and enhanced and c.enhanced == enhanced:
            return c.reply
    if enhanced is None:
        best = _best([c for c in codes if c.reply])
        return best.reply if best else None
    for c in codes:
        if c.reply and c.reply[0] == enhanced[0]:
            return c.reply
    return None


# -- recipients ----------------------------------------------------------------


def _key(addr: str | None) -> str | None:
    return addr.strip().strip("<>").lower() if addr else None


def _dsn_address(value: str | None) -> str | None:
    """'rfc822; a@b' -> 'a@b'."""
    value = (value or "").split(";", 1)[-1].strip().strip("<>").strip()
    return value or None


def _from_dsn(report: Report, room: int) -> tuple[list[Recipient], int]:
    """One recipient per delivery-status block (from the report parts or, in a
    paste or non-MIME bounce, from field lines in the text): the first ``room``
    of them, and how many blocks there are; ([], 0) when no block holds a code."""
    blocks = _recipient_blocks(report)
    if not blocks:
        return [], 0
    lines = report.text[:MAX_SCANNED].split("\n")
    read = blocks[: max(room, 1)]  # one at least, to tell whether the blocks hold codes
    per = _codes_by_recipient(lines, _scan_lines(lines), [b["_rcpt"] for b in blocks])
    out = [_choose(b, per[None] if len(blocks) == 1 else per.get(_key(b["_rcpt"]), [])) for b in read]
    if not any(r.status or r.reply_code for r in out):
        return [], 0
    return out[: max(room, 0)], len(blocks)


def _recipient_blocks(report: Report) -> list[dict[str, str]]:
    """The delivery-status blocks that name a recipient, once per recipient."""
    blocks: list[dict[str, str]] = []
    seen: set[str] = set()
    for source in report.dsn or [report.text]:
        for b in dsn_blocks(source):
            rcpt = _dsn_address(b.get("final-recipient") or b.get("original-recipient"))
            if rcpt is None and "diagnostic-code" not in b and not ("status" in b and "action" in b):
                continue  # the per-message block, or a stray 'Status:' line
            named = None if rcpt else _ADDR.search(b.get("diagnostic-code", "")[:MAX_FIELD])
            rcpt = rcpt or (named.group() if named else None)
            key = _key(rcpt) or f"#{len(blocks)}"
            if key not in seen:
                seen.add(key)
                blocks.append({**b, "_rcpt": rcpt or ""})
    return blocks


def _codes_by_recipient(
    lines: list[str], scanned: list[list[_Code]], names: list[str]
) -> dict[str | None, list[_Code]]:
    """Codes of the report text per recipient key; key None holds them all. A
    code belongs to the one recipient its line names, else to the recipient
    whose anchor line came last."""
    keys = {_key(n) for n in names if n}
    per: dict[str | None, list[_Code]] = {None: []}
    owner: str | None = None
    for line, codes in zip(lines, scanned):
        anchor = _ANCHOR.match(line) if keys else None
        if anchor and _key(anchor.group(1)) in keys:
            owner = _key(anchor.group(1))
        if not codes:
            continue
        named = {k for k in (_key(m.group()) for m in _ADDR.finditer(line)) if k in keys}
        who = next(iter(named)) if len(named) == 1 else owner
        per[None].extend(codes)
        if who:
            per.setdefault(who, []).extend(codes)
    return per


def _from_text(report: Report, room: int) -> tuple[list[Recipient], int]:
    """Recipients named in the report text (anchor lines, or the one address
    on a line with a failure code), each with the codes that follow it: the
    first ``room`` of them, and how many there are."""
    lines = report.text[:MAX_SCANNED].split("\n")
    scanned = _scan_lines(lines)
    senders = _senders(report, lines)
    names: dict[str | None, str] = {}
    failed = report.headers.get("x-failed-recipients", "")
    for m in _ADDR.finditer(failed):
        names.setdefault(_key(m.group()), m.group())
    for line, codes in zip(lines, scanned):
        anchor = _ANCHOR.match(line)
        found = [anchor.group(1)] if anchor and _ADDR.fullmatch(anchor.group(1)) else []
        if not found and any(_is_failure(c) for c in codes):
            on_line = {_key(m.group()): m.group() for m in _ADDR.finditer(line)}
            found = list(on_line.values()) if len(on_line) == 1 else []
        for name in found:
            if _key(name) not in senders:
                names.setdefault(_key(name), name)
    per = _codes_by_recipient(lines, scanned, list(names.values()))
    failing = [n for n in names.values() if any(_is_failure(c) for c in per.get(_key(n), []))]
    if len(failing) > 1:
        return [_choose({"_rcpt": n}, per[_key(n)]) for n in failing[: max(room, 0)]], len(failing)
    if not per[None]:
        return [], 0
    rcpt = failing[0] if failing else next(iter(names.values()), None) or _named(per[None], report.text, senders)
    return [_choose({"_rcpt": rcpt or ""}, per[None])][: max(room, 0)], 1


def _senders(report: Report, lines: list[str]) -> set[str | None]:
    """The original sender's addresses (the bounce goes back to them): the
    bounce's own To, MAIL FROM in a transcript, header lines in a paste."""
    out = {_key(m.group()) for h in _SENDER_HEADERS for m in _ADDR.finditer(report.headers.get(h, ""))}
    for line in lines:
        lower = line.lower()
        labelled = 0 if lower.startswith(_SENDER_LINES) else -1
        at = max(lower.find("mail from"), lower.find("envelope-from"), labelled)
        m = _ADDR.search(line, at) if at >= 0 else None
        if m:  # the first address after the label; a line may name a recipient too
            out.add(_key(m.group()))
    return out


def _named(codes: list[_Code], text: str, senders: set[str | None]) -> str | None:
    """The address a paste names: on the decisive code's line, else the first
    in the text that is not the sender's."""
    best = _best(codes)
    candidates = _ADDR.finditer(best.context) if best else iter(())
    for m in (*candidates, *_ADDR.finditer(text[:MAX_SCANNED])):
        if _key(m.group()) not in senders:
            return m.group()
    return None


# -- choosing --------------------------------------------------------------------


def _diagnostic_value(block: dict[str, str]) -> str | None:
    """'smtp; 550 5.1.1 ...' -> '550 5.1.1 ...'; the type is dropped."""
    value = block.get("diagnostic-code") or ""
    head, sep, rest = value.partition(";")
    if sep and len(head) <= 24 and " " not in head.strip():
        value = rest
    return value.strip() or None


def _choose(block: dict[str, str], text_codes: list[_Code]) -> Recipient:
    """The decisive codes for one recipient, by the order in the module doc."""
    rcpt = block.get("_rcpt") or None
    m = _STATUS_FIELD.match(block.get("status", ""))
    status_field = m.group(1) if m and int(m.group(1).split(".")[1]) <= 7 else None
    diag = _diagnostic_value(block)
    diag_codes = _scan(unfold(diag[:MAX_FIELD])) if diag else []
    d, t = _best(diag_codes), _best(text_codes)
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
        cause = _best([c for c in text_codes + diag_codes if c.enhanced and c.enhanced[1:] != ".4.7"])
        if cause and _is_failure(cause):
            why = f"error of an earlier attempt; {status} only says the message expired"
            status, origin, source = cause.enhanced, "", cause.context

    reply, reply_origin = _reply_for(diag_codes, status), _DIAG
    if not reply:
        reply, reply_origin = _reply_for(text_codes, status), _TEXT
    if not (status or reply):
        return Recipient(rcpt, None, None, _trim(diag), "no code found")
    if not status:
        why = f"reply code from the {reply_origin}"
        source = diag if reply_origin == _DIAG else (t.context if t else None)
    elif reply and reply_origin == origin and why in (f"enhanced code from the {_DIAG}", f"code in the {_TEXT}"):
        why = f"reply code and enhanced code from the {origin}"
    elif reply and reply_origin != origin:
        why += f"; reply code from the {reply_origin}"
    return Recipient(rcpt, status, reply, _trim(source or (t.context if t else None)), why)


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
