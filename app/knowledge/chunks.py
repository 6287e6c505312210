"""Cut parsed articles into index documents.

Each section becomes one document (long sections are cut at block
boundaries), and each error-table row becomes a document of its own. A
document's ID is a hash of everything that goes into it, including the
embedding model's name: an unchanged document keeps its ID (and is not
embedded again), any change gives a new ID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.knowledge.articles import Article, ErrorRow, Section

__all__ = ["Chunk", "chunk_articles", "row_text", "search_text", "MAX_WORDS"]

# MiniLM reads at most 256 word pieces; keep a passage well under that.
MAX_WORDS = 180
# A passage closes once it reaches this many words (tuned on the dev split).
TARGET_WORDS = 80


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str  # the passage as quoted (Markdown, the article's words)
    metadata: dict  # str/int/float only: Chroma's rule

    @property
    def search_text(self) -> str:
        return search_text(self.text, self.metadata)


def search_text(text: str, metadata: dict) -> str:
    """What is embedded and searched: the heading path, then the passage.
    Headings carry much of a section's meaning ('Need more help?')."""
    return f"{metadata.get('heading_path', '')}\n\n{text}"


def row_text(row: ErrorRow) -> str:
    """How a table row reads as a passage: the article's own words."""
    return f"{row.code}: {row.meaning} {row.action}"


# Part of every ID: bump it when what is embedded changes, so all is re-embedded.
RECIPE = "heading-path+passage/1"


def _id(model: str, *parts: str) -> str:
    h = hashlib.sha256(f"{RECIPE}\x00{model}".encode())
    for p in parts:
        h.update(b"\x00" + p.encode("utf-8"))
    return h.hexdigest()[:32]


def _pieces(section: Section) -> list[tuple[str, int]]:
    """Group a section's blocks into passages: a passage closes once it has
    TARGET_WORDS words, never after a lead-in ending with ':' (it stays with
    its list), and never grows past MAX_WORDS unless one block is longer."""
    pieces: list[tuple[str, int]] = []
    cur: list[str] = []
    words = 0
    line = section.line
    blocks = [b for b in section.blocks if b.kind != "error-table"]  # its rows are indexed one by one
    for b in blocks:
        n = len(b.text.split())
        if cur and words + n > MAX_WORDS and not cur[-1].endswith(":"):
            pieces.append(("\n\n".join(cur), line))
            cur, words = [], 0
        if not cur:
            line = b.line
        cur.append(b.text)
        words += n
        if words >= TARGET_WORDS and not b.text.endswith(":"):
            pieces.append(("\n\n".join(cur), line))
            cur, words = [], 0
    if cur:
        pieces.append(("\n\n".join(cur), line))
    return pieces


def chunk_articles(articles: list[Article], model: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    for a in articles:
        base = {"article": a.title, "article_path": a.path, "url": a.url}
        for s_ord, s in enumerate(a.sections):
            for p_ord, (text, line) in enumerate(_pieces(s)):
                meta = {
                    **base,
                    "kind": "section",
                    "section": s.heading,
                    "heading_path": " > ".join(s.heading_path),
                    "url": a.section_url(s),
                    "line": line,
                    "order": s_ord * 100 + p_ord,
                }
                chunks.append(Chunk(_id(model, a.key, "section", meta["heading_path"], text), text, meta))
        for r_ord, r in enumerate(a.rows):
            text = row_text(r)
            meta = {
                **base,
                "kind": "row",
                "section": r.section,
                "heading_path": f"{a.title} > {r.section}",
                "url": r.url,
                "line": r.line,
                "order": 10_000 + r_ord,
                "code": r.code,
                "meaning": r.meaning,
                "action": r.action,
            }
            chunks.append(Chunk(_id(model, a.key, "row", r.section, text), text, meta))
    return _unique(chunks)


def _unique(chunks: list[Chunk]) -> list[Chunk]:
    """One chunk per ID: the same words twice in one section of one article
    (two identical rows, a repeated passage) are one document, the first."""
    seen: set[str] = set()
    out = []
    for c in chunks:
        if c.id not in seen:
            seen.add(c.id)
            out.append(c)
    return out
