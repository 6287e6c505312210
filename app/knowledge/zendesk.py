"""Help-centre JSON exports in the shape of the Zendesk Help Center articles API.

An export page is any ``*.json`` file under the KB folder whose top level is an
object with an ``articles`` list (``{"articles": [...], "page": 1,
"page_count": 3, "next_page": ...}``); a large help centre is several pages.
Each article is ``{id, title, body (HTML), html_url, section_id, locale,
updated_at, draft, ...}``:

- drafts are skipped;
- ``body`` goes through the same HTML parser as an ``.html`` article;
- ``html_url`` is the article's URL (its sections' citations add an anchor);
- ``locale`` and ``updated_at`` are kept on the :class:`Article`, and the id
  becomes ``source_id`` (``zendesk:<id>:<locale>``: a translation shares its
  article's id), which keeps the article's chunk IDs stable whichever page it
  is on. The article's ``path`` reads ``<page file>#<id>``.

A page that is not JSON, an article without a usable id, title or body, or an
id that two articles share is refused with ``MalformedArticle`` naming the
file, the line and the article id: nothing is indexed from a broken export.

No model and no vector store: parsing 10,000 articles is the HTML parser's
time (measured in ``tests/unit/test_zendesk.py``'s output).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.errors import MalformedArticle

__all__ = ["EXPORT_SUFFIX", "read_page", "export_articles"]

EXPORT_SUFFIX = ".json"

# Fields an export article must carry, with the type each must have.
_TEXT_FIELDS = ("title", "html_url")


def read_page(path: Path, rel: str) -> tuple[list[dict], str] | None:
    """The ``articles`` of an export page and the page's text, or None when
    the JSON file is no export page."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MalformedArticle(rel, 1, f"not UTF-8 text ({e.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedArticle(rel, e.lineno, f"not valid JSON ({e.msg}); a help-centre export page is "
                               "{\"articles\": [...]}") from None
    if not isinstance(data, dict) or "articles" not in data:
        return None  # some other JSON file: not ours to read
    articles = data["articles"]
    if not isinstance(articles, list):
        raise MalformedArticle(rel, _line_of(text, '"articles"'), "'articles' must be a list of article objects")
    for k, a in enumerate(articles):
        if not isinstance(a, dict):
            raise MalformedArticle(rel, 1, f"article #{k + 1} of 'articles' is not an object")
    return articles, text


def _line_of(text: str, needle: str) -> int:
    i = text.find(needle)
    return text.count("\n", 0, i) + 1 if i >= 0 else 1


def _id_line(text: str, article_id) -> int:
    m = re.search(r'"id"\s*:\s*"?' + re.escape(str(article_id)) + r'\b', text)
    return text.count("\n", 0, m.start()) + 1 if m else 1


def _check(a: dict, rel: str, text: str, k: int) -> str:
    """The article's id as text, after checking the fields the KB needs."""
    raw_id = a.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)) or not str(raw_id).strip():
        raise MalformedArticle(rel, 1, f"article #{k + 1} has no 'id' (a number or text); give every article "
                               "its help-centre id", article_id=None)
    aid = str(raw_id).strip()
    problem = _problem(a)
    if problem:  # the line is looked for only now: finding it for every article would be quadratic
        raise MalformedArticle(rel, _id_line(text, aid), problem, article_id=aid)
    return aid


def _problem(a: dict) -> str | None:
    for key in _TEXT_FIELDS:
        value = a.get(key)
        if not isinstance(value, str) or not value.strip():
            return f"'{key}' must be non-empty text"
    body = a.get("body")
    if body is not None and not isinstance(body, str):
        return "'body' must be the article's HTML as text"
    for key in ("locale", "updated_at"):
        if a.get(key) is not None and not isinstance(a.get(key), str):
            return f"'{key}' must be text"
    if a.get("draft") is not None and not isinstance(a.get("draft"), bool):
        return "'draft' must be true or false"
    return None


def export_articles(pages: list[tuple[str, list[dict], str]], assemble) -> list:
    """The published articles of every page, in page then export order.

    ``pages`` are ``(rel, articles, text)``; ``assemble(rel, meta, body, **extra)``
    builds one :class:`~app.knowledge.articles.Article` from an HTML body."""
    seen: dict[tuple[str, str], str] = {}  # (id, locale): a translation shares its article's id
    out = []
    for rel, articles, text in pages:
        for k, a in enumerate(articles):
            aid = _check(a, rel, text, k)
            locale = (a.get("locale") or "en").strip() or "en"
            if (aid, locale) in seen:
                raise MalformedArticle(rel, _id_line(text, aid), f"article id {aid} ({locale}) is also in "
                                       f"{seen[aid, locale]}; each article must appear once in the export (remove "
                                       "the duplicate page or article)", article_id=aid)
            seen[aid, locale] = rel
            if a.get("draft"):
                continue
            meta = {"title": a["title"].strip(), "url": a["html_url"].strip()}
            try:
                out.append(assemble(f"{rel}#{aid}", meta, a.get("body") or "", source_id=f"zendesk:{aid}:{locale}",
                                    locale=locale, updated_at=a.get("updated_at") or ""))
            except MalformedArticle as e:  # the body's HTML: say which article, and where in its body
                raise MalformedArticle(rel, _id_line(text, aid), f"its body, line {e.line} of the HTML: {e.problem}",
                                       article_id=aid) from None
    return out
