"""The widget in a real browser over a KB of two articles (the real one and the
SYNTHETIC export in ``tests/unit/data/zendesk/``): a code both tables hold
gets one card showing both rows, each under a link to its own article."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import Page, expect

from ...conftest import ROOT
from ...servers import LiveServer, free_port
from .test_widget_browser import ask, host_app, open_with_keyboard, start_bot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REAL = "Common Email Delivery Errors"
QUOTAS = "Mailbox Quotas for Shared Inboxes (synthetic)"


@pytest.fixture(scope="module")
def two_article_services(tmp_path_factory, embedder):
    from app.answering.services import build
    from app.config import Settings

    kb = tmp_path_factory.mktemp("kb2")
    shutil.copy(ROOT / "kb" / "common-email-delivery-errors.md", kb)
    shutil.copytree(ROOT / "tests" / "unit" / "data" / "zendesk", kb / "export")
    settings = Settings().with_(kb_dir=kb, index_dir=tmp_path_factory.mktemp("index2"), collection="widget_two")
    return build(settings, embedder=embedder, ingest_first=True)


@pytest.fixture(scope="module")
def host2(two_article_services, feedback_log):
    bot_port, host_port = free_port(), free_port()
    with start_bot(two_article_services, feedback_log, bot_port, (f"http://127.0.0.1:{host_port}",)):
        with LiveServer(host_app(bot_port), port=host_port) as host:
            yield host


def test_a_code_two_articles_table_shows_both_rows_each_cited(host2, two_article_services, page: Page):
    rows = two_article_services.answerer.ask("What does 552-5.2.2 mean?").codes[0].rows
    page.goto(f"{host2.url}/")
    open_with_keyboard(page)
    answer = ask(page, "What does 552-5.2.2 mean?")
    card = answer.locator('.card.exact[data-code="552-5.2.2"]')
    expect(card.locator(".meaning")).to_have_text([r.meaning for r in rows])  # each row verbatim, in KB order
    expect(card.locator(".action")).to_have_text([r.action for r in rows])
    links = card.locator(".row-cite a")
    expect(links).to_have_text([f"{REAL} › {rows[0].section}", f"{QUOTAS} › {rows[1].section}"])
    expect(links.nth(1)).to_have_attribute("href", rows[1].url)


def test_a_refusal_names_the_help_centre_s_articles_not_one_of_them(host2, two_article_services, page: Page):
    from app.answering.render import WORDING

    question = "What's the weather in Paris tomorrow?"
    want = two_article_services.answerer.ask(question)
    assert not want.answered and "help-centre articles" in want.answer  # the Markdown says it too
    page.goto(f"{host2.url}/")
    open_with_keyboard(page)
    answer = ask(page, question)
    n = len(two_article_services.answerer.articles)
    expect(answer).to_contain_text(WORDING["dont_know_many"].format(count=n))
    expect(answer).not_to_contain_text("I only answer from it")
    expect(answer.locator(".support p").first).to_contain_text(f"of {want.support.article} says")


COPIES = 4  # articles whose tables hold the real article's 552-5.2.2 row word for word
COPY = """---
title: Shared inbox quotas {n} (synthetic)
url: https://help.example.test/hc/en-us/articles/{n}-quotas/
---

Synthetic article for the widget's tests.

## Quota errors

| Error code | What it means | What you can do |
| --- | --- | --- |
| 552-5.2.2 | {meaning} | {action} |
"""


@pytest.fixture(scope="module")
def copies_services(tmp_path_factory, embedder):
    from app.answering.services import build
    from app.codes.table import CodeTable
    from app.config import Settings

    kb = tmp_path_factory.mktemp("kb5")
    shutil.copy(ROOT / "kb" / "common-email-delivery-errors.md", kb)
    (real,) = [r for r in CodeTable.from_kb(kb).rows if r.code == "552-5.2.2"]
    for n in range(1, COPIES + 1):
        (kb / f"quotas-{n}.md").write_text(COPY.format(n=n, meaning=real.meaning, action=real.action), encoding="utf-8")
    settings = Settings().with_(kb_dir=kb, index_dir=tmp_path_factory.mktemp("index5"), collection="widget_copies")
    return build(settings, embedder=embedder, ingest_first=True)


def test_a_row_five_tables_hold_word_for_word_is_quoted_once_with_three_of_them_and_how_many_more(
        copies_services, feedback_log, page: Page):
    rows = copies_services.answerer.ask("What does 552-5.2.2 mean?").codes[0].rows
    assert len(rows) == COPIES + 1 and len({(r.meaning, r.action) for r in rows}) == 1
    bot_port, host_port = free_port(), free_port()
    with start_bot(copies_services, feedback_log, bot_port, (f"http://127.0.0.1:{host_port}",)):
        with LiveServer(host_app(bot_port), port=host_port) as host:
            page.goto(f"{host.url}/")
            open_with_keyboard(page)
            card = ask(page, "What does 552-5.2.2 mean?").locator('.card.exact[data-code="552-5.2.2"]')
            expect(card.locator(".meaning")).to_have_text([rows[0].meaning])  # once
            expect(card.locator(".action")).to_have_text([rows[0].action])
            cite = card.locator(".row-holders")
            expect(cite.locator("a")).to_have_text([f"{r.article} › {r.section}" for r in rows[:3]])
            expect(cite.locator("a").nth(2)).to_have_attribute("href", rows[2].url)
            expect(cite).to_contain_text(f"From the tables of {COPIES + 1} articles, table row 552-5.2.2:")
            expect(cite).to_contain_text(f"and {COPIES + 1 - 3} more")
