"""A passage cut into the units an answer quotes: the sentences of its paragraphs, the items of its
lists, and the blocks that are never cut (tables, headings). ``app.answering.focus`` chooses among
them; ``bouncebot ingest`` embeds each distinct one once (``app.search.body``), so that focusing an
answer on a passage met for the first time costs no sentence embedding.
"""

from __future__ import annotations

import re

__all__ = ["cut", "unit_texts"]

_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(\[]?[A-Z0-9])")
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|no)\.$", re.I)


def _sentences(paragraph: str) -> list[str]:
    parts: list[str] = []
    for piece in _SENTENCE_END.split(paragraph.strip()):
        if parts and _ABBREVIATIONS.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return [p for p in parts if p]


def cut(passage: str) -> tuple[list[tuple[str, int, str]], list[str]]:
    """The passage's units as (text, block, kind), kind one of "sentence", "item", "lead-in" or
    "whole", and each block's kind ("paragraph", "list", "whole")."""
    blocks = [b for b in re.split(r"\n[ \t]*\n", passage.replace("\r\n", "\n").strip()) if b.strip()]
    out: list[tuple[str, int, str]] = []
    kinds: list[str] = []
    for bi, block in enumerate(blocks):
        lines = [line for line in block.split("\n") if line.strip()]
        if all(_ITEM.match(line) for line in lines):
            kinds.append("list")
            out += [(line.rstrip(), bi, "item") for line in lines]
        elif all(line.lstrip().startswith("|") for line in lines) or (len(lines) == 1 and lines[0].startswith("#")):
            kinds.append("whole")  # a table (its rows verbatim, always) or a heading
            out.append((block.strip(), bi, "whole"))
        elif len(lines) > 1 and all(_ITEM.match(line) for line in lines[1:]) and lines[0].rstrip().endswith(":"):
            kinds.append("list")  # a lead-in line with its list in the same block
            out.append((lines[0].rstrip(), bi, "lead-in"))
            out += [(line.rstrip(), bi, "item") for line in lines[1:]]
        else:
            kinds.append("paragraph")
            out += [(s, bi, "sentence") for s in _sentences(" ".join(line.strip() for line in lines))]
    return out, kinds


def unit_texts(passage: str) -> list[str]:
    """The texts focusing ``passage`` embeds: its units' (none for a passage of one unit, where
    there is nothing to choose between)."""
    units = cut(passage)[0]
    return [text for text, _, _ in units] if len(units) > 1 else []
