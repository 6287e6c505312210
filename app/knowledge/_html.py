"""HTML help-centre exports as the same blocks the Markdown parser gives:
title from <title>/<h1>, URL from <link rel=canonical> or og:url, subtitle
from the description; headings, paragraphs, list items and tables; site
navigation, headers, footers, scripts and styles dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from app.errors import MalformedArticle

class HtmlArticle(HTMLParser):
    _BLOCKS = {"p": "para", "li": "list", "h1": "h", "h2": "h", "h3": "h", "h4": "h", "h5": "h", "h6": "h"}

    def __init__(self, rel: str):
        super().__init__(convert_charrefs=True)
        self.rel = rel
        self.meta: dict = {}
        self.blocks: list[tuple] = []
        self._stack: list[tuple[str, int]] = []  # open capture: (tag, line)
        self._buf: list[str] = []
        self._in_title = False
        self._skip = 0  # inside <script>/<style>/<nav>
        self._table: list[list[str]] | None = None
        self._table_line = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._list_kind: list[str] = []

    @classmethod
    def parse(cls, text: str, rel: str) -> tuple[dict, list[tuple]]:
        p = cls(rel)
        p.feed(text)
        p.close()
        return p.meta, p.blocks

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        line = self.getpos()[0]
        if tag in ("script", "style", "nav", "header", "footer"):
            self._skip += 1
        elif self._skip:
            return
        elif tag == "title":
            self._in_title = True
            self._buf = []
        elif tag == "link" and (a.get("rel") or "").lower() == "canonical":
            self.meta.setdefault("url", a.get("href") or "")
        elif tag == "meta" and (a.get("name") or a.get("property") or "").lower() in ("description", "og:description"):
            self.meta.setdefault("subtitle", a.get("content") or "")
        elif tag == "meta" and (a.get("property") or "").lower() == "og:url":
            self.meta.setdefault("url", a.get("content") or "")
        elif tag in ("ul", "ol"):
            self._list_kind.append(tag)
        elif tag == "table":
            self._table, self._table_line = [], line
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in self._BLOCKS and self._table is None:
            self._stack.append((tag, line))
            self._buf = []
        elif tag == "br" and self._stack:
            self._buf.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "nav", "header", "footer"):
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "title" and self._in_title:
            self._in_title = False
            self.meta.setdefault("title", _squash("".join(self._buf)))
        elif tag in ("ul", "ol") and self._list_kind:
            self._list_kind.pop()
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(_squash("".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self._table.append(self._row)
            if len(self._table) > 1 and len(self._row) != len(self._table[0]) or any(not c for c in self._row):
                raise MalformedArticle(
                    self.rel, self.getpos()[0],
                    f"table row has {sum(1 for c in self._row if c)} filled cells; the header has {len(self._table[0])}",
                )
            self._row = None
        elif tag == "table" and self._table is not None:
            rows, self._table = self._table, None
            if rows:
                md = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
                md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
                self.blocks.append(("table", "\n".join(md), self._table_line, rows))
        elif self._stack and self._stack[-1][0] == tag:
            _, line = self._stack.pop()
            text = _squash("".join(self._buf))
            if not text:
                return
            if tag.startswith("h"):
                self.blocks.append(("heading", int(tag[1]), text, line))
            elif tag == "li":
                ordered = self._list_kind and self._list_kind[-1] == "ol"
                self.blocks.append(("list", ("1. " if ordered else "- ") + text, line, None))
            else:
                self.blocks.append(("para", text, line, None))

    def handle_data(self, data):
        if self._skip:
            return
        if self._in_title or self._stack:
            self._buf.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()
