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
carries no row. This module needs neither the model nor the vector store and
must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.articles import ErrorRow, load_articles

from .codes import FoundCode, find_codes

__all__ = ["CodeMatch", "CodeTable"]


@dataclass(frozen=True)
class CodeMatch:
    found: FoundCode
    row: ErrorRow | None

    @property
    def exact(self) -> bool:
        return self.row is not None

    def as_contract(self) -> dict:
        return {
            "text": self.found.text,
            "code": self.found.code,
            "match": "exact" if self.row else "none",
            "row": self.row.as_contract() if self.row else None,
            "severity": self.found.severity,
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
        return cls([row for a in load_articles(kb_dir) for row in a.rows])

    def match(self, found: FoundCode) -> CodeMatch:
        if found.enhanced is None:
            candidates = self._by_pair.get((found.reply, None), [])
        elif found.reply is None:
            candidates = self._by_enhanced.get(found.enhanced, [])
        else:
            candidates = self._by_pair.get((found.reply, found.enhanced), [])
        distinct = {(r.code, r.meaning, r.action): r for r in candidates}
        return CodeMatch(found, next(iter(distinct.values())) if len(distinct) == 1 else None)

    def lookup(self, text: str) -> list[CodeMatch]:
        return [self.match(f) for f in find_codes(text)]
