"""Find SMTP reply codes (RFC 5321, e.g. ``550``) and enhanced status codes
(RFC 3463, e.g. ``5.1.1``) in free text, in the shapes people paste them.

Accepted shapes, anywhere in longer text: ``550-5.1.1``, ``550 5.1.1``,
``550 #5.1.1``, ``550, "5.1.1"``, ``(#5.1.1)``, ``5.1.1`` alone, ``550`` alone.

Rejected look-alikes: IP addresses (``10.5.1.1``), version strings (``v5.2.2``,
``version 5.2.2``), longer numbers (``5.1.10`` is its own code, never ``5.1.1``;
``1,550`` and ``5500`` are not ``550``), phone-like runs (``555-1234``,
``+1 421 550 4477``).

Look-alike characters count as their ASCII counterparts: fullwidth digits and
punctuation (``５５０-５.１.１``), Unicode dashes (``550‐5.1.1`` with U+2010) and
non-breaking spaces. They are translated one character for one, so positions
and the text as found still point into the user's own text.

The scanner is a single pass of two anchored regular expressions without
nested quantifiers, so it runs in linear time on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FoundCode", "find_codes", "severity_of"]

# RFC 3463: class 2, 4 or 5; subject and detail 0-999 without leading zeros
# (a leading zero is tolerated: some servers write 5.7.01).
ENHANCED = r"[245]\.\d{1,3}\.\d{1,3}"
# RFC 5321: first digit 2-5, second digit 0-5, third any.
REPLY = r"[2-5][0-5]\d"

_TOKEN = re.compile(
    rf"""(?<![\w.])(?<!\d,)      # not the tail of a word, number or dotted run
        (?:
            (?P<enh>{ENHANCED})(?![\w]|\.\d)        # enhanced status code
          | (?P<reply>{REPLY})(?![\w]|[.,]\d)       # bare reply code
        )""",
    re.VERBOSE,
)
# What may stand between a reply code and the enhanced code that belongs to it.
_PAIR_GAP = re.compile(r"""[\s\-,:;#"'(\[]{1,8}""")
_VERSION_BEFORE = re.compile(
    r"(?:\bversion|\bver\.?|\brelease|\bbuild|\brev\.?|\bv)\s*[:=]?\s*$", re.IGNORECASE
)
# One character for one (str.translate keeps every offset; NFKC would not).
_ASCII = str.maketrans(
    {
        **{0xFF01 + i: 0x21 + i for i in range(0x5E)},  # fullwidth forms of '!'..'~': '５', '－', '．', '＃'
        **dict.fromkeys(range(0x2010, 0x2016), "-"),  # hyphen, non-breaking hyphen, figure, en, em dash, bar
        0x2212: "-",  # minus sign
        0xFE63: "-",  # small hyphen-minus
        0x00A0: " ",  # no-break space
        0x2007: " ",  # figure space
        0x202F: " ",  # narrow no-break space
        0x3000: " ",  # ideographic space
    }
)
_MONEY_BEFORE = re.compile(r"[$€£]\s*$")
# A bare reply code next to a digit group that is not three digits long is
# part of a phone or reference number: '+1 421 550 4477', '(415) 550 1234'.
_NUMBER_GROUP_BEFORE = re.compile(r"(?<![\d.])(?:\d{1,2}|\d{4,})[ .\-]$")
_NUMBER_GROUP_AFTER = re.compile(r"^(?:[ .\-](?:\d{1,2}|\d{4,})(?![\d.])|\)[ .\-]?\d)")


@dataclass(frozen=True)
class FoundCode:
    """One code as it appears in the text."""

    text: str  # as found, e.g. '550 #5.1.1'
    reply: str | None  # '550' or None
    enhanced: str | None  # '5.1.1' or None
    start: int
    end: int

    @property
    def code(self) -> str:
        """Normalised form: '550-5.1.1', '5.1.1' or '550'."""
        if self.reply and self.enhanced:
            return f"{self.reply}-{self.enhanced}"
        return self.reply or self.enhanced or ""

    @property
    def severity(self) -> str:
        return severity_of(self.reply, self.enhanced)


def severity_of(reply: str | None, enhanced: str | None) -> str:
    """'permanent', 'temporary', 'success' or 'unknown', from the code's class.

    The enhanced code's class decides when there is one (it is the more
    specific of the two); otherwise the reply code's first digit.
    """
    digit = (enhanced or reply or " ")[0]
    return {"2": "success", "4": "temporary", "5": "permanent"}.get(digit, "unknown")


def _tokens(text: str):
    for m in _TOKEN.finditer(text):
        before = text[max(0, m.start() - 12) : m.start()]
        if m.group("enh"):
            if _VERSION_BEFORE.search(before):
                continue
            yield "enh", m
        else:
            if _MONEY_BEFORE.search(before):
                continue
            yield "reply", m


def find_codes(text: str) -> list[FoundCode]:
    """Every code in ``text``, in order of first appearance, without repeats.

    Codes are ASCII (``550-5.1.1``) however they were written; ``text``,
    ``start`` and ``end`` of each are the user's own text.

    A reply code directly followed by an enhanced code (``550 5.1.1``) is one
    code. A bare reply code or lone enhanced code that repeats part of such a
    pair elsewhere in the text is the same failure and is not listed again.
    """
    original = text
    if not text.isascii():  # isascii() is O(1): most text needs no translation
        text = text.translate(_ASCII)
    tokens = list(_tokens(text))
    found: list[FoundCode] = []
    i = 0
    while i < len(tokens):
        kind, m = tokens[i]
        if kind == "reply":
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            gap = text[m.end() : nxt[1].start()] if nxt else ""
            if nxt and nxt[0] == "enh" and _PAIR_GAP.fullmatch(gap):
                e = nxt[1]
                found.append(FoundCode(original[m.start() : e.end()], m.group(), e.group(), m.start(), e.end()))
                i += 2
                continue
            if (
                re.match(r"-\d", text[m.end() : m.end() + 2])
                or _NUMBER_GROUP_BEFORE.search(text[max(0, m.start() - 8) : m.start()])
                or _NUMBER_GROUP_AFTER.match(text[m.end() : m.end() + 8])
            ):
                i += 1  # '555-1234', '+1 421 550 4477': part of a phone-like run, not a code
                continue
            found.append(FoundCode(original[m.start() : m.end()], m.group(), None, m.start(), m.end()))
        else:
            found.append(FoundCode(original[m.start() : m.end()], None, m.group(), m.start(), m.end()))
        i += 1
    return _dedupe(found)


def _dedupe(found: list[FoundCode]) -> list[FoundCode]:
    pair_replies = {f.reply for f in found if f.reply and f.enhanced}
    pair_enhanced = {f.enhanced for f in found if f.reply and f.enhanced}
    seen: set[str] = set()
    out: list[FoundCode] = []
    for f in found:
        if f.enhanced is None and f.reply in pair_replies:
            continue
        if f.reply is None and f.enhanced in pair_enhanced:
            continue
        if f.code in seen:
            continue
        seen.add(f.code)
        out.append(f)
    return out
