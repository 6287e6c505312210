"""The deterministic code look-up: codes found in text, matched against the
error-table rows of the knowledge base.

A match is **exact** only when

1. the reply code and enhanced code together equal a row's code
   (``550 5.1.1`` -> row ``550-5.1.1``); or
2. an enhanced code alone equals the enhanced part of exactly one row
   (``5.1.1`` -> ``550-5.1.1``); or
3. a bare reply code equals a row that is only that reply code
   (``550`` -> row ``550``).

Anything else (``550 5.7.26``, ``450 4.2.2``, ``554`` alone) is ``none`` and
carries no row. Such a code gets a general ``explanation`` from the code
registry (``app.registry``, never the table's words) and the ``related`` rows
that share its reply code or class.subject, offered as "closest in the
article", never as its meaning. This module needs neither the model nor the
vector store and must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.articles import ErrorRow, load_articles

from .bounce import Recipient, looks_like_bounce_message, parse_bounce
from .codes import FoundCode, find_codes
from .registry import Explanation, explain

__all__ = ["CodeMatch", "CodeTable"]


@dataclass(frozen=True)
class Related:
    row: ErrorRow
    shares: str  # 'class and subject', 'reply code' or 'reply code, class and subject'

    def as_contract(self) -> dict:
        return {**self.row.as_contract(), "shares": self.shares}


@dataclass(frozen=True)
class CodeMatch:
    found: FoundCode
    row: ErrorRow | None
    explanation: Explanation | None = None  # general meaning; only when not exact
    related: tuple[Related, ...] = ()
    reason: str | None = None  # bounce category, e.g. 'user_unknown'

    @property
    def exact(self) -> bool:
        return self.row is not None

    def as_contract(self) -> dict:
        e = self.explanation
        return {
            "text": self.found.text,
            "code": self.found.code,
            "match": "exact" if self.row else "none",
            "row": self.row.as_contract() if self.row else None,
            "severity": self.found.severity,
            "explanation": (
                {"meaning": e.meaning, "action": e.action, "basis": e.basis, "sources": list(e.sources)}
                if e and not self.row
                else None
            ),
            "related": [r.as_contract() for r in self.related],
            "reason": self.reason,
        }


def _split(code: str) -> tuple[str | None, str | None] | None:
    """A table cell's code as (reply, enhanced); None when it is not one code."""
    found = find_codes(code)
    if len(found) != 1 or found[0].text != code.strip():
        return None
    return found[0].reply, found[0].enhanced


class CodeTable:
    """The error-table rows of every article, indexed for exact matching."""

    def __init__(self, rows: list[ErrorRow]):
        self.rows = list(rows)
        self._by_pair: dict[tuple[str | None, str | None], list[ErrorRow]] = {}
        self._by_enhanced: dict[str, list[ErrorRow]] = {}
        for row in self.rows:
            parts = _split(row.code)
            if parts is None:
                continue  # a cell such as '5xx' can be quoted, never matched exactly
            self._by_pair.setdefault(parts, []).append(row)
            if parts[1]:
                self._by_enhanced.setdefault(parts[1], []).append(row)

    @classmethod
    def from_kb(cls, kb_dir: Path) -> "CodeTable":
        return cls.from_articles(load_articles(kb_dir))

    @classmethod
    def from_articles(cls, articles) -> "CodeTable":
        return cls([row for a in articles for row in a.rows])

    def match(self, found: FoundCode, context: str | None = None) -> CodeMatch:
        if found.enhanced is None:
            candidates = self._by_pair.get((found.reply, None), [])
        elif found.reply is None:
            candidates = self._by_enhanced.get(found.enhanced, [])
        else:
            candidates = self._by_pair.get((found.reply, found.enhanced), [])
        distinct = {(r.code, r.meaning, r.action): r for r in candidates}
        row = next(iter(distinct.values())) if len(distinct) == 1 else None
        if row is not None:  # the table's words; the registry only names the bounce category
            general = explain(found.reply, found.enhanced)
            return CodeMatch(found, row, None, (), general.reason if general else None)
        general = explain(found.reply, found.enhanced, context)
        return CodeMatch(found, None, general, self.related(found), general.reason if general else None)

    def related(self, found: FoundCode) -> tuple[Related, ...]:
        """Rows sharing the class.subject (first) or the reply code: the
        closest the article comes to a code it does not list."""
        subject = ".".join(found.enhanced.split(".")[:2]) if found.enhanced else None
        out: dict[str, Related] = {}
        for (reply, enhanced), rows in self._by_pair.items():
            same_subject = bool(subject and enhanced and enhanced.startswith(subject + "."))
            same_reply = bool(found.reply and reply == found.reply)
            shares = ", ".join(
                p for p, ok in (("reply code", same_reply), ("class and subject", same_subject)) if ok
            )
            for row in rows if shares else []:
                out.setdefault(row.code, Related(row, shares))
        return tuple(sorted(out.values(), key=lambda r: ("class and subject" not in r.shares, r.row.line)))

    def lookup(self, text: str) -> list[CodeMatch]:
        """The codes in ``text`` matched against the table (no recipients:
        a question is not parsed as a bounce, which keeps this fast)."""
        if looks_like_bounce_message(text):
            return self.analyse(text)[0]
        return [self.match(f, text) for f in find_codes(text)]

    def analyse(self, text: str) -> tuple[list[CodeMatch], list[Recipient]]:
        """Codes matched against the table, and the recipients of a bounce.

        For a pasted bounce message, each recipient's decisive code counts
        (not every code-like token in headers and transcripts); for a
        question, every code in it."""
        recipients = parse_bounce(text)
        if recipients and looks_like_bounce_message(text):
            found: dict[str, FoundCode] = {}
            for r in recipients:
                if r.reply_code or r.status:
                    shown = " ".join(x for x in (r.reply_code, r.status) if x)
                    f = FoundCode(shown, r.reply_code, r.status, -1, -1)
                    found.setdefault(f.code, f)
            codes = list(found.values())
        else:
            codes = find_codes(text)
        return [self.match(f, text) for f in codes], recipients
