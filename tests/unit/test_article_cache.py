"""The parsed export articles kept between loads (app.knowledge.articles.ArticleCache): an
unchanged article is not parsed again, a changed one is, and a bad cache only costs a parse."""

from __future__ import annotations

import json

import pytest

import app.knowledge.articles as articles
from app.knowledge.articles import load_articles


def page(bodies: dict[int, str]) -> str:
    return json.dumps({"articles": [
        {"id": i, "title": f"Article {i}", "body": b, "html_url": f"https://help.example.com/a/{i}",
         "section_id": 1, "locale": "en", "updated_at": "2026-11-01T00:00:00Z", "draft": False}
        for i, b in bodies.items()]})


@pytest.fixture()
def counted(monkeypatch):
    parsed = []
    real = articles._from_html

    def counting(rel, meta, body, **extra):
        parsed.append(rel)
        return real(rel, meta, body, **extra)

    monkeypatch.setattr(articles, "_from_html", counting)
    return parsed


def test_only_changed_articles_are_parsed_again(tmp_path, counted):
    kb, cache = tmp_path / "kb", tmp_path / "cache" / "articles.pickle"
    kb.mkdir()
    bodies = {1: "<h2>One</h2><p>First.</p>", 2: "<h2>Two</h2><p>Second.</p>", 3: "<h2>Three</h2><p>Third.</p>"}
    (kb / "page-1.json").write_text(page(bodies), encoding="utf-8")
    first = load_articles(kb, cache=cache)
    assert len(counted) == 3 and cache.is_file()
    counted.clear()
    assert load_articles(kb, cache=cache) == first and counted == []  # nothing parsed again
    (kb / "page-1.json").write_text(page({**bodies, 2: "<h2>Two</h2><p>Second, edited.</p>"}), encoding="utf-8")
    again = load_articles(kb, cache=cache)
    assert counted == ["page-1.json#2"]
    assert again == load_articles(kb)  # the same articles as a load without the cache
    assert [a.title for a in again] == ["Article 1", "Article 2", "Article 3"]


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_damaged_cache_is_only_ignored_and_rewritten(tmp_path, counted, damage):
    kb, cache = tmp_path / "kb", tmp_path / "articles.pickle"
    kb.mkdir()
    (kb / "page-1.json").write_text(page({1: "<p>Body.</p>"}), encoding="utf-8")
    cache.write_bytes(damage)
    assert [a.title for a in load_articles(kb, cache=cache)] == ["Article 1"] and len(counted) == 1
    counted.clear()
    load_articles(kb, cache=cache)
    assert counted == []


def test_an_unwritable_cache_does_not_fail_the_load(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "page-1.json").write_text(page({1: "<p>Body.</p>"}), encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert len(load_articles(kb, cache=blocker / "sub" / "articles.pickle")) == 1
