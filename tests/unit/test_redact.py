"""Redaction before the conversation log stores a text (``app.storage.redact``): email addresses,
phone numbers and people's names go; codes, dates, IP addresses, product names and the article's
words stay. Table-driven, then every eval question: no code the look-up finds is lost."""

from __future__ import annotations

import json

import pytest

from app.codes.find import find_codes
from app.storage.redact import redact

from ..conftest import ROOT

EMAILS = [
    ("mail to maria.lopez@example.com bounced", "mail to [email] bounced"),
    ("<anna+desk@mail.example.co.uk>: 550 5.1.1", "<[email]>: 550 5.1.1"),
    ("Final-Recipient: rfc822; o'brien@shop.example", "Final-Recipient: rfc822; [email]"),
    ("two: a@b.example, c.d@e.example", "two: [email], [email]"),
    ("MAILER-DAEMON@mx.google.com said", "[email] said"),
]

PHONES = [
    ("call +44 20 7946 0958 today", "call [phone] today"),
    ("Tel. +49 30 1234567", "Tel. [phone]"),
    ("0044 20 7946 0958", "[phone]"),
    ("her number is (555) 010-9999.", "her number is [phone]."),
    ("+1 (555) 010-9999", "[phone]"),
    ("text 555-010-9999 instead", "text [phone] instead"),
    ("or 555.010.9999", "or [phone]"),
    ("national: 030 1234567", "national: [phone]"),
    ("020 7946 0958 is the office", "[phone] is the office"),
    ("mobile 0612345678", "mobile [phone]"),
    ("phone number: 612345678", "phone number: [phone]"),
    ("WhatsApp +34 612 34 56 78 works", "WhatsApp [phone] works"),
]

NAMES = [
    ("Hi Anna, the reply bounced", "Hi [name], the reply bounced"),
    ("Hello Omar,\n\nAs discussed", "Hello [name],\n\nAs discussed"),
    ("Dear Mr. Smith,\nthe reply failed", "Dear Mr. [name],\nthe reply failed"),
    ("Dear Dr Jane Goodall", "Dear Dr [name]"),
    ("Hi Ms. O'Neil", "Hi Ms. [name]"),
    ("Thanks,\nJohn Doe", "Thanks,\n[name]"),
    ("Best regards,\nJohn Doe\nAcme support", "Best regards,\n[name]\nAcme support"),
    ("Kind regards,\nAnnika", "Kind regards,\n[name]"),
    ("> Thanks, Diego\n>", "> Thanks, [name]\n>"),
    ("Cheers,\nSam\n\n550 5.1.1", "Cheers,\n[name]\n\n550 5.1.1"),
    ("my customer Maria Lopez gets 552-5.2.2", "my customer [name] gets 552-5.2.2"),
    ("the customer Mary-Jane McDonald's mailbox", "the customer [name] mailbox"),
    ("my name is Ana María Pérez", "my name is [name]"),
    ("I'm Priya from billing", "I'm [name] from billing"),
    ("a colleague, Tom, says", "a colleague, [name], says"),
]

# Text that must come back unchanged: codes in every shape, dates, times, IPs, ids, products, titles.
UNCHANGED = [
    "Remote server said 550 #5.1.1",
    "550-5.1.1 The email account that you tried to reach does not exist",
    "421-4.7.28 and 452 4.2.2 then 554 5.7.1",
    "550, \"5.1.1\" (#5.1.1) 5.7.26",
    "error number 421 4.7.28 452 4.2.2",
    "at 2026-11-30 10:32:05 +0000 from 10.5.1.1",
    "30.11.2026 and 11/30/2026",
    "from [192.168.100.200] port 25",
    "host gmail-smtp-in.l.google.com[2001:db8:4860:4864::1a] said",
    "version 5.2.2 and v1.2.3",
    "ticket 1701423000, order 12345678, queued as 4F3A2B1C",
    "Message-ID 20261130103205",
    "Reference 5521-0611.",
    "Hi team, Gmail says 421-4.7.28 and Microsoft 365 says 550 5.7.26",
    "Thanks Gmail", "thanks, Gmail works now", "Thanks,\nthe team", "Hi there", "Hello, can you help with 552-5.2.2",
    "Dear Customer Reply Bounced With 4.7.28",  # Title Case: "Customer" is no cue
    "Undelivered Mail Returned to Sender\nTo: x",
    "From: Mail Delivery Subsystem\nDate: Wed, 12 Jun 2024",
    "Section: Common delivery errors, Troubleshooting steps",
    "Common Email Delivery Errors › Need more help?",
    "Outlook, Yahoo, Exchange Online and Office 365 reject it",
    "the sender is blocked: SparrowDesk's Inbox shows it",
    "is unchanged at 812.50 EUR.",
    "",
]


@pytest.mark.parametrize("text, expected", EMAILS + PHONES + NAMES)
def test_personal_data_is_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_codes_dates_ips_products_and_titles_are_kept(text):
    assert redact(text) == text


def test_one_message_with_everything_keeps_only_what_is_not_personal():
    text = ("Hi Anna,\nmy customer Maria Lopez (maria.lopez@example.com, +44 20 7946 0958) got "
            "550-5.1.1 on 2026-11-30 from 10.5.1.1.\nThanks,\nJohn Doe")
    out = redact(text)
    assert out == ("Hi [name],\nmy customer [name] ([email], [phone]) got 550-5.1.1 on 2026-11-30 from "
                   "10.5.1.1.\nThanks,\n[name]")
    for gone in ("Anna", "Maria", "Lopez", "maria.lopez", "example.com", "7946", "John", "Doe"):
        assert gone not in out


def _eval_texts() -> list[str]:
    texts = []
    for path in sorted((ROOT / "evals" / "datasets").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            texts.append(case["question"])
            texts += [t["content"] for t in case.get("history") or []]
    return texts


def test_every_code_in_the_eval_questions_survives_redaction():
    texts = _eval_texts()
    assert len(texts) > 400
    lost = [(t[:80], [c.code for c in find_codes(t)], [c.code for c in find_codes(redact(t))]) for t in texts
            if [c.code for c in find_codes(t)] != [c.code for c in find_codes(redact(t))]]
    assert not lost


def test_no_email_address_survives_in_the_eval_questions():
    import re

    for t in _eval_texts():
        assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", redact(t)), t[:200]
