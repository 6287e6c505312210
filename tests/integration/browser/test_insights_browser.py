"""``/insights`` in a real browser (Debian's Chromium) against the real app on loopback: the real
services (the MiniLM model groups refused questions), a temporary SQLite log seeded with a few
hundred realistic messages by ``evals.insights_seed``. Logs in with the token, sees every chart and
table filled, downloads a CSV and an eval case, and takes the README's screenshots at 1366x768
(docs/insights.png, docs/insights-tables.png: refreshed only with UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from app.insights import TABLES, Period, compute
from app.storage.conversations import SqliteConversationLog
from evals.insights_seed import seed

from ...conftest import ROOT
from ...servers import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "browser-insights-token-3c9d7e21a4f6"
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LAPTOP = {"width": 1366, "height": 768}
COUNT = 300


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("insights_browser") / "feedback.sqlite3"
    log = SqliteConversationLog(path)
    seed(log, COUNT)
    yield log, path
    log.close()


@pytest.fixture(scope="module")
def server(services, seeded, feedback_log):
    from app.web.server import create_app

    log, path = seeded
    settings = services.settings.with_(insights_token=TOKEN, feedback_db=path)
    with LiveServer(create_app(services, feedback_log, settings=settings, conversations=log)) as s:
        yield s


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    page = context.new_page()
    seen = {"requests": [], "console": []}
    context.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    yield page, seen
    context.close()


def log_in(page, url: str, token: str = TOKEN):
    page.goto(f"{url}/insights")
    page.get_by_label("Insights token").fill(token)
    page.get_by_role("button", name="Log in").click()


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), animations="disabled", caret="hide")
    assert shot.stat().st_size > 10_000
    if not (DOCS / name).exists() or os.environ.get("UPDATE_SCREENSHOTS"):  # the committed copy: only when asked
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / name)


def test_a_wrong_token_is_refused_in_the_browser(server, laptop):
    page, seen = laptop
    log_in(page, server.url, "not the token")
    expect(page.get_by_role("alert")).to_contain_text("That token was not accepted")
    expect(page.locator("figure.chart")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "bouncebot_insights"]


def test_log_in_see_every_chart_and_table_download_a_csv(server, laptop, seeded, services):
    page, seen = laptop
    t0 = time.perf_counter()
    log_in(page, server.url)
    expect(page.locator("h1")).to_have_text("Bouncebot insights")
    print(f"\nlog in and first /insights page (300 messages, MiniLM grouping, 3 SVG charts): "
          f"{time.perf_counter() - t0:.2f} s")
    assert TOKEN not in page.url

    cookie = next(c for c in page.context.cookies() if c["name"] == "bouncebot_insights")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]

    charts = page.locator("figure.chart img")
    expect(charts).to_have_count(3)
    for i in range(3):
        img = charts.nth(i)
        expect(img).to_be_visible()
        assert img.evaluate("e => e.complete && e.naturalWidth > 200 && e.naturalHeight > 100")
        assert img.get_attribute("src").startswith("data:image/svg+xml;base64,")
        assert len(img.get_attribute("src")) > 5000  # bars and lines, not an empty frame
    ins = compute(seeded[0], Period.parse("30d"), services.embedder.embed_documents)  # as the page groups
    expect(page.locator(".tiles")).to_contain_text(str(ins.totals["questions"]))

    page.locator("details.days > summary").click()
    for table in TABLES:
        rows = page.locator(f'table[data-table="{table}"] tbody tr')
        expect(rows.first).to_be_visible()
        assert rows.count() == len(getattr(ins, table)) > 0, table
        expect(page.locator(f'table[data-table="{table}"] td.empty')).to_have_count(0)
    expect(page.locator("#refused_groups .note")).to_contain_text("by meaning")

    with page.expect_download() as d:
        page.locator('#codes_missing a.csv').click()
    download = d.value
    assert download.suggested_filename == "bouncebot-insights-codes_missing-30d.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert rows[0] == ["code", "count", "reason", "example"] and len(rows) == len(ins.codes_missing) + 1
    assert rows[1][0] == ins.codes_missing[0]["code"]

    with page.expect_download() as d:
        page.locator("#thumbs_down a.eval-case").first.click()
    case = json.loads(open(d.value.path(), encoding="utf-8").read())
    assert case["id"].startswith("log-") and case["question"]

    page.locator("#thumbs_down details.case summary").first.click()
    expect(page.locator("#thumbs_down details.case pre").first).to_contain_text('"id": "log-')

    foreign = [u for u in seen["requests"] if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname not in LOOPBACK]
    assert not foreign, foreign  # nothing from a CDN
    assert not [u for u in seen["requests"] if TOKEN in u]
    assert not seen["console"], seen["console"]  # no CSP violation, no failed load


def test_the_period_chooser_and_the_screenshots(server, laptop):
    page, seen = laptop
    log_in(page, server.url)
    page.get_by_role("link", name="Last 7 days").click()
    expect(page.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "page")
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.locator("figure.chart img")).to_have_count(3)
    # readable on a laptop: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    _screenshot(page, "insights.png")
    page.locator("#refused_groups").scroll_into_view_if_needed()
    page.evaluate("document.getElementById('refused_groups').scrollIntoView()")
    _screenshot(page, "insights-tables.png")
    assert not seen["console"], seen["console"]
