"""parse_bounce on small hand-written bounces, one per way mail servers write
their codes; the caps on recipients. The recipient shapes are
test_bounce_shapes.py's, each stage on its own test_bounce_stages.py's, the
properties on any input test_bounce_properties.py's."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from app.codes.bounce import MAX_DIAGNOSTIC, MAX_RECIPIENTS, parse_bounce, read_bounce


def mail(body: str, ctype: str = "text/plain", extra: str = "") -> str:
    """A bounce's top-level headers around ``body``."""
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        "To: sender@example.com\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        f"Content-Type: {ctype}\n"
        f"{extra}\n"
        f"{body}"
    )


def report(notification: str, dsn: str, cte: str = "7bit", notification_cte: str = "7bit") -> str:
    """A multipart/report with a notification part, a delivery-status part and
    the original message."""
    return mail(
        "This is a MIME-encapsulated message.\n\n"
        "--BOUNDARY\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        f"Content-Transfer-Encoding: {notification_cte}\n\n"
        f"{notification}\n"
        "--BOUNDARY\n"
        "Content-Type: message/delivery-status\n"
        f"Content-Transfer-Encoding: {cte}\n\n"
        f"{dsn}\n"
        "--BOUNDARY\n"
        "Content-Type: message/rfc822\n\n"
        "From: sender@example.com\nTo: someone@example.org\nSubject: hi\n"
        "X-Mailer: Client 4.8.3.54\nX-Spam: engine=2.50.10432:5.13.68\n\n"
        "Meet at 10.5.1.1 on 5.1.2024; see build 5.2.2.\n"
        "--BOUNDARY--\n",
        ctype='multipart/report; report-type=delivery-status; boundary="BOUNDARY"',
    )


DSN_FOLDED = (
    "Reporting-MTA: dns; mx.example.net\n\n"
    "Final-Recipient: rfc822; alice@example.org\n"
    "Original-Recipient: rfc822;alice@example.org\n"
    "Action: failed\n"
    "Status: 5.0.0\n"
    "Diagnostic-Code: smtp;550\n"
    "    5.1.1 <alice@example.org>: Recipient address rejected: User unknown\n"
)

POSTFIX_SAID = mail(
    "This is the mail system at host mx.example.net.\n\n"
    "<bob@example.org>: host mail.example.org[192.0.2.7] said: 550 5.1.1\n"
    "    <bob@example.org>: Recipient address rejected: User unknown (in reply to\n"
    "    RCPT TO command)\n"
)

POSTFIX_FOLDED_PAIR = mail(
    "<bob@example.org>: host mail.example.org[192.0.2.7] said: 552\n"
    "    5.2.2 <bob@example.org>: mailbox full (in reply to RCPT TO command)\n"
)

EXIM = mail(
    "This message was created automatically by mail delivery software.\n\n"
    "A message that you sent could not be delivered to one or more of its\n"
    "recipients. This is a permanent error. The following address(es) failed:\n\n"
    "  carol@example.org\n"
    "    SMTP error from remote mail server after RCPT TO:<carol@example.org>:\n"
    "    host mx.example.org [192.0.2.9]: 550 5.7.1 <carol@example.org>: Relay access denied\n"
    "  dave@example.org\n"
    "    SMTP error from remote mail server after RCPT TO:<dave@example.org>:\n"
    "    host mx.example.org [192.0.2.9]: 452 4.2.2 <dave@example.org>: Over quota\n\n"
    "------ This is a copy of the message, including all the headers. ------\n\n"
    "Subject: re: 550 5.0.0 in your last mail\n"
)

SENDMAIL = mail(
    "The original message was received at Mon, 1 Jun 2020 10:00:00 +0000\n\n"
    "   ----- The following addresses had permanent fatal errors -----\n"
    "<erin@example.org>\n"
    "    (reason: 550 5.1.1 <erin@example.org>... User unknown)\n\n"
    "   ----- Transcript of session follows -----\n"
    "... while talking to mx.example.org.:\n"
    ">>> MAIL From:<sender@example.com> SIZE=1234\n"
    "<<< 250 2.1.0 <sender@example.com>... Sender ok\n"
    ">>> RCPT To:<erin@example.org>\n"
    "<<< 550 5.1.1 <erin@example.org>... User unknown\n"
    "550 5.1.1 <erin@example.org>... User unknown\n"
)

EXCHANGE = mail(
    "Delivery has failed to these recipients or groups:\n\n"
    "frank@example.org\n"
    "The e-mail address you entered couldn't be found.\n\n"
    "Diagnostic information for administrators:\n\n"
    "Generating server: EX01.example.net\n\n"
    "frank@example.org\n"
    "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n\n"
    "Original message headers:\n\n"
    "Received: from EX02 (192.0.2.1) by EX01 with Microsoft SMTP Server id 14.3.224.2\n"
)

QMAIL = mail(
    "Hi. This is the qmail-send program at mx.example.net.\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
    "<grace@example.org>:\n"
    "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
    "--- Below this line is a copy of the message.\n\n"
    "Subject: version 5.2.2 released\n"
)

GMAIL_PASTE = (
    "The response from the remote server was:\n"
    "550-5.7.26 This mail has been blocked because the sender is\n"
    "550-5.7.26 unauthenticated. Gmail requires all senders to authenticate with\n"
    "550 5.7.26 either SPF or DKIM. - gsmtp\n"
)

NESTED = report(
    "An error occurred while trying to deliver the mail to the following recipients:\nheidi@example.org",
    "Reporting-MTA: dns; out.example.net\n\n"
    "Action: failed\n"
    "Final-Recipient: rfc822; heidi@example.org\n"
    "Diagnostic-Code: smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes."
    "<421 4.4.2 Connection timed out>\n"
    "Status: 4.4.7\n",
)

THREE_DIGIT = report(
    "Your message to ivan@example.org couldn't be delivered.",
    "Final-Recipient: rfc822;ivan@example.org\n"
    "Action: failed\n"
    "Status: 5.7.509\n"
    "Diagnostic-Code: smtp;550 5.7.509 Access denied, sending domain example.com does not pass DMARC\n",
)

EXPIRED = mail(
    "Diagnostic information for administrators:\n\n"
    "judy@example.org\n"
    "6/1/2020 8:05:56 PM - Remote Server at mx.example.org returned '450 4.4.7 QUEUE.Expired; message expired'\n"
    "6/1/2020 7:58:27 PM - Remote Server at mx.example.org returned '441 4.4.1 Failed to connect'\n"
)

PASTED_DSN = (
    "Final-Recipient: rfc822; olga@example.org\nAction: failed\nStatus: 4.2.2\n"
    "Diagnostic-Code: smtp; 452 4.2.2 Mailbox full\n"
)
STATUS_ONLY = (
    "Final-Recipient: rfc822; kim@example.org\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: x-unix; quota\n"
)
QP_NOTE = "<lee@example.org>: host mx.example.org said: 550 5.=\n1.1 User unknown"
B64_NOTE = base64.encodebytes(b"<mia@example.org>: host mx said: 550 5.7.1 Denied").decode()
GENERIC_STATUS = "Final-Recipient: rfc822; {}@example.org\nAction: failed\nStatus: 5.0.0\n"
GMAIL_NAMING = (
    "Your message wasn't delivered to nick@example.org because the address couldn't be found.\n"
    "The response was: 550 5.1.1 The email account that you tried to reach does not exist."
)
HEADER_LINES = "Subject: Undeliverable\nDiagnostic-Code: smtp; 550 5.1.1 <rex@example.org> unknown\n"
LATIN1 = mail("<pat@example.org>: said: 550 5.1.1 Usuario desconocido \xf1\n").encode("latin-1")
ALICE = [("alice@example.org", "5.1.1", "550")]


def case(id_, text, expected, why):
    """text -> [(recipient, status, reply_code)], and a word the decisive phrase holds."""
    return pytest.param(text, expected, why, id=id_)


CASES = [
    case("rfc3464 folded, no space after ';'", report("Delivery failed.", DSN_FOLDED), ALICE, "Diagnostic-Code"),
    case("status field only", report("x", STATUS_ONLY), [("kim@example.org", "5.2.2", None)], "Status:"),
    case("rfc3464 CRLF", report("x", DSN_FOLDED).replace("\n", "\r\n").encode(), ALICE, "Diagnostic-Code"),
    case("rfc3464 CR", report("x", DSN_FOLDED).replace("\n", "\r").encode(), ALICE, "Diagnostic-Code"),
    case(
        "base64 delivery-status",
        report("x", base64.encodebytes(DSN_FOLDED.encode()).decode(), cte="base64"),
        ALICE,
        "Diagnostic-Code",
    ),
    case(
        "quoted-printable soft break inside a code",
        report(QP_NOTE, GENERIC_STATUS.format("lee"), notification_cte="quoted-printable"),
        [("lee@example.org", "5.1.1", "550")],
        "more specific",
    ),
    case(
        "base64 notification",
        report(B64_NOTE, GENERIC_STATUS.format("mia"), notification_cte="base64"),
        [("mia@example.org", "5.7.1", "550")],
        "more specific",
    ),
    case("postfix said:", POSTFIX_SAID, [("bob@example.org", "5.1.1", "550")], "report text"),
    case("postfix pair folded", POSTFIX_FOLDED_PAIR, [("bob@example.org", "5.2.2", "552")], "report text"),
    case(
        "exim, two recipients",
        EXIM,
        [("carol@example.org", "5.7.1", "550"), ("dave@example.org", "4.2.2", "452")],
        "report text",
    ),
    case("sendmail transcript", SENDMAIL, [("erin@example.org", "5.1.1", "550")], "report text"),
    case("exchange #550 ... ##", EXCHANGE, [("frank@example.org", "5.1.1", "550")], "report text"),
    case("qmail (#5.1.1)", QMAIL, [("grace@example.org", "5.1.1", None)], "report text"),
    case("gmail multi-line paste", GMAIL_PASTE, [(None, "5.7.26", "550")], "report text"),
    case("nested reply wins", NESTED, [("heidi@example.org", "4.4.2", "421")], "quoted inside"),
    case("three-digit detail", THREE_DIGIT, [("ivan@example.org", "5.7.509", "550")], "Diagnostic-Code"),
    case("expired gives way to the cause", EXPIRED, [("judy@example.org", "4.4.1", "441")], "expired"),
    case("bare paste", "550-5.7.26 blah", [(None, "5.7.26", "550")], "report text"),
    case("paste naming the address", GMAIL_NAMING, [("nick@example.org", "5.1.1", "550")], "report text"),
    case("pasted DSN fields", PASTED_DSN, [("olga@example.org", "4.2.2", "452")], "Diagnostic-Code"),
    case("pasted header lines only", HEADER_LINES, [("rex@example.org", "5.1.1", "550")], "Diagnostic-Code"),
    case("bare reply code", "Remote host said: 554 Transaction failed", [(None, None, "554")], "reply code"),
    case("latin-1 bytes", LATIN1, [("pat@example.org", "5.1.1", "550")], "report text"),
]


@pytest.mark.parametrize("text,expected,why", CASES)
def test_formats(text, expected, why):
    got = parse_bounce(text)
    assert [(r.recipient, r.status, r.reply_code) for r in got] == expected
    assert all(why in r.decisive for r in got), [r.decisive for r in got]


def test_multi_recipient_dsn_keeps_the_bounce_order():
    dsn = "".join(
        f"Final-Recipient: rfc822; {name}@example.org\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {reply} {status} no\n\n"
        for name, status, reply in [("zed", "5.2.2", "552"), ("amy", "5.1.1", "550"), ("max", "4.4.1", "451")]
    )
    got = parse_bounce(report("x", dsn))
    assert [(r.recipient, r.status, r.reply_code) for r in got] == [
        ("zed@example.org", "5.2.2", "552"),
        ("amy@example.org", "5.1.1", "550"),
        ("max@example.org", "4.4.1", "451"),
    ]


def test_success_report_keeps_its_codes():
    dsn = (
        "Final-Recipient: rfc822; una@example.org\nAction: delivered\nStatus: 2.1.5\n"
        "Diagnostic-Code: smtp; 250 2.1.5 Ok\n"
    )
    (got,) = parse_bounce(report("Enclosed is the mail delivery report that you requested.", dsn))
    assert (got.status, got.reply_code) == ("2.1.5", "250")


def test_mbox_of_two_bounces():
    first = "From MAILER-DAEMON Thu Jul  2 12:05:05 2020\n" + POSTFIX_SAID
    second = "From MAILER-DAEMON Thu Jul  2 12:06:05 2020\n" + QMAIL
    got = parse_bounce(first + "\n" + second)
    assert [(r.recipient, r.status) for r in got] == [("bob@example.org", "5.1.1"), ("grace@example.org", "5.1.1")]


def test_forwarded_bounce_is_read_from_the_attachment():
    forwarded = mail(
        "--F\nContent-Type: text/plain\n\nSee the bounce below.\n"
        "--F\nContent-Type: message/rfc822\n\n" + POSTFIX_SAID + "\n--F--\n",
        ctype='multipart/mixed; boundary="F"',
    )
    (got,) = parse_bounce(forwarded)
    assert (got.recipient, got.status, got.reply_code) == ("bob@example.org", "5.1.1", "550")


def test_a_forwarding_note_naming_the_recipient_gives_way_to_the_attached_bounce():
    note = "From: carl@example.com\nTo: help@example.net\nSubject: Fwd: bounced\nMIME-Version: 1.0\n"
    forwarded = (
        note + 'Content-Type: multipart/mixed; boundary="F"\n\n'
        "--F\nContent-Type: text/plain\n\nMy mail to bob@example.org failed, the bounce is attached.\n"
        "--F\nContent-Type: message/rfc822\n\n" + POSTFIX_SAID + "\n--F--\n"
    )
    (got,) = parse_bounce(forwarded)
    assert (got.recipient, got.status, got.reply_code) == ("bob@example.org", "5.1.1", "550")


def test_multipart_that_lost_its_boundary_is_read_as_text():
    broken = mail("Error: 550 5.1.1 <quinn@example.org> no such user\n", ctype="multipart/alternative;\nboundary=b")
    (got,) = parse_bounce(broken)
    assert (got.status, got.reply_code) == ("5.1.1", "550")


def test_pathological_nesting_is_read_as_text():
    levels = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(500))
    inner = "--b500\nContent-Type: text/plain\n\n550 5.1.1 no such user\n"
    nested = mail(levels + inner, ctype="multipart/mixed; boundary=b0")
    (got,) = parse_bounce(nested + "filler line\n" * 40_000)
    assert (got.status, got.reply_code) == ("5.1.1", "550")


def test_a_parser_failure_falls_back_to_the_body_as_text(monkeypatch):
    def broken(text):
        raise RuntimeError("simulated")

    monkeypatch.setattr("app.codes.bounce.read_report", broken)
    got = parse_bounce(mail("Remote host said: 550 5.1.1 unknown\n", extra="X-Note: 550 5.7.26 in a header\n"))
    assert [(r.status, r.reply_code) for r in got] == [("5.1.1", "550")]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Thanks for your mail, I'm out of office until 5 May.",
        "Server 10.5.1.1 runs version 5.2.2; build 4.8.3.54; engine=2.50.10432:5.13.68; sent 5.1.2024",
        mail("I am away until 29 April; I will answer on my return.", extra="Auto-Submitted: auto-replied\n"),
        mail(
            "--A\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
            "--A\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
            "--A\nContent-Type: message/rfc822\n\nReceived: from x (8.13.1/8.13.1) with TLS bits=256\n"
            "Subject: 550 5.1.1 in a complaint\n\nspam\n--A--\n",
            ctype='multipart/report; report-type=feedback-report; boundary="A"',
        ),
    ],
    ids=["empty", "vacation text", "look-alikes", "vacation mail", "feedback report"],
)
def test_no_code_means_nothing(text):
    assert parse_bounce(text) == []


def test_look_alikes_beside_a_real_code():
    (got,) = parse_bounce(report("Delivery failed.", DSN_FOLDED))  # the original holds 4.8.3.54, 5.13.68, 10.5.1.1
    assert (got.status, got.reply_code) == ("5.1.1", "550")


def test_diagnostic_is_unfolded_and_bounded():
    (got,) = parse_bounce(report("x", DSN_FOLDED))
    assert got.diagnostic == "550 5.1.1 <alice@example.org>: Recipient address rejected: User unknown"
    (gmail,) = parse_bounce(GMAIL_PASTE)
    assert gmail.diagnostic.count("5.7.26") == 1  # the repeated line prefixes are dropped
    (long,) = parse_bounce("Diagnostic-Code: smtp; 550 5.1.1 " + "x " * 2000 + "\nStatus: 5.1.1\nAction: failed\n")
    assert len(long.diagnostic) <= MAX_DIAGNOSTIC


def _dsn_blocks(n: int, code=lambda i: ("550", f"5.1.{i % 8}")) -> str:
    return "\n".join(
        f"Final-Recipient: rfc822; user{i}@example.org\nAction: failed\nStatus: {code(i)[1]}\n"
        f"Diagnostic-Code: smtp; {code(i)[0]} {code(i)[1]} no such user\n"
        for i in range(n)
    )


def _postfix_lines(n: int) -> str:
    return "".join(
        f"<user{i}@example.org>: host mx.example.org said: 550 5.1.{i % 8} no such user\n"
        "    (in reply to RCPT TO command)\n"
        for i in range(n)
    )


@pytest.mark.parametrize(
    "text",
    [
        mail(f"Delivery failed.\n\nReporting-MTA: dns; mx.example.net\n\n{_dsn_blocks(MAX_RECIPIENTS + 7)}"),
        report("Delivery failed.", _dsn_blocks(MAX_RECIPIENTS + 7)),
        mail("This is the mail system at host mx.example.net.\n\n" + _postfix_lines(MAX_RECIPIENTS + 7)),
    ],
    ids=["pasted dsn", "multipart report", "postfix text"],
)
def test_recipients_past_the_cap_are_counted_not_read(text):
    got = read_bounce(text)
    assert got.found == MAX_RECIPIENTS + 7
    assert [r.recipient for r in got.recipients] == [f"user{i}@example.org" for i in range(MAX_RECIPIENTS)]
    assert [r.status for r in got.recipients] == [f"5.1.{i % 8}" for i in range(MAX_RECIPIENTS)]  # the last one too
    assert parse_bounce(text) == got.recipients


def test_recipients_are_counted_across_an_mbox():
    one = mail("This is the mail system.\n\n" + _postfix_lines(60))
    mbox = "".join(f"From MAILER-DAEMON Mon Jan  1 00:00:0{i} 2024\n{one}\n" for i in range(2))
    got = read_bounce(mbox)
    assert (len(got.recipients), got.found) == (MAX_RECIPIENTS, 120)


def test_a_bounce_within_the_cap_is_read_whole():
    got = read_bounce(mail(f"Failed.\n\nReporting-MTA: dns; x\n\n{_dsn_blocks(3)}"))
    assert (len(got.recipients), got.found) == (3, 3)
    assert read_bounce("what does 550 5.1.1 mean?").found == 1
    assert read_bounce("no code here").found == 0


def test_recipient_is_frozen_and_has_exactly_the_contract_keys():
    (got,) = parse_bounce("550 5.1.1 user unknown")
    assert set(got.to_dict()) == {"recipient", "status", "reply_code", "diagnostic", "decisive", "action", "verdict"}
    with pytest.raises(AttributeError):
        got.status = "4.0.0"  # type: ignore[misc]


def test_importing_the_parser_loads_no_heavy_stack():
    code = (
        "import sys, app.codes.bounce; heavy = {'torch', 'chromadb', 'gradio', 'langchain', 'langchain_core'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
