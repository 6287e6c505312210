"""Each stage of the bounce pipeline on its own: decode (one pass: headers,
report text, HTML as text, DSN blocks, the original's headers, feedback
fields), codes in the report text (scan), recipients (shapes, structured
fields, the weak rules), and the code choice per recipient (choose)."""

from __future__ import annotations

import pytest

from app.codes import _mime
from app.codes.choose import choose
from app.codes.decode import Report, read_report
from app.codes.recipients import pull
from app.codes.scan import scan, scan_lines
from app.codes.shapes import names_in

HEAD = "From: MAILER-DAEMON@mx.example.net\nTo: alice@example.com\nSubject: Undelivered Mail\n"


def multipart(*parts: tuple[str, str]) -> str:
    body = "".join(f"--B\nContent-Type: {ctype}\n\n{text}\n" for ctype, text in parts)
    return HEAD + 'MIME-Version: 1.0\nContent-Type: multipart/report; boundary="B"\n\n' + body + "--B--\n"


# -- decode ------------------------------------------------------------------------


def test_decode_reads_every_part_once():
    report = read_report(multipart(
        ("text/plain", "Delivery failed."),
        ("text/html", '<p>To <a href="mailto:bo@example.org">Bo</a></p>'),
        ("message/delivery-status", "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; bo@example.org\nStatus: 5.1.1"),
        ("message/rfc822", "From: alice@example.com\nTo: bo@example.org\nSubject: hi\n\nbody 5.2.2"),
    ))
    assert report.text.strip() == "Delivery failed."
    assert "bo@example.org" in report.html and "Bo" in report.html  # a link keeps its address
    assert report.blocks[1]["final-recipient"] == "rfc822; bo@example.org"
    assert report.original["from"] == "alice@example.com" and report.original["to"] == "bo@example.org"
    assert report.headers["subject"] == "Undelivered Mail"
    assert "5.2.2" not in report.text + report.html


def test_decode_reads_the_feedback_report_apart():
    report = read_report(multipart(("text/plain", "A complaint."), ("message/feedback-report",
                                                                   "Feedback-Type: abuse\nOriginal-Rcpt-To: c@example.org")))
    assert "Original-Rcpt-To: c@example.org" in report.feedback and "Original" not in report.text


def test_decode_html_only_is_the_text():
    report = read_report(multipart(("text/html", "<p>Your message to <b>d@example.org</b> couldn't be delivered.</p>")))
    assert "d@example.org" in report.text and report.text == report.html


@pytest.mark.parametrize(
    "marker",
    ["    Below is a copy of the original message:", "Original message follows.", "Message headers follow.",
     "------ This is a copy of the message, including all the headers. ------"],
)
def test_decode_cuts_the_quoted_original(marker):
    report = read_report(HEAD + f"\n<e@example.org>: unknown user\n\n{marker}\nTo: f@example.org\nSubject: 5.1.1\n")
    assert "e@example.org" in report.text and "f@example.org" not in report.text


def test_decode_keeps_a_bounce_forwarded_after_an_original_message_line():
    text = ("Hi, this came back:\n\n-----Original Message-----\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
            "Subject: Undeliverable: report\n\n<x@example.org>: unknown user\n\n-----Original Message-----\n"
            "From: carl@example.com\nTo: y@example.org\n")
    report = read_report(text)
    assert "x@example.org" in report.text and "y@example.org" not in report.text


def test_decode_cuts_a_quoted_header_block_but_not_the_bounces_own():
    quoted = read_report("Your message could not be delivered.\n\nFrom: alice@example.com\nTo: g@example.org\n"
                         "Subject: hi\nDate: Mon, 1 Jun 2020\n\nhello\n")
    assert "g@example.org" not in quoted.text
    pasted = "Hi, I got this back:\n\nFrom: MAILER-DAEMON@mx.example.net\nTo: me@example.com\nSubject: Undelivered\n\n<h@example.org>: unknown user\n"
    assert "h@example.org" in read_report(pasted).text


def test_decode_reads_dsn_fields_of_a_paste():
    report = read_report("Final-Recipient: rfc822; i@example.org\nAction: failed\nStatus: 5.2.2\n")
    assert report.dsn == [] and report.blocks == [{"final-recipient": "rfc822; i@example.org", "action": "failed",
                                                   "status": "5.2.2"}]


def test_the_old_module_still_exports_the_decode_stage():
    assert _mime.Report is Report and _mime.read_report is read_report


# -- codes in the report text ---------------------------------------------------------


def test_scan_keeps_each_codes_line_and_context():
    lines = ["<j@example.org>: host mx said: 550 5.1.1", "    unknown user (in reply to RCPT TO)", "", "MAIL FROM:<x@y.z> 250"]
    scanned = scan_lines(lines)
    (code,) = scanned[0]
    assert (code.reply, code.enhanced, code.i) == ("550", "5.1.1", 0)
    assert code.context.endswith("unknown user (in reply to RCPT TO)")
    assert scanned[3] == []  # not after MAIL FROM


def test_scan_reads_a_reply_before_a_short_number():
    (code,) = scan("<k@example.org>: host mx said: 554 30 Sorry, this mailbox is disabled")
    assert (code.reply, code.enhanced) == ("554", None)


# -- recipients --------------------------------------------------------------------------


def names(text: str, head: str = HEAD) -> list[str]:
    report = read_report(head + "\n" + text)
    return names_in(report.text.split("\n"), report)


def test_an_anchors_folded_lines_name_no_other_recipient():
    assert names("<l@example.org>: host mx said: 550\n    <l2@example.org>... User unknown\n") == ["l@example.org"]


def test_a_list_ends_at_the_next_section():
    text = ("Delivery has failed to these recipients or groups:\n\nm@example.org\nNot found.\n\n"
            "Diagnostic information for administrators:\n\nm2@example.org mx Remote Server returned '550 5.1.1'\n")
    assert names(text) == ["m@example.org"]


@pytest.mark.parametrize(
    "heading",
    ["La remise à ces destinataires ou groupes a échoué :", "Fehler bei der Zustellung an folgende Empfänger oder Gruppen:",
     "No se pudo entregar a estos destinatarios o grupos:", "Die folgenden Adressen sind fehlgeschlagen:"],
)
def test_a_heading_in_another_language(heading):
    assert names(f"{heading}\n\nw@example.org\nNot found.\n") == ["w@example.org"]


def test_a_heading_may_continue_on_the_next_line():
    assert names("The following address\nfailed:\n\n<n@example.org>\n") == ["n@example.org"]


@pytest.mark.parametrize(
    "line",
    ["For further assistance, please contact <postmaster@mx.example.net>",
     "Please do not reply to noreply@example.net, this address is not monitored.",
     "If this is an error, write to help@example.net.",
     "MAIL FROM:<alice@example.com> rejected: sender unknown"],
)
def test_a_failure_sentence_about_someone_else_names_nobody(line):
    assert names(line) == []


def test_a_bare_address_line_counts_only_in_a_mail_systems_report():
    assert names("<o@example.org>\n\tUser unknown\n") == ["o@example.org"]
    assert names("<o@example.org>\n\tUser unknown\n", head="From: bob@example.com\nSubject: fyi\n") == []


def test_an_alias_is_never_a_recipient_and_sendmails_is_the_one():
    assert names("<p@example.org> (expanded from <list@example.com>): unknown user\n") == ["p@example.org"]
    assert names("----- The following addresses had permanent fatal errors -----\n<q@example.org>\n"
                 "    (reason: 550 5.1.1 User unknown)\n    (expanded from: <team@example.com>)\n") == ["team@example.com"]


def _pulled(text: str) -> list[tuple[str | None, list[str]]]:
    report = read_report(text)
    lines = report.text.split("\n")
    return [(c.address, [x.enhanced for x in codes]) for c, codes in pull(report, lines, scan_lines(lines))]


def test_dsn_blocks_without_an_address_take_the_ones_named_elsewhere():
    text = multipart(("text/plain", "<r@example.org>:\nuser unknown (#5.1.1)"),
                     ("message/delivery-status", "Final-Recipient: rfc822; @mx.example.org\nAction: failed\nStatus: 5.1.1"))
    assert _pulled(text) == [("r@example.org", ["5.1.1"])]


def test_each_recipient_gets_the_codes_of_its_own_lines():
    text = HEAD + "\n<s@example.org>: host mx said: 550 5.1.1 unknown\n\n<t@example.org>: host mx said: 452 4.2.2 full\n"
    assert _pulled(text) == [("s@example.org", ["5.1.1"]), ("t@example.org", ["4.2.2"])]


def test_without_a_shape_an_address_counts_only_beside_a_code():
    assert _pulled("Your mail bounced. Contact u@example.org.") == []
    assert _pulled("Error: 550 5.1.1 <v@example.org> no such user") == [("v@example.org", ["5.1.1"])]
    assert _pulled("550 5.1.1 no such user") == [(None, ["5.1.1"])]


# -- the code choice per recipient ----------------------------------------------------


@pytest.mark.parametrize(
    "block,text,expected",
    [
        ({"status": "5.0.0", "diagnostic-code": "smtp; 550 5.1.1 unknown"}, "", ("5.1.1", "550")),
        ({"status": "5.0.0"}, "said: 550 5.2.2 full", ("5.2.2", "550")),
        ({"status": "4.4.7"}, "452 4.2.2 mailbox full", ("4.2.2", "452")),
        ({"status": ""}, "", (None, None)),
        ({}, "said: 554 5.7.1 denied", ("5.7.1", "554")),
    ],
    ids=["diagnostic over status", "X.0.0 gives way to the text", "expired gives way to the cause", "no code", "text"],
)
def test_choose(block, text, expected):
    choice = choose(block, scan(text))
    assert (choice.status, choice.reply_code) == expected
