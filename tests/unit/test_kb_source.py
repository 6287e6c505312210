"""The knowledge base can never drift from its source: every table cell and
every sentence of the captured article must be in kb/, verbatim."""

from __future__ import annotations

import re

import pytest

from app.knowledge.articles import load_articles

from ..conftest import KB, SEED

CHROME = {"Timer4 min read", "ShaikShaik", "image.png"}  # byline and image placeholder, not article text


def seed_article_lines() -> list[str]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    start = lines.index("Common Email Delivery Errors")  # the bare title line; the nav item carries a bullet
    end = lines.index("Powered By SparrowDesk")
    return [line.strip() for line in lines[start:end] if line.strip() and line.strip() not in CHROME]


def seed_table() -> tuple[list[str], list[list[str]]]:
    body = seed_article_lines()
    h = body.index("Error code")
    end = body.index("Email address is on a bounce list")
    cells = body[h:end]
    header, rest = cells[:3], cells[3:]
    assert len(rest) % 3 == 0
    return header, [rest[i : i + 3] for i in range(0, len(rest), 3)]


def sentences(line: str) -> list[str]:
    line = re.sub(r"^(?:•|\d+\.)\s*", "", line)
    return [s for s in re.split(r"(?<=[.?!:])\s+", line) if s]


def kb_plain_text() -> str:
    text = (KB / "common-email-delivery-errors.md").read_text(encoding="utf-8")
    return text


@pytest.fixture(scope="module")
def article():
    (a,) = load_articles(KB)
    return a


def test_seed_is_where_the_tests_expect_it():
    assert SEED.is_file(), f"the source article is missing: {SEED}"


def test_front_matter(article):
    assert article.title == "Common Email Delivery Errors"
    assert article.subtitle == "Why did a message delivery fail from the Inbox?"
    assert article.url == (
        "https://sparrowdesk-support.sparrowdesk.com/hc/en/articles/6128508718-common-email-delivery-errors/"
    )


def test_table_header_and_every_cell_verbatim(article):
    header, rows = seed_table()
    assert header == ["Error code", "What it means", "What you can do"]
    kb = kb_plain_text()
    assert f"| {' | '.join(header)} |" in kb
    assert [(r.code, r.meaning, r.action) for r in article.rows] == [tuple(r) for r in rows]
    assert len(article.rows) == 7


@pytest.mark.parametrize("sentence", [s for line in seed_article_lines() for s in sentences(line)])
def test_every_article_sentence_is_in_the_kb(sentence):
    assert sentence in kb_plain_text()


def test_curly_apostrophes_kept():
    kb = kb_plain_text()
    assert "recipient’s" in kb and "isn’t" in kb
    assert "recipient's" not in kb


def test_site_navigation_dropped():
    kb = kb_plain_text()
    for nav in ("Go to sparrowdesk.com", "Round Robin assignment explained", "Powered By SparrowDesk", "Timer4"):
        assert nav not in kb


def test_sections_follow_the_article(article):
    assert [s.heading for s in article.sections] == [
        "Introduction",
        "Common delivery errors",
        "Email address is on a bounce list",
        "Troubleshooting message delivery failures",
        "Best practices to reduce delivery failures",
        "Need more help?",
    ]
