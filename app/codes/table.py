"""The deterministic code look-up: codes found in text, matched against the
error-table rows of the knowledge base.

A match is **exact** only when

1. the reply code and enhanced code together equal a row's code
   (``550 5.1.1`` -> row ``550-5.1.1``); or
2. an enhanced code alone equals the enhanced part of a row's code
   (``5.1.1`` -> ``550-5.1.1``); or
3. a bare reply code equals a row that is only that reply code
   (``550`` -> row ``550``).

A code that several rows hold (several articles' tables, or one table twice
in other words) is exact with all of them (``CodeMatch.rows``), each quoted
with its own article and section, never merged into one; the same words twice
in one article are one row. ``row`` is the first of them. An enhanced code
alone that rows of several reply codes hold (``5.7.1``: ``550-5.7.1`` in one
article, ``554-5.7.1`` in another) is exact with each of them, each row under
its own full code and citation: which reply code the sender saw cannot be
known, so none is chosen and no words are merged.

Anything else (``550 5.7.26``, ``450 4.2.2``, ``554`` alone) is ``none`` and
carries no row. Such a code gets a general ``explanation`` from the code
registry (``app.registry``, never the table's words) and the ``related`` rows
that share its reply code or class.subject, offered as "closest in the
article", never as its meaning. This module needs neither the model nor the
vector store and must not import torch.

Every stage is linear in the text, and the work per request is capped: at most
``MAX_CODES`` distinct codes are matched (the first, in order of appearance)
and at most ``app.bounce.MAX_RECIPIENTS`` recipients read. What a cap cut off
is counted and reported in :class:`Limits`, so every surface can say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from app.knowledge.articles import ErrorRow, load_articles

from app.codes.bounce import Recipient, looks_like_bounce_message, read_bounce
from app.codes.find import FoundCode, find_codes
from app.codes.registry import Explanation, explain, named_providers

__all__ = ["MAX_CODES", "Analysis", "CodeMatch", "CodeTable", "Limits"]

# Distinct codes matched per request. A real question names one to a few codes
# and a real bounce two or three (the 593-mail bounce corpus: at most 9 distinct
# code tokens in a whole email, at most 2 decisive codes); each code is a
# paragraph of the answer, so past a few dozen the answer is no longer readable.
MAX_CODES = 50


@dataclass(frozen=True)
class Related:
    row: ErrorRow
    shares: str  # 'class and subject', 'reply code' or 'reply code, class and subject'

    def as_contract(self) -> dict:
        return {**self.row.as_contract(), "shares": self.shares}


@dataclass(frozen=True)
class CodeMatch:
    found: FoundCode
    row: ErrorRow | None  # the first of ``rows``: what a client reading one row gets
    explanation: Explanation | None = None  # general meaning; only when not exact
    related: tuple[Related, ...] = ()
    reason: str | None = None  # bounce category, e.g. 'user_unknown'
    # Every row holding the code, in KB order: several when several articles' tables
    # hold it, each quoted with its own citation, never merged. () when not exact.
    rows: tuple[ErrorRow, ...] = ()

    def __post_init__(self):
        if self.row is not None and not self.rows:
            object.__setattr__(self, "rows", (self.row,))

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
            "rows": [{**r.as_contract(), "article": r.article} for r in self.rows],
            "severity": self.found.severity,
            "explanation": (
                {"meaning": e.meaning, "action": e.action, "basis": e.basis, "sources": list(e.sources)}
                if e and not self.row
                else None
            ),
            "related": [r.as_contract() for r in self.related],
            "reason": self.reason,
            "from_history": False,  # the look-up reads one text; a conversation marks codes it carries
        }


@dataclass(frozen=True)
class Limits:
    """How much of a text was looked at, against how much it holds."""

    codes_found: int  # distinct codes in the text (a bounce: the decisive codes of the recipients read)
    codes_examined: int  # of those, matched against the table: the first max_codes
    recipients_found: int  # failed recipients the bounce names (0 for a question without one)
    recipients_examined: int  # of those, read: the first MAX_RECIPIENTS

    @property
    def truncated(self) -> bool:
        """Whether a cap left some codes or recipients out."""
        return self.codes_examined < self.codes_found or self.recipients_examined < self.recipients_found

    def as_contract(self) -> dict:
        """{"codes_found", "codes_examined", "recipients_found", "recipients_examined", "truncated"}."""
        return {**asdict(self), "truncated": self.truncated}


@dataclass(frozen=True)
class Analysis:
    """What :meth:`CodeTable.analyse` found. Unpacks as ``matches, recipients``."""

    matches: list[CodeMatch]
    recipients: list[Recipient]
    limits: Limits
    kind: str | None = None  # a pasted message's kind (app.codes.bounce.Bounce.kind); None for a question

    def __iter__(self):
        return iter((self.matches, self.recipients))


def _split(code: str) -> tuple[str | None, str | None] | None:
    """A table cell's code as (reply, enhanced); None when it is not one code."""
    found = find_codes(code)
    if len(found) != 1 or found[0].text != code.strip():
        return None
    return found[0].reply, found[0].enhanced


class CodeTable:
    """The error-table rows of every article, indexed for exact matching.

    ``max_codes`` caps the distinct codes matched per text (None: no cap)."""

    def __init__(self, rows: list[ErrorRow], max_codes: int | None = MAX_CODES):
        self.rows = list(rows)
        self.max_codes = max_codes
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
    def from_kb(cls, kb_dir: Path, max_codes: int | None = MAX_CODES) -> "CodeTable":
        return cls.from_articles(load_articles(kb_dir), max_codes)

    @classmethod
    def from_articles(cls, articles, max_codes: int | None = MAX_CODES) -> "CodeTable":
        return cls([row for a in articles for row in a.rows], max_codes)

    def match(self, found: FoundCode, context: str | None = None, providers: set[str] | None = None) -> CodeMatch:
        """``found`` against the table. ``providers`` is ``named_providers(context)``,
        when the caller matches many codes of one text (it is then worked out once)."""
        if found.enhanced is None:
            candidates = self._by_pair.get((found.reply, None), [])
        elif found.reply is None:  # every row of any reply code with that enhanced part, each cited alone
            candidates = self._by_enhanced.get(found.enhanced, [])
        else:
            candidates = self._by_pair.get((found.reply, found.enhanced), [])
        rows = _one_code(candidates)
        if rows:  # the tables' words; the registry only names the bounce category
            general = explain(found.reply, found.enhanced)
            return CodeMatch(found, rows[0], None, (), general.reason if general else None, rows)
        general = explain(found.reply, found.enhanced, context, providers)
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
        """The codes in ``text`` matched against the table, the first
        ``max_codes`` of them (no recipients: a question is not parsed as a
        bounce, which keeps this fast)."""
        if looks_like_bounce_message(text):
            return self.analyse(text).matches
        return self._match_all(self._capped(find_codes(text)), text)

    def analyse(self, text: str) -> Analysis:
        """Codes matched against the table, the recipients of a bounce, and
        the limits that cut either short.

        For a pasted bounce message, each recipient's decisive code counts
        (not every code-like token in headers and transcripts); for a
        question, every code in it. Only the first ``max_codes`` distinct
        codes are matched; the rest are counted in ``limits``."""
        bounce = read_bounce(text)
        recipients = bounce.recipients
        if recipients and looks_like_bounce_message(text):
            codes = _decisive_codes(recipients)
        else:
            codes = find_codes(text)
        examined = self._capped(codes)
        limits = Limits(len(codes), len(examined), bounce.found, len(recipients))
        # A question quoting a code is no message: it has no kind (an unnamed "recipient" is the code).
        kind = bounce.kind if looks_like_bounce_message(text) or any(r.recipient for r in recipients) else None
        return Analysis(self._match_all(examined, text), recipients, limits, kind)

    def _capped(self, codes: list[FoundCode]) -> list[FoundCode]:
        return codes if self.max_codes is None else codes[: self.max_codes]

    def _match_all(self, codes: list[FoundCode], text: str) -> list[CodeMatch]:
        """Each code matched, with the text's providers named once (not per code)."""
        providers = named_providers(text) if codes else set()
        return [self.match(f, text, providers) for f in codes]


def _one_code(candidates: list[ErrorRow]) -> tuple[ErrorRow, ...]:
    """The rows of one code (the caller gives rows of one reply and enhanced code, or of one
    enhanced code under any reply code), in KB order.

    Rows of one code in several articles are all kept, never merged: each is
    quoted with its own article and section. The same words twice in one
    article (one citation: its file or export id, and its section's link) are one row."""
    distinct = {(r.path, r.url, r.code, r.meaning, r.action): r for r in candidates}
    return tuple(distinct.values())


def _decisive_codes(recipients: list[Recipient]) -> list[FoundCode]:
    """Each recipient's decisive code, once, in the order of the recipients."""
    found: dict[str, FoundCode] = {}
    for r in recipients:
        if r.reply_code or r.status:
            shown = " ".join(x for x in (r.reply_code, r.status) if x)
            f = FoundCode(shown, r.reply_code, r.status, -1, -1)
            found.setdefault(f.code, f)
    return list(found.values())
