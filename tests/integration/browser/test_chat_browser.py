"""The chat in a real browser (Debian's Chromium) against the real server:
the real model, a real Chroma index and a temporary SQLite feedback store.

Every assertion waits with Playwright's ``expect`` (it retries until the
timeout) instead of sleeping: answers are streamed in block by block.
"""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from ...conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "chat.png"
DOCS_CONVERSATION = ROOT / "docs" / "chat-conversation.png"

MEANING_550_511 = ("The email address is invalid or no longer exists. "
                   "It may also happen if there is a typo in the customer’s email address.")
ACTION_550_511 = "Confirm the customer’s email address and update the contact before sending again."
BOUNCE_LIST_PASSAGE = ("If an email address repeatedly fails with a permanent delivery error, "
                       "it may be added to a bounce or suppression list.")
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def seen(page: Page):
    """Every request, websocket and dialog of the page, registered before it loads."""
    log = {"requests": [], "websockets": [], "dialogs": []}
    page.context.on("request", lambda r: log["requests"].append(r.url))
    page.on("websocket", lambda ws: log["websockets"].append(ws.url))

    def on_dialog(dialog):
        log["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return log


@pytest.fixture
def chat(server, page: Page, seen):
    page.goto(f"{server.url}/")
    expect(page.locator("#question textarea")).to_be_editable()
    return page


def ask(page: Page, question: str):
    """Type a question, click Ask; returns the new bot bubble once it has started."""
    bots = page.get_by_test_id("bot")
    before = bots.count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    expect(bots).to_have_count(before + 1)
    expect(page.locator("#question textarea")).to_have_value("")  # taken: cleared with the first streamed block
    return bots.nth(before)


def foreign_hosts(urls: list[str]) -> list[str]:
    return [u for u in urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname not in LOOPBACK]


def test_code_question_shows_the_tables_exact_words(chat):
    bot = ask(chat, "What does 550-5.1.1 mean?")
    card = chat.locator('#cards .bb-card.bb-exact[data-code="550-5.1.1"]')
    expect(card).to_be_visible()
    expect(card.locator(".bb-meaning")).to_have_text(MEANING_550_511)
    expect(card.locator(".bb-action")).to_have_text(ACTION_550_511)
    expect(chat.locator("#cards .bb-card.bb-none")).to_have_count(0)
    expect(bot).to_contain_text(MEANING_550_511)
    expect(bot).to_contain_text(ACTION_550_511)
    expect(chat.get_by_test_id("user")).to_have_text("What does 550-5.1.1 mean?")


def test_free_form_question_cites_the_section_and_its_passage(chat):
    bot = ask(chat, "How do I get an address off the bounce list?")
    expect(bot).to_contain_text(BOUNCE_LIST_PASSAGE)
    from app.answering.render import LABELS

    expect(chat.locator("#cards")).to_contain_text(LABELS["no_codes"])  # the label every surface shares
    source = chat.locator("#sources details.bb-source").filter(has_text="Email address is on a bounce list").first
    expect(source).to_be_visible()
    passage = source.locator("blockquote")
    expect(passage).to_be_hidden()  # collapsed until opened
    source.locator(".bb-score").click()  # the summary, not its link (that opens the article)
    expect(source).to_have_attribute("open", "")
    expect(passage).to_be_visible()
    expect(passage).to_contain_text(BOUNCE_LIST_PASSAGE)
    assert len(chat.context.pages) == 1  # opening the passage did not follow the link


def test_pasted_html_is_shown_as_text_and_never_run(chat, seen):
    question = f"{XSS} what is 550-5.1.1"
    bot = ask(chat, question)
    expect(bot).to_contain_text(MEANING_550_511)
    user = chat.get_by_test_id("user")
    expect(user).to_have_text(question)  # the tag itself, as text (not escaped twice, not dropped)
    for where in (user, bot, chat.locator("#cards"), chat.locator("#sources")):
        expect(where.locator("img")).to_have_count(0)
    chat.wait_for_timeout(500)  # give a (wrongly) inserted <img> time to fail and fire onerror
    assert seen["dialogs"] == []
    assert not [u for u in seen["requests"] if urlsplit(u).path.endswith("/x")]


# Pastes that got markup out of the old user bubble (finding 5): a four- or five-backtick
# line closed its fence; on one line Markdown was not escaped at all.
HOSTILE_PASTES = [
    "````\n</code></pre><img src=http://evil.example/fence.png><form action=http://evil.example/form>"
    "<button>go</button></form><a href=http://evil.example/a>click</a>",
    "`````\n<img src=x onerror=alert(1)>\n````\n<img src=http://evil.example/five.png>",
    "![p](http://evil.example/one.png) [link](http://evil.example/l) <http://evil.example/auto> "
    "http://evil.example/bare www.evil.example pat@evil.example [j](javascript:alert(1)) &lt;b&gt;",
]


def test_pasted_markdown_and_fences_stay_text_and_load_nothing(chat, seen):
    # An evil.example request would fail on DNS anyway; abort it at once (it is still recorded).
    chat.route(re.compile(r"^https?://([^/]*\.)?evil\.example([:/]|$)"), lambda route: route.abort())
    users = chat.get_by_test_id("user")
    for i, paste in enumerate(HOSTILE_PASTES):
        ask(chat, paste)
        user = users.nth(i)
        if "\n" in paste:
            expect(user.locator("pre code")).to_have_text(paste)  # verbatim, in one block
        else:
            expect(user).to_have_text(paste)
        for tag in ("img", "form", "a", "input", "button:not(.copy_code_button)"):
            expect(user.locator(tag)).to_have_count(0)
    for where in ("img[src*='evil']", "form[action*='evil']", "a[href*='evil']", "a[href^='javascript']"):
        expect(chat.locator(where)).to_have_count(0)  # nowhere on the page: bubbles, answers, cards
    chat.wait_for_timeout(500)  # time for a (wrongly) inserted <img> to load or fire onerror
    assert [u for u in seen["requests"] if "evil.example" in u] == []
    assert seen["dialogs"] == []


def test_thumbs_down_with_a_comment_is_stored(chat, feedback_log):
    before = len(feedback_log.all("down"))
    bot = ask(chat, "my reply bounced with 552-5.2.2, what now?")
    expect(bot).to_contain_text("The recipient’s mailbox is full and cannot receive new messages.")
    chat.locator("#comment textarea").fill("should say how long to wait")
    # Gradio renders the feedback options as icon buttons labelled aria-label="Dislike" / "Like" under the answer.
    chat.locator("#chat").get_by_role("button", name="Dislike", exact=True).last.click()
    expect(chat.locator("#feedback-status")).to_contain_text("Thanks: saved as a case to review.")
    saved = feedback_log.all("down")
    assert len(saved) == before + 1
    row = saved[-1]
    assert (row.rating, row.question, row.comment) == ("down", "my reply bounced with 552-5.2.2, what now?",
                                                       "should say how long to wait")
    assert row.answered is True and row.codes[0]["row"]["code"] == "552-5.2.2"
    assert "The recipient’s mailbox is full" in row.answer


def test_every_request_stays_on_loopback(chat, seen):
    ask(chat, "What does 550-5.1.1 mean?")
    ask(chat, "How do I get an address off the bounce list?")
    expect(chat.locator("#sources details.bb-source").first).to_be_visible()
    assert len(seen["requests"]) > 10  # the page, its assets, the queue
    assert any("/gradio_api/" in u for u in seen["requests"])
    assert foreign_hosts(seen["requests"] + seen["websockets"]) == []


def test_screenshot_of_a_code_answer(chat):
    bot = ask(chat, "What does 550-5.1.1 mean?")
    expect(bot).to_contain_text(ACTION_550_511)
    expect(chat.locator("#cards .bb-card.bb-exact .bb-meaning")).to_have_text(MEANING_550_511)
    chat.locator("#sources details.bb-source").first.locator(".bb-score").click()  # show a quoted passage
    _screenshot(chat, "chat.png", DOCS_SCREENSHOT)


def _screenshot(page: Page, name: str, docs_copy) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    page.screenshot(path=str(shot), full_page=True, animations="disabled", caret="hide")
    assert shot.stat().st_size > 10_000
    # The README's copy is committed: refresh it only when asked, so `make test` leaves git clean.
    if not docs_copy.exists() or os.environ.get("UPDATE_SCREENSHOTS"):
        docs_copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, docs_copy)


def _row(code: str):
    """The table's row for ``code``, read from the article itself (kb/)."""
    from app.knowledge.articles import load_articles

    rows = [r for a in load_articles(ROOT / "kb") for r in a.rows if r.code == code]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_three_turn_conversation_code_follow_up_draft(chat, seen, answerer):
    """Issue 11: the chat holds a conversation: a code, a follow-up about it, a draft to copy."""
    from app.answering.render import WORDING
    from app.web.chat import FROM_HISTORY, ChatUI

    chat.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=chat.url.rstrip("/"))
    row = _row("552-5.2.2")
    card = chat.locator('#cards .bb-card.bb-exact[data-code="552-5.2.2"]')

    # 1. The code: the row verbatim in the answer and on its card, not marked as carried.
    first = ask(chat, "What does 552-5.2.2 mean?")
    expect(first).to_contain_text(row.meaning)
    expect(first).to_contain_text(row.action)
    expect(card).to_have_count(1)
    expect(card.locator(".bb-meaning")).to_have_text(row.meaning)
    expect(card.locator(".bb-action")).to_have_text(row.action)
    expect(card.locator(".bb-from-history")).to_have_count(0)

    # 2. A follow-up without a code: about 552-5.2.2 again, carried from earlier in the conversation.
    second = ask(chat, "ok so what now?")
    expect(second).to_contain_text(WORDING["from_history"].format(codes="552-5.2.2"))
    expect(second).to_contain_text(row.meaning)
    expect(second).to_contain_text(row.action)
    carried = chat.locator('#cards .bb-card.bb-exact.bb-carried[data-code="552-5.2.2"]')
    expect(carried).to_have_count(1)
    expect(carried.locator(".bb-from-history")).to_have_text(FROM_HISTORY)
    expect(carried.locator(".bb-meaning")).to_have_text(row.meaning)
    expect(carried.locator(".bb-action")).to_have_text(row.action)

    # 3. A draft for the customer: labelled as not the article's words, in a block with a copy button.
    third = ask(chat, "can you write something I can text the customer about this?")
    expect(third).to_contain_text(WORDING["draft"]["label"])
    expect(third).to_contain_text(row.meaning)  # the row it relies on, verbatim
    # Gradio renders a fenced block as div.code_wrap: its copy button, then <pre><code>.
    block = third.locator(".code_wrap").filter(has=chat.locator("pre code")).first
    expect(block).to_be_visible()
    # The same conversation answered in-process gives the draft the chat must have shown.
    ui, history, answers = ChatUI(answerer), [], {}
    for question in ("What does 552-5.2.2 mean?", "ok so what now?",
                     "can you write something I can text the customer about this?"):
        *_, (history, _, _, _, answers) = ui.respond(question, history, answers)
    draft = answers["5"]["draft"]["text"]
    assert answers["5"]["intent"] == "draft" and draft
    expect(block.locator("pre code")).to_have_text(draft)
    copy = block.locator("button.copy_code_button")
    expect(copy).to_have_count(1)
    copy.click()
    # Headless Chromium reads the clipboard back once clipboard-read is granted.
    chat.wait_for_function("async (want) => (await navigator.clipboard.readText()).trim() === want.trim()",
                           arg=draft, timeout=10_000)
    assert chat.evaluate("navigator.clipboard.readText()").strip() == draft.strip()

    assert len(chat.get_by_test_id("user").all()) == 3 and len(chat.get_by_test_id("bot").all()) == 3
    # A drafted message is read whole before it is copied: the block wraps its lines.
    assert block.locator("pre").evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    # For the README: the conversation unscrolled (the chat box is 480 px high on the page).
    chat.evaluate("""() => { for (const e of document.querySelectorAll('#chat, #chat *')) {
        const s = getComputedStyle(e);
        if (e.id === 'chat' || s.overflowY === 'auto' || s.overflowY === 'scroll' || s.height.endsWith('px') && e.scrollHeight > e.clientHeight) {
          e.style.height = 'auto'; e.style.maxHeight = 'none'; e.style.overflow = 'visible'; } } }""")
    _screenshot(chat, "chat-conversation.png", DOCS_CONVERSATION)
    assert any("/gradio_api/" in u for u in seen["requests"])
    assert foreign_hosts(seen["requests"] + seen["websockets"]) == []


# A Postfix bounce as it arrives (RFC 3464), for an address the receiving server does not know.
POSTFIX_DSN = """From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
To: agent@help.example.com
Subject: Undelivered Mail Returned to Sender
Date: Mon,  1 Dec 2026 10:12:03 +0000 (UTC)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="4A1B2C3D4E.1764583923/mail.example.net"

--4A1B2C3D4E.1764583923/mail.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<nobody@example.org>: host mx1.example.org[192.0.2.25] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4A1B2C3D4E.1764583923/mail.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.net
X-Postfix-Queue-ID: 4A1B2C3D4E
X-Postfix-Sender: rfc822; agent@help.example.com
Arrival-Date: Mon,  1 Dec 2026 10:12:01 +0000 (UTC)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx1.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--4A1B2C3D4E.1764583923/mail.example.net--
"""


def test_a_pasted_bounce_shows_each_recipients_verdict(chat, answerer):
    """Issue 12: the recipient of a pasted bounce with its badges (hard or soft bounce; suppress or
    keep) and one sentence, labelled as Bouncebot's reading, on its card and in the answer. What the
    page must show is the in-process answer to the same text (until the codes layer's verdict is wired
    in, it has none, and then nor may the page: re-run this once it is)."""
    from app.answering.contract import Answer
    from app.answering.render import WORDING, plain
    from app.answering.render_bounce import badges, evidence_label, one_line, reason_sentence, retry_sentence
    from app.web.chat import ChatUI

    *_, (_, _, _, _, answers) = ChatUI(answerer).respond(POSTFIX_DSN, [], {})
    expected = Answer.model_validate(answers["1"])
    (r,) = expected.recipients
    assert (r.recipient, r.reply_code, r.status) == ("nobody@example.org", "550", "5.1.1")
    label = WORDING["verdict"]["label"]

    bot = ask(chat, POSTFIX_DSN)
    expect(bot).to_contain_text(MEANING_550_511)  # the table's words, as before
    item = chat.locator("#cards .bb-recipients li").filter(has_text="nobody@example.org")
    expect(item).to_have_count(1)
    expect(item.locator(".bb-code")).to_have_text("550 5.1.1")
    marks = item.locator(".bb-verdict")
    if r.verdict is None and r.action == "failed":  # no verdict from the codes layer yet: none shown
        expect(marks).to_have_count(0)
        expect(chat.locator("#cards .bb-ours")).to_have_count(0)
        expect(bot).not_to_contain_text(label)
    else:
        expect(marks).to_have_text([text for _, text in badges(r)])
        expect(chat.locator("#cards .bb-ours")).to_have_text(label)
        if r.verdict is not None:
            sentence = plain(reason_sentence(r.verdict))
            expect(item.locator(".bb-verdict-sentence")).to_have_text(sentence)
            expect(item.locator(".bb-next")).to_contain_text(plain(retry_sentence(r.verdict)))
            expect(bot).to_contain_text(label)
            expect(bot).to_contain_text(sentence)
            if r.verdict.evidence:  # the pasted line, as text: on the card and as code in the answer
                evidence = one_line(r.verdict.evidence)
                expect(item.locator(".bb-evidence")).to_have_text(f"{evidence_label(r.verdict)}: {evidence}")
                expect(bot.locator("code").filter(has_text=evidence)).to_have_count(1)
    # Nothing pasted became markup: the address in angle brackets is no link, no tag.
    expect(bot.locator("a[href^='mailto:']")).to_have_count(0)
    expect(chat.locator("#cards a[href^='mailto:']")).to_have_count(0)
