"""The decode stage: a pasted bounce (raw email bytes, an email as text, or a
fragment of one) read once into a :class:`Report`: the top-level headers, the
human-readable report text, the HTML parts as text, the delivery-status
blocks, the feedback-report fields and the headers of the returned original.

Decoding is left to :mod:`email` (compat32 policy, which tolerates broken
mail). The returned original message (``message/rfc822``, ``text/rfc822-headers``)
and any inline copy of it are dropped from the text: its headers and body are
the sender's, not the mail server's, and are full of look-alikes (versions,
dates, IPs, the original To: and From:). Only its headers are kept, apart.

Every loop here is one pass over lines and every regular expression is
anchored without nested quantifiers, so the work is linear in the input.
"""

from __future__ import annotations

import base64
import html
import quopri
import re
from dataclasses import dataclass, field

from app.codes._lazy import pattern

__all__ = ["Report", "to_text", "unfold", "looks_like_mail", "split_mbox", "read_report", "dsn_blocks"]

# Headers a real email starts with; a paste whose first block has none of them
# is read as plain text, even if its lines look like "Name: value".
_MAIL_HEADERS = frozenset(
    "from to subject date received return-path message-id mime-version "
    "content-type delivered-to x-failed-recipients reply-to sender".split()
)
_MAX_BOUNDARIES = 40  # real bounces nest 2 to 5 multiparts
_HEADER_LINE = pattern(r"[!-9;-~]{1,76}:")  # a field name, then ':'
# The word starts every spelling of the parameter ('boundary=', 'BOUNDARY\t =', 'boundary*0=', folded).
_BOUNDARY = pattern("boundary", re.I)

# Delimiter lines after which a bounce quotes the original message inline
# (Exim, qmail, Gmail, Sendmail, Exchange and others). Matched against a line
# stripped of leading whitespace and of a leading run of -, =, *, _.
_COPY_MARKERS = pattern(
    r"""(?:this\s+is\s+a\s+copy\s+of\s+(?:the|your)\s+message
        | below\s+this\s+line\s+is\s+a\s+copy
        | original\s+message
        | unsent\s+message\s+follows
        | returned\s+message
        | enclosed\s+is\s+a\s+copy
        | header\s+of\s+the\s+original
        | original\s+mail\s+info
        | mensaje\s+original)""",
    re.IGNORECASE | re.VERBOSE,
)
# Lines that introduce the original without a delimiter run (OpenSMTPD,
# IMail, DragonFly, Exchange).
_COPY_HEADINGS = pattern(
    r"""(?:original\s+message\s+headers | message\s+headers\s+follow | (?:original|returned)\s+message\s+follows
        | below\s+is\s+a\s+copy\s+of\s+the\s+(?:original\s+)?message | original\s+message)\s*[:.]?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# A run of header lines at the start of a line is a quoted copy of the
# original when it holds this many of these fields...
_QUOTED_FIELD = pattern(
    r"(?:received|from|to|cc|subject|date|message-id|mime-version|return-path|reply-to|content-type"
    r"|x-mailer|user-agent|sender|in-reply-to|references)[ \t]*:",
    re.IGNORECASE,
)
_QUOTED_RUN = 3
_PEEK_LINES = 6  # lines after a copy marker in which a forwarded bounce's own From: or Subject: shows
# ...unless it is the bounce's own header (a paste of a whole bounce after a
# question): From a mail system, or a Subject that reports a delivery.
_BOUNCE_HEADER = pattern(
    r"(?:from|subject)[ \t]*:.{0,200}?(?:mailer-daemon|postmaster|mail\s+delivery|delivery\s+(?:status|subsystem"
    r"|notification|failure|report)|mail\s+system|undeliver|returned\s+mail|failure\s+notice|not\s+delivered)",
    re.IGNORECASE,
)
# Parts that hold the original message or a complaint about it, never a code.
_SKIPPED_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
        "message/partial",
        "message/feedback-report",
    }
)
_ATTACHED_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"})
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_NOT_BASE64 = pattern(r"[^A-Za-z0-9+/=\s]")
_TAG = pattern(r"<[^<>]{0,2000}>")
_BLOCK_TAG = pattern(r"<(?:br|/p|/div|/tr|/li|/h\d|p|div|tr|li|pre|/pre)\b[^<>]{0,2000}>", re.I)
# A link to an address keeps the address: its text is often a display name.
_MAILTO = pattern(r"""<a\s[^<>]{0,2000}?href\s*=\s*["']?mailto:([^"'<>\s?]{1,320})[^<>]{0,2000}>""", re.I)
_RECIPIENT_FIELDS = frozenset({"final-recipient", "original-recipient", "action", "status"})
_MBOX_FROM = pattern(r"From \S{1,300} .{0,40}\d\d:\d\d:\d\d")
_FIELD = pattern(r"([A-Za-z][A-Za-z0-9-]{0,60})[ \t]{0,4}:(.*)")


@dataclass
class Report:
    """What a bounce says, before any recipient or code is chosen."""

    text: str  # the human-readable report (the text parts, else the HTML ones), original message removed
    dsn: list[str] = field(default_factory=list)  # delivery-status part(s), as text
    headers: dict[str, str] = field(default_factory=dict)  # top-level, lower-case names
    attached: list = field(default_factory=list)  # attached messages (email.message.Message)
    html: str = ""  # the HTML parts as text, original message removed
    blocks: list[dict[str, str]] = field(default_factory=list)  # DSN field blocks, of .dsn or else of .text
    original: dict[str, str] = field(default_factory=dict)  # headers of the returned original, lower-case names
    feedback: str = ""  # the message/feedback-report part(s) (ARF), as text


def to_text(raw: str | bytes) -> str:
    """Text with LF line endings, from str or bytes in UTF-8 or Latin-1."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raw = data.decode("latin-1")
    return raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def unfold(value: str) -> str:
    """One line from a folded field value, runs of white space made single."""
    return " ".join(value.split())


def looks_like_mail(text: str) -> bool:
    """True when ``text`` starts with a header block naming a mail header."""
    known = False
    for n, line in enumerate(text[:65536].split("\n")):
        if not line.strip():
            return known and n > 0
        if line.startswith("From ") and n == 0:  # mbox separator
            continue
        if line[0] in " \t":
            continue
        m = _HEADER_LINE.match(line)
        if not m:
            return False
        known = known or line[: m.end() - 1].strip().lower() in _MAIL_HEADERS
    return known


def split_mbox(text: str) -> list[str]:
    """The messages of an mbox (``From `` separator lines); [text] if it is not one."""
    starts = [0]
    pos = 0
    for line in text.split("\n"):
        if line.startswith("From ") and pos > 0 and _MBOX_FROM.match(line):
            nxt = text[pos + len(line) + 1 : pos + len(line) + 200]
            if _HEADER_LINE.match(nxt):
                starts.append(pos)
        pos += len(line) + 1
    if len(starts) < 2:
        return [text]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def read_report(text: str) -> Report:
    """The decoded message of ``text`` (LF line endings): one pass over its parts."""
    report = _parts(text)
    report.blocks = [b for source in report.dsn or [report.text] for b in dsn_blocks(source)]
    return report


def _parts(text: str) -> Report:
    if not looks_like_mail(text):
        return Report(text=_cut_copy(text))
    nested = sum(1 for _ in _BOUNDARY.finditer(text)) > _MAX_BOUNDARIES
    # email's parser checks every line against every open boundary: with a
    # pathological nesting depth, read the body as plain text instead.
    msg = _parse(text, headersonly=nested)
    headers = _headers(msg)
    if nested:
        return Report(text=_cut_copy(str(msg.get_payload())), headers=headers)
    if not msg.is_multipart() and not str(msg.get_payload()).strip():
        return Report(text=_cut_copy(text), headers=headers)  # only header-like lines were pasted
    report = Report(text="", headers=headers)
    texts: list[str] = []
    html_texts: list[str] = []
    _walk(msg, texts, html_texts, report, depth=0)
    report.html = _cut_copy("\n".join(html_texts))
    report.text = _cut_copy("\n".join(texts)) if texts else report.html
    return report


def _parse(text: str, headersonly: bool):
    """``text`` as an ``email.message.Message`` (compat32). The email package is imported
    here, on first use: a paste that is no email (a code, a log line) never needs it."""
    import email.parser
    import email.policy

    return email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=headersonly)


def _headers(msg) -> dict[str, str]:
    """Lower-case names; of a repeated field, the first."""
    out: dict[str, str] = {}
    for k, v in msg.items():
        out.setdefault(k.lower(), unfold(str(v)))
    return out


def _walk(part, texts: list[str], html_texts: list[str], report: Report, depth: int) -> None:
    if depth > 20:
        return
    ctype = part.get_content_type().lower()
    payload = part.get_payload()
    if ctype in _ATTACHED_TYPES and isinstance(payload, list):
        attached = [m for m in payload if hasattr(m, "as_string")]
        report.attached.extend(attached)
        if attached and not report.original:
            report.original = _headers(attached[0])
    if ctype in _HEADER_TYPES and not report.original:
        report.original = _headers(_parse(_decoded(part), headersonly=True))
    if ctype == "message/feedback-report":
        report.feedback += _dsn_text(part, payload) + "\n\n"
    if ctype in _SKIPPED_TYPES:
        return
    if ctype in _DSN_TYPES:
        report.dsn.append(_dsn_text(part, payload))
        return
    if part.is_multipart() or isinstance(payload, list):
        for sub in payload if isinstance(payload, list) else []:
            if hasattr(sub, "get_content_type"):
                _walk(sub, texts, html_texts, report, depth + 1)
        return
    maintype = ctype.split("/")[0]
    if maintype not in ("text", "message", "multipart"):  # a multipart here lost its boundary
        return
    body = _decoded(part)
    if ctype == "text/html":
        html_texts.append(_strip_html(body))
    else:
        texts.append(body)


def _decoded(part) -> str:
    raw = part.get_payload()
    declared = str(part.get("content-transfer-encoding", "")).strip().lower()
    if isinstance(raw, str) and declared not in ("base64", "quoted-printable", "x-uuencode", "uuencode", "uue"):
        # Text as it was given (7bit, 8bit, binary, none): email's decode=True would write every
        # character beyond Latin-1 as a \uXXXX escape ('宛先：a@b' read as 'uff1aa@b').
        return to_text(raw)
    if declared == "base64" and isinstance(raw, str) and _NOT_BASE64.search(raw):
        data = None  # text declared base64: email would join its lines into one
    else:
        data = part.get_payload(decode=True)
    if data is None:
        data = str(raw).encode("utf-8", "replace")
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except (LookupError, ValueError):
        text = data.decode("utf-8", "replace")
    return to_text(text)


def _dsn_text(part, payload) -> str:
    """A delivery-status part as text; compat32 parses it into field blocks."""
    if isinstance(payload, list):
        raw = "\n\n".join(_fields_text(sub) for sub in payload if hasattr(sub, "items"))
    else:
        raw = str(payload)
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    try:
        if cte == "base64":
            raw = base64.b64decode("".join(raw.split()), validate=False).decode("utf-8", "replace")
        elif cte == "quoted-printable":
            raw = quopri.decodestring(raw.encode("utf-8", "replace")).decode("utf-8", "replace")
    except ValueError:
        pass
    return to_text(raw)


def _fields_text(block) -> str:
    """A field block as compat32 parsed it, back to text (no re-folding)."""
    body = block.get_payload()
    lines = [f"{name}: {value}" for name, value in block.items()]
    if isinstance(body, str) and body.strip():
        lines.append(body)
    return "\n".join(lines)


def _strip_html(text: str) -> str:
    text = _drop_elements(text, "style")
    text = _drop_elements(text, "script")
    text = _MAILTO.sub(lambda m: f" {m.group(1)} ", text)  # (before the tags go)
    text = _BLOCK_TAG.sub("\n", text)
    return html.unescape(_TAG.sub(" ", text))


def _drop_elements(text: str, tag: str) -> str:
    """``text`` without <tag ...>...</tag> elements (one pass, no regex)."""
    lower = text.lower()
    out: list[str] = []
    pos = 0
    while True:
        start = lower.find("<" + tag, pos)
        if start < 0:
            break
        end = lower.find("</" + tag, start)
        end = len(text) if end < 0 else lower.find(">", end) + 1 or len(text)
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _cut_copy(text: str) -> str:
    """The text up to the first line that introduces a copy of the original,
    or up to a quoted header block (of the original, not of the bounce)."""
    pos = 0
    run = _Run()
    seen_text = False  # a line of report text came before
    marker, peek = -1, 0  # where a copy was introduced, lines left to tell a forwarded bounce from it
    for line in text.split("\n"):
        stripped = line.strip()
        body = stripped.lstrip("-=*_ \t")
        if marker >= 0:
            if _BOUNCE_HEADER.match(stripped):  # '-----Original Message-----' then a bounce's From:
                marker = -1
            elif stripped:
                peek -= 1
                if not peek:
                    return text[:marker]
        elif len(body) < len(stripped) - 1 and _COPY_MARKERS.search(body) or _COPY_HEADINGS.match(stripped):
            marker, peek = pos, _PEEK_LINES
        if line[:1] not in (" ", "\t") and _HEADER_LINE.match(line):
            run.add(line, pos, seen_text)
        elif not (run.start >= 0 and line[:1] in (" ", "\t") and stripped):  # not a folded field line
            if run.quoted():
                return text[: marker if marker >= 0 else run.start]
            seen_text = seen_text or bool(stripped) or run.start >= 0
            run = _Run()
        pos += len(line) + 1
    if marker >= 0 or run.quoted():
        return text[: marker if marker >= 0 else run.start]
    return text


class _Run:
    """A run of header lines: where it starts, and what it holds."""

    def __init__(self) -> None:
        self.start, self.known, self.bounce, self.after_text = -1, 0, False, False

    def add(self, line: str, pos: int, after_text: bool) -> None:
        if self.start < 0:
            self.start, self.after_text = pos, after_text
        self.known += bool(_QUOTED_FIELD.match(line))
        self.bounce = self.bounce or bool(_BOUNCE_HEADER.match(line))

    def quoted(self) -> bool:
        """A quoted original's header: enough mail fields, after report text, not the bounce's own."""
        return self.known >= _QUOTED_RUN and self.after_text and not self.bounce


def dsn_blocks(text: str) -> list[dict[str, str]]:
    """Field blocks of a delivery-status text: one dict per block, lower-case
    field names, values unfolded; the first value of a field wins. A block ends
    at a blank line, or where a recipient field repeats (no blank line between)."""
    blocks: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                last.append(line)
            continue
        m = _FIELD.match(line)
        name = m.group(1).lower() if m else None
        if name is None or (name in current and name not in _RECIPIENT_FIELDS):
            last = None
            continue
        if name in current:
            blocks.append(current)
            current = {}
        last = current[name] = [m.group(2)]
    if current:
        blocks.append(current)
    return [{k: unfold(" ".join(v)) for k, v in b.items()} for b in blocks]


MAX_HEADER_CHARS = 4096  # of one header of an attached message, when it is written out again


def message_text(message) -> str:
    """An attached message (``email.message.Message``) as text again. Header values are cut to
    MAX_HEADER_CHARS first: the standard library folds a long header in time quadratic in its
    length (a 200 KB Subject took 35 s), and a bounce's reading never needs more of one."""
    for name, value in list(message.items()):
        if len(str(value)) > MAX_HEADER_CHARS:
            message.replace_header(name, str(value)[:MAX_HEADER_CHARS])
    return to_text(message.as_string())
