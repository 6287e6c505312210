"""Codes in a bounce's report text, line by line, each with the text around it
(the line and the lines that continue it). Which of them decides is
:mod:`app.codes.choose`'s; whose they are, :mod:`app.codes.recipients`'.

Code shapes are :func:`app.codes.find.find_codes`'; here a bare reply code
counts only where a mail server would write one (the start of a line, after
'said:', 'code', a transcript arrow), and never after MAIL FROM.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from app.codes._lazy import pattern
from app.codes.find import find_codes

__all__ = ["MAX_DIAGNOSTIC", "MAX_FIELD", "MAX_SCANNED", "Code", "is_failure", "scan", "scan_lines"]

MAX_DIAGNOSTIC = 500  # characters of a recipient's diagnostic
# Bounds that keep a huge paste fast. A bounce's report text is a few KB and
# names a handful of recipients; past these sizes the input is a log or a
# mailbox, and what comes first decides.
MAX_SCANNED = 64 * 1024  # characters of report text searched (the corpus's largest: 6.4 KB)
MAX_FIELD = 8 * 1024  # characters of a Diagnostic-Code searched

# Context in which a reply code without an enhanced code is read as one: the
# start of a line, a transcript arrow, a label such as 'said:' or 'code'.
_REPLY_BEFORE = pattern(
    r"(?:^|[:;#(<\['\"=]|\.\.\.|<<<|said|returned|reply|error|code|response|was|is)\s*$", re.I
)
_REPLY_AFTER = pattern(r"""[\s,;:)\]'"-]|$""")
_NOT_REPLY_AFTER = pattern(r"\s*(?:min|sec|hour|day|byte|[kmg]b\b|ms\b|%)", re.I)
_SENDER_BEFORE = pattern(r"(?:mail\s+from|envelope-from|sender|return-path|from)\s*[:=]?\s*<?$", re.I)
_DIGIT = pattern(r"\d")
# A reply that find_codes leaves out as part of a number run: Yahoo's 'said: 554 30 Sorry ...'.
_SAID_REPLY = pattern(r"(?:said|returned|reply|response)\s{0,3}:?\s{0,3}([245][0-5]\d)(?= \d{1,2}(?:\s|$))", re.I)


class Code(NamedTuple):
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


def scan(text: str) -> list[Code]:
    """Every code of ``text``, in order."""
    return [c for codes in scan_lines(text.split("\n")) for c in codes]


def scan_lines(lines: list[str]) -> list[list[Code]]:
    """The codes of each line."""
    return [_scan_line(lines, i) for i in range(len(lines))]


def is_failure(c: Code) -> bool:
    return (c.enhanced or c.reply or "2")[0] in "45"


def _scan_line(lines: list[str], i: int) -> list[Code]:
    line = lines[i]
    if not _DIGIT.search(line):
        return []
    out: list[Code] = []
    for n, f in enumerate(find_codes(line)):
        before = line[max(0, f.start - 40) : f.start]
        enhanced = f.enhanced if f.enhanced and int(f.enhanced.split(".")[1]) <= 7 else None  # RFC 3463 subjects
        reply = f.reply
        if reply and not enhanced and not _reads_as_reply(before, line[f.start + 3 : f.start + 12]):
            reply = None
        if not (reply or enhanced) or _SENDER_BEFORE.search(before[-20:]):
            continue
        nested = n > 0 and before.rstrip().endswith(("<", "(", "[", "..."))
        out.append(Code(reply, enhanced, nested, lines, i, f.start))
    if not out:
        out = [Code(m.group(1), None, False, lines, i, m.start(1)) for m in _SAID_REPLY.finditer(line)]
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
