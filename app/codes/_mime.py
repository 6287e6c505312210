"""Turn a pasted bounce (raw email bytes, an email as text, or a fragment of
one) into the pieces a bounce parser reads: the human-readable report text,
the delivery-status fields per recipient, and a few top-level headers.

Decoding is left to :mod:`email` (compat32 policy, which tolerates broken
mail). The returned original message (``message/rfc822``, ``text/rfc822-headers``)
and any inline copy of it are dropped: its headers and body are the sender's,
not the mail server's, and are full of look-alikes (versions, dates, IPs).

Every loop here is one pass over lines and every regular expression is
anchored without nested quantifiers, so the work is linear in the input.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import html
import quopri
import re
from dataclasses import dataclass, field

__all__ = ["Report", "to_text", "unfold", "looks_like_mail", "split_mbox", "read_report", "dsn_blocks"]

# Headers a real email starts with; a paste whose first block has none of them
# is read as plain text, even if its lines look like "Name: value".
_MAIL_HEADERS = frozenset(
    "from to subject date received return-path message-id mime-version "
    "content-type delivered-to x-failed-recipients reply-to sender".split()
)
_MAX_BOUNDARIES = 40  # real bounces nest 2 to 5 multiparts
_HEADER_LINE = re.compile(r"[!-9;-~]{1,76}:")  # a field name, then ':'

# Delimiter lines after which a bounce quotes the original message inline
# (Exim, qmail, Gmail, Sendmail, Exchange and others). Matched against a line
# stripped of leading whitespace and of a leading run of -, =, *, _.
_COPY_MARKERS = re.compile(
    r"""(?:this\s+is\s+a\s+copy\s+of\s+(?:the|your)\s+message
        | below\s+this\s+line\s+is\s+a\s+copy
        | original\s+message
        | unsent\s+message\s+follows
        | returned\s+message
        | enclosed\s+is\s+a\s+copy
        | header\s+of\s+the\s+original
        | original\s+mail\s+info)""",
    re.IGNORECASE | re.VERBOSE,
)
# Lines that introduce the original headers without a dashed delimiter.
_COPY_HEADINGS = re.compile(
    r"(?:original\s+message\s+headers|message\s+headers\s+follow)\s*:?\s*$", re.IGNORECASE
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
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_TAG = re.compile(r"<[^<>]{0,2000}>")
_BLOCK_TAG = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d|p|div|tr|li|pre|/pre)\b[^<>]{0,2000}>", re.I)
_RECIPIENT_FIELDS = frozenset({"final-recipient", "original-recipient", "action", "status"})
_MBOX_FROM = re.compile(r"From \S{1,300} .{0,40}\d\d:\d\d:\d\d")
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,60})[ \t]{0,4}:(.*)")


@dataclass
class Report:
    """What a bounce says, before any code is chosen."""

    text: str  # the human-readable report, original message removed
    dsn: list[str] = field(default_factory=list)  # delivery-status part(s), as text
    headers: dict[str, str] = field(default_factory=dict)  # top-level, lower-case names
    attached: list = field(default_factory=list)  # attached messages (email.message.Message)


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
    """Split ``text`` (LF line endings) into report text and DSN parts."""
    if not looks_like_mail(text):
        return Report(text=_cut_copy(text))
    nested = text.lower().count("boundary=") > _MAX_BOUNDARIES
    # email's parser checks every line against every open boundary: with a
    # pathological nesting depth, read the body as plain text instead.
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=nested)
    headers = {k.lower(): unfold(str(v)) for k, v in msg.items()}
    if nested:
        return Report(text=_cut_copy(str(msg.get_payload())), headers=headers)
    if not msg.is_multipart() and not str(msg.get_payload()).strip():
        return Report(text=_cut_copy(text), headers=headers)  # only header-like lines were pasted
    report = Report(text="", headers=headers)
    texts: list[str] = []
    html_texts: list[str] = []
    _walk(msg, texts, html_texts, report, depth=0)
    report.text = _cut_copy("\n".join(texts) if texts else "\n".join(html_texts))
    return report


def _walk(part, texts: list[str], html_texts: list[str], report: Report, depth: int) -> None:
    if depth > 20:
        return
    ctype = part.get_content_type().lower()
    payload = part.get_payload()
    if ctype in _ATTACHED_TYPES and isinstance(payload, list):
        report.attached.extend(m for m in payload if hasattr(m, "as_string"))
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
    data = part.get_payload(decode=True)
    if data is None:
        data = str(part.get_payload()).encode("utf-8", "replace")
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
    """The text up to the first line that introduces a copy of the original."""
    pos = 0
    for line in text.split("\n"):
        stripped = line.strip()
        body = stripped.lstrip("-=*_ \t")
        if len(body) < len(stripped) - 1 and _COPY_MARKERS.search(body):
            return text[:pos]
        if _COPY_HEADINGS.match(stripped):
            return text[:pos]
        pos += len(line) + 1
    return text


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
