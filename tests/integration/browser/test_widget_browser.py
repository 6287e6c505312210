"""The help-centre widget in a real browser (Debian's Chromium) on a host page
served from a DIFFERENT origin (another port) than the bot, as on a real help
centre: the bot allows that host origin and no other.

Every assertion waits with Playwright's ``expect`` (it retries until the timeout).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from ...conftest import ROOT
from ..test_answer import SEED_ROWS
from ...servers import LiveServer, free_port
from .test_chat_browser import ACTION_550_511, MEANING_550_511, XSS, foreign_hosts

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
TITLE = "Delivery help"
ACCENT_RGB = "rgb(124, 58, 237)"  # data-accent="#7c3aed"
HOST_RED = "rgb(255, 0, 0)"

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host help centre</title>
<link rel="icon" href="data:,">
<style>
  * {{ font-family: "Courier New", monospace !important; }}
  button {{ background: {red}; color: #fff; padding: 20px; border-radius: 0; }}
  div, p, section, iframe {{ border: 5px dashed blue !important; }}
  .card, .launcher, #bb-dialog {{ display: none !important; }}
</style></head>
<body>
<h1>Host help centre</h1>
<button id="host-button" type="button">Host button</button> clicked <output id="count">0</output> times
<script>
  window.hostBefore = Object.keys(window);
  window.hostSheets = document.styleSheets.length;
  (function () {{
    var n = 0;
    document.getElementById("host-button").addEventListener("click", function () {{
      document.getElementById("count").textContent = String(++n);
    }});
  }})();
</script>
<script src="{bot}/widget.js" data-title="{title}" data-accent="#7c3aed" data-position="left"
        data-greeting="Hello from the host's widget." async></script>
</body></html>
"""


def host_app(bot_port: int):
    """A tiny help centre on its own origin: a page with the bot's script tag (/?port=N: another bot)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def page(request):
        bot = f"http://127.0.0.1:{int(request.query_params.get('port', bot_port))}"
        return HTMLResponse(HOST_PAGE.format(bot=bot, title=TITLE, red=HOST_RED))

    return Starlette(routes=[Route("/", page)])


def start_bot(services, feedback_log, port: int, allowed: tuple[str, ...], rate: str = "1000/minute") -> LiveServer:
    from app.web.server import create_app

    settings = services.settings.with_(allowed_origins=allowed, widget_rate=rate)
    return LiveServer(create_app(services, feedback_log, settings=settings), port=port)


@pytest.fixture(scope="module")
def ports():
    return {name: free_port() for name in ("bot", "limited", "host", "stranger")}


@pytest.fixture(scope="module")
def bot(services, feedback_log, ports):
    allowed = (f"http://127.0.0.1:{ports['host']}",)  # the host page's origin only: not "stranger"
    with start_bot(services, feedback_log, ports["bot"], allowed) as s:
        yield s


@pytest.fixture(scope="module")
def limited(services, feedback_log, ports):
    with start_bot(services, feedback_log, ports["limited"], (f"http://127.0.0.1:{ports['host']}",), "1/minute") as s:
        yield s


@pytest.fixture(scope="module")
def host(bot, ports):
    with LiveServer(host_app(ports["bot"]), port=ports["host"]) as s:
        yield s


@pytest.fixture(scope="module")
def stranger(bot, ports):
    """Another site, not on the bot's allowlist, with the same script tag."""
    with LiveServer(host_app(ports["bot"]), port=ports["stranger"]) as s:
        yield s


@pytest.fixture
def console(page: Page):
    log = {"messages": [], "dialogs": [], "requests": []}
    page.on("console", lambda m: log["messages"].append(m.text))
    page.context.on("request", lambda r: log["requests"].append(r.url))

    def on_dialog(dialog):
        log["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return log


def launcher(page: Page):
    return page.get_by_role("button", name=f"Open chat: {TITLE}")


def panel(page: Page):
    return page.frame_locator("bouncebot-widget iframe")


def open_with_keyboard(page: Page):
    button = launcher(page)
    expect(button).to_be_visible()
    for _ in range(8):  # Tab through the host page's own controls to the launcher
        page.keyboard.press("Tab")
        if button.evaluate("b => b.getRootNode().activeElement === b"):
            break
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=TITLE)
    expect(dialog).to_be_visible()
    return dialog


def ask(page: Page, question: str):
    """Ask in the panel; returns the new answer once it is shown."""
    frame = panel(page)
    answers = frame.locator("article.msg.bot")
    before = answers.count()
    frame.get_by_label("Your question").fill(question)
    frame.get_by_role("button", name="Send", exact=True).click()
    expect(answers).to_have_count(before + 1)
    return answers.nth(before)


def test_keyboard_opens_the_panel_a_code_gets_the_verbatim_row_and_esc_returns_focus(host, page: Page, console):
    page.goto(f"{host.url}/")
    dialog = open_with_keyboard(page)
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(page.get_by_role("button", name=f"Close chat: {TITLE}")).to_have_attribute("aria-expanded", "true")
    frame = panel(page)
    question = frame.get_by_label("Your question")
    expect(question).to_be_focused()  # focus moved into the chat
    expect(frame.get_by_role("log", name="Conversation")).to_contain_text("Hello from the host's widget.")

    page.keyboard.type("What does 550-5.1.1 mean?")
    page.keyboard.press("Enter")
    card = frame.locator('.card.exact[data-code="550-5.1.1"]')
    expect(card).to_be_visible()
    expect(card.locator(".meaning")).to_have_text(MEANING_550_511)  # the table's words, verbatim
    expect(card.locator(".action")).to_have_text(ACTION_550_511)
    expect(card.locator(".badge.sev")).to_have_text("permanent failure")  # the shared label (CSS capitalises it)
    expect(card.locator(".badge.intable")).to_have_text("in the article's table")  # labels.in_table
    expect(card).to_contain_text("What it means")
    expect(card).to_contain_text("What you can do")
    source = frame.get_by_role("link", name="Common Email Delivery Errors › Common delivery errors")
    expect(source).to_have_attribute("href", re.compile(r"^https://.*#common-delivery-errors$"))
    expect(source).to_have_attribute("target", "_blank")

    page.keyboard.press("Escape")  # focus is inside the iframe: the panel asks the host page to close
    expect(dialog).to_be_hidden()
    expect(launcher(page)).to_be_focused()
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")  # reopened: the same conversation
    expect(dialog).to_be_visible()
    expect(frame.locator('.card.exact[data-code="550-5.1.1"] .meaning')).to_have_text(MEANING_550_511)
    expect(question).to_be_focused()
    page.get_by_role("button", name="Close chat", exact=True).click()  # the dialog's own close button
    expect(dialog).to_be_hidden()
    expect(launcher(page)).to_be_focused()
    assert foreign_hosts(console["requests"]) == []  # no CDN, no web fonts
    assert not [m for m in console["messages"] if "Content Security Policy" in m]


def test_tab_stays_inside_the_open_dialog(host, page: Page):
    page.goto(f"{host.url}/")
    open_with_keyboard(page)
    frame = panel(page)
    expect(frame.get_by_label("Your question")).to_be_focused()
    page.keyboard.press("Tab")
    expect(frame.get_by_role("button", name="Send", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(frame.get_by_role("button", name="New chat")).to_be_focused()
    page.keyboard.press("Tab")  # past the chat's last control: wraps to the dialog's close button
    close = page.get_by_role("button", name="Close chat", exact=True)
    expect(close).to_be_focused()
    page.keyboard.press("Shift+Tab")  # before the dialog's first control: wraps to the chat's last one
    expect(frame.get_by_role("button", name="New chat")).to_be_focused()


def test_a_code_the_table_lacks_is_clearly_marked(host, page: Page):
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, "What does 550 5.7.26 mean?")
    card = answer.locator('.card.none[data-code="550-5.7.26"]')
    expect(card.locator(".badge.notintable")).to_have_text("not in the article's table")
    expect(card.locator(".warn")).to_contain_text("the article does not say what it means")
    expect(card.locator(".general-label")).to_have_text(re.compile(r"^General guidance, not from the article \(from "))
    expect(card.locator(".general-label + .general-meaning")).not_to_be_empty()
    related = card.locator(".related")  # the same line as the chat's and the CLI's
    expect(related).to_have_text(re.compile(
        r"^Closest in the article's table \(different codes, not an exact match\): 550-5\.7\.1 \("))
    expect(related.get_by_role("link", name="550-5.7.1")).to_have_attribute(
        "href", re.compile(r"^https://.*#common-delivery-errors$"))
    expect(answer.locator(".card.exact")).to_have_count(0)
    expect(answer.locator(".dont-know")).to_have_count(0)  # the code was answered, the article just lacks it
    expect(answer.locator(".support")).to_contain_text("Need more help?")  # answered: false, with its support


def test_a_free_form_question_quotes_the_cited_section(host, page: Page):
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, "How do I get an address off the bounce list?")
    expect(answer.locator("blockquote.passage").first).to_contain_text(
        "If an email address repeatedly fails with a permanent delivery error")
    expect(answer.get_by_role("link", name="Common Email Delivery Errors › Email address is on a bounce list")
           .first).to_be_visible()


def test_a_table_row_found_for_a_free_form_question_is_a_card(host, page: Page):
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, "her mailbox is full, what can I do?")  # no code in it: the search finds the 552-5.2.2 row
    card = answer.locator('.card.passage-row[data-code="552-5.2.2"]')  # from the source's kind and code
    expect(card).to_be_visible()
    expect(card.locator(".badge.intable")).to_have_text("from the article's table")
    expect(card.locator(".meaning")).to_have_text(SEED_ROWS["552-5.2.2"][0])  # the row's own words (source.row)
    expect(card.locator(".action")).to_have_text(SEED_ROWS["552-5.2.2"][1])
    expect(card).to_contain_text("What it means")
    expect(answer.locator("blockquote.passage")).to_have_count(0)  # not shown as a text passage
    expect(answer.locator(".intro")).to_have_text("From the article Common Email Delivery Errors:")
    expect(answer.get_by_role("link", name="Common Email Delivery Errors › Common delivery errors")).to_be_visible()


def test_a_question_the_article_cannot_answer_gets_i_dont_know_and_its_support(host, page: Page):
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, "How much does it cost?")
    expect(answer.locator(".dont-know")).to_have_text(
        "I don't know: the help article Common Email Delivery Errors does not answer this, and I only answer from it.")
    expect(answer.locator(".dont-know em")).to_have_text("Common Email Delivery Errors")
    support = answer.locator(".support")
    expect(support).to_contain_text("For anything the article does not cover, its section Need more help? says:")
    expect(support.get_by_role("link", name="Need more help?")).to_have_attribute(
        "href", re.compile(r"^https://.*#need-more-help$"))
    expect(support.locator("blockquote")).to_contain_text("The error code or failure message")
    expect(answer.locator(".card")).to_have_count(0)


def test_the_panel_renders_the_contracts_fields_alone(host, page: Page, console):
    """Answers made up to the contract (app/answering/contract.py), served in place of the bot's:
    what a source is comes from its kind and code, never from its text."""
    from app.answering.contract import Answer

    row_text = f"552-5.2.2: {' '.join(SEED_ROWS['552-5.2.2'])}"
    url = "https://help.example.com/a#common-delivery-errors"
    where = {"article": "Common Email Delivery Errors", "section": "Common delivery errors", "url": url}
    row_550 = {"code": "550-5.1.1", "meaning": MEANING_550_511, "action": ACTION_550_511,
               "section": where["section"], "url": url}
    answers = [Answer.model_validate({
        "question": "q1", "answer": "**Markdown the panel must not read** 550-9.9.9", "answered": True,
        "codes": [
            {"text": "5.1.1", "code": "5.1.1", "match": "exact", "severity": "permanent", "row": row_550,
             "explanation": None, "related": [], "reason": "user_unknown"},
            {"text": "599", "code": "599", "match": "none", "row": None, "severity": "unknown",
             "explanation": None, "reason": None,
             "related": [{**row_550, "code": "550", "shares": "reply code", "url": "javascript:alert(3)"}]}],
        "sources": [
            {"kind": "row", "code": "550-5.1.1", "row": row_550, **where, "text": "any words at all", "score": 1.0},
            {"kind": "section", **where, "section": "Looks like a row", "text": row_text,
             "score": 0.5},  # a row's text, but a section: quoted as text
            {"kind": "row", "code": "421-4.7.0", **where, "text": "row words", "score": 0.4,
             "row": {**row_550, "code": "421-4.7.0", "meaning": f"{XSS} busy", "action": "Wait."}}],
        "notices": [{"kind": "codes_capped", "text": "Only the first 2 of the 300 codes were looked up."}],
    }), Answer.model_validate({
        "question": "q2", "answer": "nothing to read here", "answered": False,
        "support": {"article": "Another Article", "section": "Get help", "url": "javascript:alert(1)",
                    "text": f"Write to [us](mailto:help@example.com) or [here](javascript:alert(2)). {XSS}"},
        "other_article": "Single Sign-On",
    })]
    bodies = [a.to_dict() for a in answers]
    page.context.route("**/widget/api/ask", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(bodies.pop(0))))
    page.goto(f"{host.url}/")
    launcher(page).click()

    first = ask(page, "anything")
    expect(first).not_to_contain_text("Markdown the panel must not read")
    exact = first.locator('.card.exact[data-code="5.1.1"]')
    expect(exact.locator(".meaning")).to_have_text(MEANING_550_511)
    expect(exact.locator(".via")).to_have_text("table row 550-5.1.1")  # labels.table_row
    none = first.locator('.card.none[data-code="599"]')
    expect(none.locator(".no-general")).to_have_text("No general meaning is known for it either.")
    expect(none.locator(".badge.sev")).to_have_text("unknown severity")
    expect(none.locator(".related")).to_have_text(
        "Closest in the article's table (different codes, not an exact match): 550 (reply code).")
    expect(none.locator(".related a")).to_have_count(0)  # a javascript: link is left as text
    expect(first.locator(".notice")).to_have_text("Only the first 2 of the 300 codes were looked up.")
    expect(first.locator(".notice")).to_have_attribute("data-kind", "codes_capped")
    expect(first.locator(".intro")).to_have_text("What the article says about failed replies in general:")
    expect(first.locator("blockquote.passage")).to_have_text(row_text)  # matched by nothing: a passage
    expect(first.locator('.card[data-code="552-5.2.2"]')).to_have_count(0)
    row = first.locator('.card.passage-row[data-code="421-4.7.0"]')
    expect(row.locator(".meaning")).to_have_text(f"{XSS} busy")  # the source's row, as text
    expect(row.locator(".action")).to_have_text("Wait.")
    expect(first.locator(".card")).to_have_count(3)
    expect(first.locator("p.cite").first).to_have_text("Source: Common Email Delivery Errors › Common delivery errors")
    expect(first.locator(".dont-know, .support")).to_have_count(0)

    second = ask(page, "something else")
    expect(second.locator(".dont-know")).to_contain_text(
        "I don't know: the help article Another Article does not answer this")
    expect(second.locator(".other-article")).to_have_text(
        "It looks like a question for the help centre's article Single Sign-On.")
    support = second.locator(".support")
    expect(support.locator("p").first).to_have_text("For anything the article does not cover, its section Get help says:")
    expect(support.get_by_role("link")).to_have_count(1)  # the javascript: links are left as text
    expect(support.get_by_role("link", name="us")).to_have_attribute("href", "mailto:help@example.com")
    expect(support).to_contain_text(XSS)
    expect(panel(page).locator("img")).to_have_count(0)
    page.wait_for_timeout(300)
    assert console["dialogs"] == []


def test_html_in_a_question_is_shown_as_text_and_never_run(host, page: Page, console):
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, f"{XSS} what is 550-5.1.1")
    expect(answer.locator(".meaning")).to_have_text(MEANING_550_511)
    frame = panel(page)
    expect(frame.locator(".msg.user .q").last).to_have_text(f"{XSS} what is 550-5.1.1")
    expect(frame.locator("img")).to_have_count(0)
    page.wait_for_timeout(500)  # time for a (wrongly) inserted <img> to fire onerror
    assert console["dialogs"] == []
    assert not [u for u in console["requests"] if urlsplit(u).path.endswith("/x")]


def test_the_host_pages_own_button_styles_and_globals_are_untouched(host, page: Page):
    page.goto(f"{host.url}/")
    button = page.locator("#host-button")
    expect(launcher(page)).to_be_visible()
    # The host's rules (`button {background: red}`, `.launcher {display: none !important}`) stop at the shadow root.
    expect(launcher(page)).to_have_css("background-color", ACCENT_RGB)
    expect(button).to_have_css("background-color", HOST_RED)
    button.click()
    button.click()
    expect(page.locator("#count")).to_have_text("2")
    launcher(page).click()
    dialog = page.get_by_role("dialog", name=TITLE)
    expect(dialog).to_be_visible()
    expect(dialog).not_to_have_css("font-family", re.compile("Courier"))
    expect(panel(page).get_by_label("Your question")).to_be_visible()
    expect(dialog.locator("iframe")).to_have_css("border-top-style", "none")
    page.get_by_role("button", name="Close chat", exact=True).click()
    button.click()  # still works with the widget open and closed
    expect(page.locator("#count")).to_have_text("3")
    added = page.evaluate("() => Object.keys(window).filter(k => !window.hostBefore.includes(k) "
                          "&& !['hostBefore', 'hostSheets'].includes(k))")
    assert added == ["Bouncebot"]
    assert page.evaluate("() => document.styleSheets.length === window.hostSheets")  # no CSS added to the page
    assert page.evaluate("() => [...document.body.children].filter(e => e.tagName.includes('-'))"
                         ".map(e => e.tagName)") == ["BOUNCEBOT-WIDGET"]
    assert page.evaluate("() => typeof Bouncebot.open === 'function' && Object.isFrozen(Bouncebot)")


def test_a_site_not_on_the_allowlist_cannot_frame_the_panel(bot, stranger, host, page: Page, console):
    csp = httpx.get(f"{bot.url}/widget", timeout=30).headers["content-security-policy"]
    ancestors = next(d.split()[1:] for d in csp.split(";") if d.split()[0] == "frame-ancestors")
    assert ancestors == ["'self'", host.url] and stranger.url not in csp

    page.goto(f"{stranger.url}/")  # widget.js itself loads anywhere; the panel does not
    launcher(page).click()
    dialog = page.get_by_role("dialog", name=TITLE)
    expect(dialog.get_by_role("alert")).to_contain_text("can't be reached from this page")
    expect(panel(page).locator("#question")).to_have_count(0)  # the frame holds no panel
    frame = page.locator("bouncebot-widget iframe").element_handle().content_frame()
    assert frame is not None and not frame.url.startswith(bot.url)
    assert any("frame-ancestors" in m for m in console["messages"])  # refused by the browser for its CSP
    # CORS follows the same allowlist: the stranger's page cannot read the API, the host's page can.
    fetch = ("url => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, "
             "body: JSON.stringify({question: '552-5.2.2'})}).then(r => r.status, e => 'blocked: ' + e.name)")
    assert page.evaluate(fetch, f"{bot.url}/api/ask").startswith("blocked")
    page.goto(f"{host.url}/")
    assert page.evaluate(fetch, f"{bot.url}/api/ask") == 200


def test_rate_limited_is_shown(limited, host, page: Page, ports):
    page.goto(f"{host.url}/?port={ports['limited']}")  # this bot answers 1 widget question a minute per client
    launcher(page).click()
    ask(page, "What does 552-5.2.2 mean?")
    frame = panel(page)
    frame.get_by_label("Your question").fill("What does 550-5.1.1 mean?")
    frame.get_by_role("button", name="Send", exact=True).click()
    alert = frame.get_by_role("alert")
    expect(alert).to_contain_text("You've asked a lot of questions in a short time.")
    expect(alert).to_contain_text(re.compile(r"Please wait \d+ seconds?, then try again"))
    expect(frame.get_by_label("Your question")).to_have_value("What does 550-5.1.1 mean?")  # kept to retry
    expect(frame.locator("article.msg.bot")).to_have_count(1)


def test_an_unreachable_server_is_shown(host, page: Page, services, feedback_log):
    port = free_port()
    later = page.context.new_page()
    with start_bot(services, feedback_log, port, (host.url,)):
        page.goto(f"{host.url}/?port={port}")
        launcher(page).click()
        expect(panel(page).get_by_label("Your question")).to_be_visible()
        later.goto(f"{host.url}/?port={port}")  # loaded while the bot is up, opened after it is gone
        expect(launcher(later)).to_be_visible()
    # the bot has stopped: an open panel says so when asked ...
    frame = panel(page)
    frame.get_by_label("Your question").fill("What does 550-5.1.1 mean?")
    frame.get_by_role("button", name="Send", exact=True).click()
    expect(frame.get_by_role("alert")).to_contain_text("Can't reach the help chat right now")
    expect(frame.get_by_label("Your question")).to_have_value("What does 550-5.1.1 mean?")
    # ... and a panel opened now shows an error instead of a broken frame
    launcher(later).click()
    dialog = later.get_by_role("dialog", name=TITLE)
    expect(dialog.get_by_role("alert")).to_contain_text("can't be reached from this page")
    expect(dialog.get_by_role("button", name="Try again")).to_be_visible()
    later.close()


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), animations="disabled", caret="hide")
    assert shot.stat().st_size > 10_000
    # The README's copies are committed: refreshed only when asked, so `make test` leaves git clean.
    if not (DOCS / name).exists() or os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / name)


@pytest.mark.parametrize("viewport,name", [({"width": 390, "height": 844}, "widget-mobile.png"),
                                           ({"width": 1280, "height": 900}, "widget-desktop.png")])
def test_demo_page_with_the_widget_open(bot, browser, viewport, name):
    mobile = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile)
    try:
        page = context.new_page()
        page.goto(f"{bot.url}/demo")
        expect(page.get_by_role("heading", level=1)).to_have_text("Common Email Delivery Errors")
        page.get_by_role("button", name="Open chat: Email delivery help").click()
        dialog = page.get_by_role("dialog", name="Email delivery help")
        expect(dialog).to_be_visible()
        answer = ask(page, "What does 550-5.1.1 mean?")
        expect(answer.locator(".meaning")).to_have_text(MEANING_550_511)
        box = dialog.bounding_box()
        if mobile:  # full screen on a phone
            assert box == {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"]}
        else:
            assert box["width"] == 380 and box["x"] + box["width"] == viewport["width"] - 20
        page.wait_for_timeout(400)  # let the answer's smooth scroll settle before the picture
        shoot(page, name)
    finally:
        context.close()


# ---------------------------------------------------------------------------- the conversation (issue 11)

WHERE = {"article": "Common Email Delivery Errors", "section": "Common delivery errors",
         "url": "https://help.example.com/a#common-delivery-errors"}
ROW_550 = {"code": "550-5.1.1", "meaning": MEANING_550_511, "action": ACTION_550_511,
           "section": WHERE["section"], "url": WHERE["url"]}


def made_up(question: str, markdown: str, **fields) -> dict:
    """An answer made up to the contract (validated by it), as the server would send it."""
    from app.answering.contract import Answer

    return Answer.model_validate({"question": question, "answer": markdown, "answered": True, **fields}).to_dict()


def serve_answers(page: Page, make) -> list[dict]:
    """Answer every POST /widget/api/ask with ``make(n, body)``; returns the request bodies, in order."""
    bodies: list[dict] = []

    def handle(route):
        body = json.loads(route.request.post_data or "{}")
        bodies.append(body)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(make(len(bodies), body)))

    page.context.route("**/widget/api/ask", handle)
    return bodies


def test_the_panel_sends_the_conversation_it_shows(host, page: Page):
    bodies = serve_answers(page, lambda n, body: made_up(body["question"], f"**Answer {n}** to {body['question']}"))
    page.goto(f"{host.url}/")
    launcher(page).click()
    for n in range(1, 4):
        ask(page, f"question {n}")
    assert [b["question"] for b in bodies] == ["question 1", "question 2", "question 3"]
    assert bodies[0]["history"] == []  # nothing shown before the first question
    assert bodies[2]["history"] == [  # oldest first; an answer as its Markdown text
        {"role": "user", "content": "question 1"}, {"role": "assistant", "content": "**Answer 1** to question 1"},
        {"role": "user", "content": "question 2"}, {"role": "assistant", "content": "**Answer 2** to question 2"}]

    page.reload()  # the conversation kept for the session is the one sent
    launcher(page).click()
    expect(panel(page).locator("article.msg.bot")).to_have_count(3)
    ask(page, "question 4")
    assert [t["content"] for t in bodies[3]["history"] if t["role"] == "user"] == [
        "question 1", "question 2", "question 3"]

    for n in range(5, 13):  # 12 questions in all: only the newest 20 turns go with the 12th
        ask(page, f"question {n}")
    history = bodies[11]["history"]
    assert len(history) == 20 and [t["role"] for t in history] == ["user", "assistant"] * 10
    assert history[0] == {"role": "user", "content": "question 2"}
    assert history[-1] == {"role": "assistant", "content": "**Answer 11** to question 11"}

    panel(page).get_by_role("button", name="New chat").click()  # a new chat sends no history
    ask(page, "question 13")
    assert bodies[12]["history"] == []


def test_drafts_hand_offs_carried_codes_and_small_talk_come_from_the_contract(host, page: Page, console, bot):
    from app._data import data_file

    wording = data_file("app.answering", "wording.yaml")
    draft_text = f"Hi Ana, our email to you bounced: your mailbox is full. {XSS}\nCould you clear some space?"
    request = "Hello SparrowDesk support,\n\nThe conversation link: https://x.example/c/1\nThe time the message was sent: [add]"
    fields = [{"name": "The conversation link", "value": "https://x.example/c/1"},
              {"name": "The customer email address", "value": "ana@example.com"},
              {"name": "The error code or failure message", "value": "552-5.2.2"},
              {"name": "The time the message was sent", "value": None}]
    carried = {"text": "5.1.1", "code": "5.1.1", "match": "exact", "severity": "permanent", "row": ROW_550,
               "explanation": None, "related": [], "reason": "user_unknown", "from_history": True}
    answers = [
        made_up("hello", "Hi! I'm **Bouncebot**.", intent="small_talk"),
        made_up("write her a text", "**Markdown the panel must not read**", intent="draft", codes=[carried],
                draft={"label": "Draft for the customer — not the article's words", "channel": "message",
                       "text": draft_text, "reason": "mailbox_full", "codes": ["552-5.2.2"]}),
        made_up("escalate it", "**Markdown**", intent="handoff",
                handoff={"to": "help@example.com", "subject": "Email delivery failure: 552-5.2.2",
                         "mailto": "mailto:help@example.com?subject=Email%20delivery%20failure",
                         "fields": fields, "text": request}),
        made_up("escalate it again", "**Markdown**", intent="handoff",
                handoff={"to": None, "mailto": None, "subject": "Email delivery failure", "fields": fields,
                         "text": request}),
    ]
    serve_answers(page, lambda n, body: answers[n - 1])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=bot.url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=host.url)
    page.goto(f"{host.url}/")
    launcher(page).click()

    talk = ask(page, "hello")
    expect(talk).to_have_class(re.compile(r"\bsmall-talk\b"))  # a plain bubble
    expect(talk).to_have_text("Hi! I'm Bouncebot.")
    expect(talk.locator(".card, .cite, .intro, .draft, .handoff")).to_have_count(0)

    drafted = ask(page, "write her a text")
    expect(drafted).not_to_contain_text("Markdown the panel must not read")
    box = drafted.locator("section.draft")
    expect(box.locator(".draft-label")).to_have_text("Draft for the customer — not the article's words")  # its label
    expect(box.locator(".draft-channel")).to_have_text(wording["draft"]["channel_message"])
    expect(box.locator(".draft-text")).to_have_text(draft_text)  # as text: the <img> is not an element
    card = drafted.locator('.card.exact.carried[data-code="5.1.1"]')  # a code from the earlier conversation
    expect(card.locator(".badge.from-history")).to_have_text("from earlier in the conversation")
    expect(card.locator(".meaning")).to_have_text(MEANING_550_511)
    box.get_by_role("button", name=re.compile(r"^Copy: Draft for the customer")).click()
    expect(box.locator(".copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == draft_text

    handed = ask(page, "escalate it")
    box = handed.locator("section.handoff")
    expect(box.locator(".handoff-label")).to_have_text(wording["handoff"]["request"])
    expect(box.locator(".handoff-subject")).to_have_text("Email delivery failure: 552-5.2.2")
    expect(box.locator("li.field")).to_have_count(4)
    expect(box.locator("li.field:not(.missing)").first).to_have_text("The conversation link: https://x.example/c/1")
    missing = box.locator("li.field.missing")  # marked for the visitor to add
    expect(missing).to_have_count(1)
    expect(missing).to_have_text("The time the message was sent: [add: The time the message was sent]")
    mail = box.get_by_role("link", name="Email this request to help@example.com")
    expect(mail).to_have_attribute("href", "mailto:help@example.com?subject=Email%20delivery%20failure")
    box.get_by_role("button", name=re.compile(r"^Copy: A support request")).click()
    expect(box.locator(".copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == request
    box.locator(".handoff-text summary").click()
    expect(box.locator(".handoff-text p")).to_have_text(request)

    unaddressed = ask(page, "escalate it again").locator("section.handoff")
    expect(unaddressed.locator("a")).to_have_count(0)  # no mailto: link without an address
    expect(unaddressed.locator(".handoff-no-address")).to_contain_text("did not survive the help centre's export")
    expect(unaddressed.get_by_role("button", name=re.compile(r"^Copy"))).to_be_visible()
    expect(panel(page).locator("img")).to_have_count(0)
    page.wait_for_timeout(300)
    assert console["dialogs"] == []
    assert not [m for m in console["messages"] if "Content Security Policy" in m]


def test_a_focused_quote_keeps_the_whole_passage_one_click_away(host, page: Page):
    """A source with ``focused`` (what the answer quotes) shows it first, the whole passage under
    "Show the whole passage". (A raw answer: the contract gets the field when the answerer is wired.)"""
    whole = ("If you see a message failed error inside the Inbox, first try sending the message again.\n\n"
             "If the error continues:\n\n1. Check whether the contact email address is correct.\n"
             "2. Confirm that the conversation is still active.\n\nIf the issue still isn’t resolved, "
             "contact SparrowDesk support.")
    focused = whole.rsplit("\n\n", 1)[0]
    body = {"question": "q", "answer": "", "answered": True, "codes": [], "recipients": [], "notices": [],
            "sources": [{"kind": "section", **WHERE, "section": "Troubleshooting message delivery failures",
                         "text": whole, "focused": focused, "score": 0.8},
                        {"kind": "section", **WHERE, "section": "Need more help?", "text": "Plain passage.",
                         "score": 0.7}]}
    serve_answers(page, lambda n, b: body)
    page.goto(f"{host.url}/")
    launcher(page).click()
    answer = ask(page, "a reply I sent didn't go through, what are my options?")
    quote = answer.locator("blockquote.passage.focused")
    expect(quote.locator(":scope > ol > li")).to_have_count(2)  # the steps
    expect(quote.locator(":scope > p")).not_to_contain_text(["If the issue still"])
    more = quote.locator("details.whole")
    expect(more.locator("summary")).to_have_text("Show the whole passage")
    expect(more.locator("p").last).not_to_be_visible()
    more.locator("summary").click()
    expect(more.locator("p").last).to_have_text("If the issue still isn’t resolved, contact SparrowDesk support.")
    expect(answer.locator("blockquote.passage:not(.focused)")).to_have_text("Plain passage.")


def test_a_follow_up_in_the_panel_is_read_against_the_conversation(host, page: Page):
    """End to end with the real bot: the second message only makes sense with the first one."""
    page.goto(f"{host.url}/")
    launcher(page).click()
    ask(page, "What does 552-5.2.2 mean?")
    drafted = ask(page, "Write a text asking the customer for a different address")
    box = drafted.locator("section.draft")
    expect(box.locator(".draft-text")).not_to_be_empty()
    expect(box.get_by_role("button", name=re.compile(r"^Copy: "))).to_be_visible()
    expect(drafted.locator('.card.carried[data-code="552-5.2.2"] .badge.from-history')).to_be_visible()
    handed = ask(page, "escalate this to sparrowdesk support")
    expect(handed.locator("section.handoff li.field").first).to_be_visible()
    expect(handed.locator("section.handoff li.field.missing").first).to_be_visible()  # the link, the time...
