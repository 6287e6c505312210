"""Parse help-centre articles into sections and error-table rows.

Three formats, since help centres export all of them:

- Markdown (``.md``) with YAML front matter (``title``, ``subtitle``, ``url``);
- HTML (``.html``/``.htm``): ``<title>``/``<h1>``, ``<link rel=canonical>``,
  headings, paragraphs, lists and tables;
- plain text (``.txt``): optional front matter, else the first line is the
  title; a short single-line paragraph is a heading.

Parsing needs no model and no vector store: the code look-up reads the table
rows through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.errors import MalformedArticle

from app.knowledge._html import HtmlArticle

__all__ = ["Article", "Section", "Block", "ErrorRow", "load_articles", "parse_article", "ARTICLE_SUFFIXES"]

ARTICLE_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")
INTRO = "Introduction"


@dataclass(frozen=True)
class Block:
    kind: str  # 'para', 'list', 'table' or 'error-table' (its rows are extracted)
    text: str  # Markdown
    line: int


@dataclass
class Section:
    heading: str
    heading_path: tuple[str, ...]
    line: int
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return slugify(self.heading) if self.heading != INTRO else ""


@dataclass(frozen=True)
class ErrorRow:
    """One row of an error-code table, cells verbatim."""

    code: str
    meaning: str
    action: str
    article: str
    section: str
    url: str
    path: str
    line: int

    def as_contract(self) -> dict:
        """The row's words, verbatim, and where it sits in the article."""
        return {"code": self.code, "meaning": self.meaning, "action": self.action, "section": self.section,
                "url": self.url}


@dataclass
class Article:
    path: str  # relative to the KB folder (an export article: '<page file>#<id>')
    title: str
    subtitle: str
    url: str
    sections: list[Section]
    rows: list[ErrorRow]
    locale: str = "en"
    source_id: str = ""  # an export article's stable id ('zendesk:<id>:<locale>'); '' for a file
    updated_at: str = ""

    @property
    def key(self) -> str:
        """What identifies the article across re-ingests (chunk IDs are made from it)."""
        return self.source_id or self.path

    def section_url(self, section: Section | str) -> str:
        heading = section.heading if isinstance(section, Section) else section
        if heading == INTRO or not self.url:
            return self.url
        return f"{self.url}#{slugify(heading)}"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_articles(kb_dir: Path, cache: Path | None = None) -> list[Article]:
    """Parse every article under ``kb_dir`` (sorted by path).

    ``cache``: a file keeping the export's articles parsed, by a hash of each one's
    fields: an unchanged article of a help-centre export is not parsed again (at
    10,000 articles parsing their HTML takes seconds; see ``ArticleCache``).

    Raises ``MalformedArticle`` for the first article that cannot be parsed,
    and ``FileNotFoundError`` when the folder does not exist.
    """
    kb_dir = Path(kb_dir)
    if not kb_dir.is_dir():
        raise FileNotFoundError(f"Knowledge-base folder {kb_dir} does not exist.")
    files = sorted(p for p in kb_dir.rglob("*") if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES)
    articles = [parse_article(p, p.relative_to(kb_dir).as_posix()) for p in files]
    if cache is None:
        return articles + _export_articles(kb_dir)
    memo = ArticleCache(cache)
    exported = _export_articles(kb_dir, memo.parse)
    memo.save()
    return articles + exported


def article_cache(settings) -> Path:
    """Where this machine keeps the KB's export articles parsed (``ArticleCache``), one file per KB
    folder: in the embedded store's folder (removed with it); with a Chroma server, beside the model."""
    import hashlib

    kb = hashlib.sha256(str(Path(settings.kb_dir).resolve()).encode()).hexdigest()[:12]
    base = Path(settings.model_dir).parent / "articles" if settings.chroma_url else Path(settings.index_dir)
    return base / f".articles-{kb}.pickle"


def _parser_recipe() -> str:
    """A hash of the parser's own source: a cache written by another version of it is not used."""
    import hashlib

    here = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for name in ("articles.py", "_html.py", "zendesk.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


class ArticleCache:
    """Export articles parsed before, by a hash of their fields (``rel``, title, URL, body, locale,
    updated_at), kept in one pickle file written aside and renamed into place. Only what this load
    used is kept. A cache that cannot be read or written is only ignored: articles are parsed."""

    VERSION = 1

    def __init__(self, path: Path):
        self.path = Path(path)
        self.used: dict[str, Article] = {}
        try:
            import pickle

            with open(self.path, "rb") as f:
                version, self.kept = pickle.load(f)
            if version != (self.VERSION, _parser_recipe()):
                self.kept = {}
        except Exception:  # noqa: BLE001 - missing, damaged or from another version: parse again
            self.kept = {}

    def parse(self, rel: str, meta: dict, body: str, **extra) -> Article:
        import hashlib

        key = hashlib.blake2b(repr((rel, sorted(meta.items()), body, sorted(extra.items()))).encode(),
                              digest_size=16).hexdigest()
        article = self.kept.get(key) or _from_html(rel, meta, body, **extra)
        self.used[key] = article
        return article

    def save(self) -> None:
        if self.used.keys() == self.kept.keys():
            return
        import os
        import pickle

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                pickle.dump(((self.VERSION, _parser_recipe()), self.used), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass


def _export_articles(kb_dir: Path, parse=None) -> list[Article]:
    """The published articles of the help-centre JSON export pages under ``kb_dir`` (``app.knowledge.zendesk``)."""
    from app.knowledge.zendesk import EXPORT_SUFFIX, export_articles, read_page

    pages = []
    for p in sorted(p for p in kb_dir.rglob("*" + EXPORT_SUFFIX) if p.is_file()):
        rel = p.relative_to(kb_dir).as_posix()
        page = read_page(p, rel)
        if page is not None:
            pages.append((rel, *page))
    return export_articles(pages, parse or _from_html) if pages else []


def _from_html(rel: str, meta: dict, body: str, **extra) -> Article:
    """An article from a title, a URL and an HTML body (an export's article)."""
    _, blocks = HtmlArticle.parse(body.replace("\r\n", "\n").replace("\r", "\n"), rel)
    article = _assemble(rel, meta, blocks)
    for k, v in extra.items():
        setattr(article, k, v)
    return article


def parse_article(path: Path, rel: str | None = None) -> Article:
    rel = rel or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MalformedArticle(rel, 1, f"not UTF-8 text ({e.reason})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        meta, blocks = HtmlArticle.parse(text, rel)
    else:
        meta, body, offset = _front_matter(text, rel)
        if suffix == ".txt":
            blocks = _text_blocks(body, offset, meta)
        else:
            blocks = _markdown_blocks(body, offset, rel)
    return _assemble(rel, meta, blocks)


# --------------------------------------------------------------------------- front matter


def _front_matter(text: str, rel: str) -> tuple[dict, str, int]:
    """Split YAML front matter off; returns (meta, body, line offset of body)."""
    if not text.startswith("---\n"):
        return {}, text, 0
    lines = text.split("\n")
    try:
        close = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise MalformedArticle(rel, 1, "front matter opened with '---' is never closed") from None
    raw = "\n".join(lines[1:close])
    try:
        meta = yaml.safe_load(raw) or {}  # the pure loader: its error marks name the right line
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise MalformedArticle(rel, line, f"broken front matter: {problem}") from None
    if not isinstance(meta, dict):
        raise MalformedArticle(rel, 2, "front matter must be 'key: value' lines")
    for key in ("title", "subtitle", "url"):
        if key in meta and not isinstance(meta[key], str):
            raise MalformedArticle(rel, 2, f"front matter '{key}' must be text")
    return meta, "\n".join(lines[close + 1 :]), close + 1


# --------------------------------------------------------------------------- Markdown

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _markdown_blocks(body: str, offset: int, rel: str) -> list[tuple]:
    """Blocks as ('heading', level, text, line) or ('para'|'list'|'table', text, line, cells)."""
    out: list[tuple] = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        line, lineno = lines[i], offset + i + 1
        if not line.strip():
            i += 1
            continue
        m = _HEADING.match(line)
        if m:
            out.append(("heading", len(m.group(1)), m.group(2), lineno))
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].strip() and not _HEADING.match(lines[j]):
            j += 1
        chunk = lines[i:j]
        if chunk[0].lstrip().startswith("|"):
            out.append(("table", "\n".join(chunk), lineno, _table_cells(chunk, lineno, rel)))
        elif _LIST_ITEM.match(chunk[0]):
            out.append(("list", "\n".join(chunk), lineno, None))
        else:
            out.append(("para", "\n".join(chunk), lineno, None))
        i = j
    return out


def _split_row(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells = re.split(r"(?<!\\)\|", s)
    return [c.strip().replace("\\|", "|") for c in cells]


def _table_cells(chunk: list[str], lineno: int, rel: str) -> list[list[str]]:
    if len(chunk) < 2 or not _TABLE_SEP.match(chunk[1].strip()):
        raise MalformedArticle(rel, lineno + 1, "a table needs a header row and a '| --- |' separator row")
    header = _split_row(chunk[0])
    rows = [header]
    for k, line in enumerate(chunk[2:], start=2):
        if not line.lstrip().startswith("|"):
            raise MalformedArticle(rel, lineno + k, "a table row must start with '|'")
        cells = _split_row(line)
        if len(cells) != len(header) or any(not c for c in cells):
            raise MalformedArticle(
                rel,
                lineno + k,
                f"table row has {sum(1 for c in cells if c)} filled cells; the header has {len(header)}",
            )
        rows.append(cells)
    return rows


# --------------------------------------------------------------------------- plain text

_TEXT_BULLET = re.compile(r"^\s*[•·\-*]\s+")


def _text_blocks(body: str, offset: int, meta: dict) -> list[tuple]:
    out: list[tuple] = []
    paras: list[tuple[list[str], int]] = []
    cur: list[str] = []
    start = 0
    for i, line in enumerate(body.split("\n")):
        if line.strip():
            if not cur:
                start = offset + i + 1
            cur.append(line.strip())
        elif cur:
            paras.append((cur, start))
            cur = []
    if cur:
        paras.append((cur, start))
    if "title" not in meta and paras:
        first, _ = paras.pop(0)
        meta["title"] = first[0]
    for lines, lineno in paras:
        if len(lines) == 1 and _looks_like_heading(lines[0]):
            out.append(("heading", 2, lines[0], lineno))
        elif all(_TEXT_BULLET.match(x) or re.match(r"^\d+[.)]\s", x) for x in lines):
            items = [_TEXT_BULLET.sub("- ", x) for x in lines]
            out.append(("list", "\n".join(items), lineno, None))
        else:
            out.append(("para", " ".join(lines), lineno, None))
    return out


def _looks_like_heading(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= 8 and line[0].isupper() and not line.endswith((".", ":", ","))


# --------------------------------------------------------------------------- assembly


def _merge_lists(blocks: list[tuple]) -> list[tuple]:
    """Consecutive one-item list blocks (from HTML) become one list block."""
    out: list[tuple] = []
    for b in blocks:
        if b[0] == "list" and out and out[-1][0] == "list" and "\n" not in b[1] and out[-1][4:5] == ("html",):
            out[-1] = ("list", out[-1][1] + "\n" + b[1], out[-1][2], None, "html")
        elif b[0] == "list" and "\n" not in b[1]:
            out.append(("list", b[1], b[2], None, "html"))
        else:
            out.append(b)
    return [b[:4] for b in out]


def _assemble(rel: str, meta: dict, raw: list[tuple]) -> Article:
    raw = _merge_lists(raw)
    title = (meta.get("title") or "").strip()
    if raw and raw[0][0] == "heading" and raw[0][1] == 1:
        title = title or raw[0][2]
        if raw[0][2] == title:
            raw = raw[1:]
    if not title:
        raise MalformedArticle(rel, 1, "the article has no title (front matter 'title', <title> or a first line)")
    url = (meta.get("url") or "").strip()
    article = Article(rel, title, (meta.get("subtitle") or "").strip(), url, [], [])
    intro = Section(INTRO, (title,), 1)
    sections = [intro]
    path: list[tuple[int, str]] = []
    for b in raw:
        if b[0] == "heading":
            level, heading, line = b[1], b[2], b[3]
            path = [(lv, h) for lv, h in path if lv < level] + [(level, heading)]
            sections.append(Section(heading, (title, *[h for _, h in path]), line))
            continue
        kind, text, line, cells = b
        rows = _error_rows(cells, article, sections[-1], line) if kind == "table" and cells else []
        # A table whose rows were extracted is indexed row by row, not as a block.
        sections[-1].blocks.append(Block("error-table" if rows else kind, text, line))
        article.rows.extend(rows)
    article.sections = [s for s in sections if s.blocks]
    return article


def _column(header: list[str], words: tuple[str, ...], default: int | None) -> int | None:
    for i, h in enumerate(header):
        if any(w in h.lower() for w in words):
            return i
    return default


def _error_rows(cells: list[list[str]], article: Article, section: Section, line: int) -> list[ErrorRow]:
    header = cells[0]
    code_col = _column(header, ("code",), None)
    if code_col is None or len(header) < 3:
        return []
    others = [i for i in range(len(header)) if i != code_col]
    mean_col = _column(header, ("mean",), others[0])
    act_col = _column(header, ("can do", "action", "to do", "fix"), next(i for i in others if i != mean_col))
    url = article.section_url(section)
    return [
        ErrorRow(r[code_col], r[mean_col], r[act_col], article.title, section.heading, url, article.path, line + k + 1)
        for k, r in enumerate(cells[1:], start=1)
    ]
