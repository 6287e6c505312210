"""Finding codes in free text: every shape people paste, and every look-alike
that must be ignored."""

from __future__ import annotations

import pytest

from app.codes.find import find_codes, severity_of

# (text, [normalised codes found, in order])
SHAPES = [
    ("550-5.1.1", ["550-5.1.1"]),
    ("550 5.1.1", ["550-5.1.1"]),
    ("550 #5.1.1", ["550-5.1.1"]),
    ('550, "5.1.1"', ["550-5.1.1"]),
    ("550 - 5.1.1", ["550-5.1.1"]),
    ("(#5.1.1)", ["5.1.1"]),
    ("5.1.1", ["5.1.1"]),
    ("550", ["550"]),
    ("what does 550-5.1.1 mean?", ["550-5.1.1"]),
    ("ERROR 550-5.1.1 USER UNKNOWN", ["550-5.1.1"]),
    ("Smtp;550 5.1.1 user unknown", ["550-5.1.1"]),
    ("got a 421-4.7.28 from gmail", ["421-4.7.28"]),
    ("is 4.7.28 temporary?", ["4.7.28"]),
    ("bounced: 552-5.2.2 then 554 5.4.4", ["552-5.2.2", "554-5.4.4"]),
    ("550 5.7.26 unauthenticated", ["550-5.7.26"]),
    ("450 4.2.2 over quota", ["450-4.2.2"]),
    ("554 alone", ["554"]),
    ("5.1.10 is different", ["5.1.10"]),
    ("5.7.509 access denied", ["5.7.509"]),
    ("end of sentence 5.1.1.", ["5.1.1"]),
    ("#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##", ["550-5.1.1"]),
    (
        "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "550-5.1.1 double-checking the recipient's email address for typos or\n"
        "550 5.1.1 unnecessary spaces.",
        ["550-5.1.1"],
    ),
    ("It says 550 ... and later 550 5.1.1", ["550-5.1.1"]),  # the bare 550 is the same failure
    ("5.1.1 then 550-5.1.1", ["550-5.1.1"]),
    ("550 and 5.7.1, separately", ["550", "5.7.1"]),
    ("550, 552 and 554", ["550", "552", "554"]),
    ("codes 421 550 554 today", ["421", "550", "554"]),
    ("error 550 (see above)", ["550"]),
]

# Text that only looks like it holds a code.
DECOYS = [
    "server 10.5.1.1 refused",
    "relay 192.168.5.2.2",
    "upgraded to v5.2.2 yesterday",
    "running version 5.2.2 of the client",
    "Version: 5.4.4",
    "build 5.1.1 is broken",
    "release 4.7.28 notes",
    "sent on 5.1.2024",
    "call 555-1234",
    "call +1 421 550 4477 instead",
    "phone (415) 550 1234",
    "ref 12 550 99",
    "we have 1,550 contacts",
    "it cost $550",
    "5500 messages",
    "code 5.1.1.3",
    "port 587 and 465",
    "the number 999",
    "ticket #123456",
    "",
]


# Look-alike characters: the same code as its ASCII spelling (text, [codes]).
UNICODE_SHAPES = [
    ("550\u20105.1.1", ["550-5.1.1"]),  # U+2010 hyphen
    ("550\u20115.1.1", ["550-5.1.1"]),  # non-breaking hyphen
    ("550\u20125.1.1", ["550-5.1.1"]),  # figure dash
    ("550\u20135.1.1", ["550-5.1.1"]),  # en dash
    ("550\u20145.1.1", ["550-5.1.1"]),  # em dash
    ("550\u20155.1.1", ["550-5.1.1"]),  # horizontal bar
    ("550\u22125.1.1", ["550-5.1.1"]),  # minus sign
    ("550\uff0d5.1.1", ["550-5.1.1"]),  # fullwidth hyphen-minus
    ("550 5\uff0e1\uff0e1", ["550-5.1.1"]),  # fullwidth full stops
    ("\uff15\uff15\uff10-\uff15.\uff11.\uff11", ["550-5.1.1"]),  # fullwidth digits
    ("\uff15\uff15\uff10\uff0d\uff15\uff0e\uff11\uff0e\uff11", ["550-5.1.1"]),  # all fullwidth
    ("550\u00a05.1.1", ["550-5.1.1"]),  # no-break space
    ("550\u202f5.1.1", ["550-5.1.1"]),  # narrow no-break space
    ("550\u3000\uff035.1.1", ["550-5.1.1"]),  # ideographic space, fullwidth '#'
    ("\uff08#5.1.1\uff09", ["5.1.1"]),  # fullwidth parentheses
    ("error \uff15\uff15\uff14 today", ["554"]),
    ("421\u20134.7.28 then 5.1.1", ["421-4.7.28", "5.1.1"]),
]

UNICODE_DECOYS = [
    "call 555\u20101234",
    "call +1 421\u00a0550\u00a04477",
    "upgraded to \uff56\uff15.\uff12.\uff12",
    "server \uff11\uff10.\uff15.\uff11.\uff11 refused",
    "sent on \uff15.\uff11.\uff12\uff10\uff12\uff14",  # a date
    "phone (\uff14\uff11\uff15) \uff15\uff15\uff10\u2010\uff11\uff12\uff13\uff14",
]


@pytest.mark.parametrize("text,expected", UNICODE_SHAPES)
def test_unicode_look_alikes_are_the_same_code(text, expected):
    assert [f.code for f in find_codes(text)] == expected


@pytest.mark.parametrize("text", UNICODE_DECOYS)
def test_unicode_decoys_are_ignored(text):
    assert find_codes(text) == []


@pytest.mark.parametrize("written", ["\uff15\uff15\uff10-\uff15.\uff11.\uff11", "550\u20105.1.1", "550\u00a05.1.1"])
def test_found_text_is_the_users_own_spelling(written):
    text = f"Reply failed: {written} user unknown"
    (f,) = find_codes(text)
    assert f.text == written == text[f.start : f.end]
    assert (f.reply, f.enhanced) == ("550", "5.1.1")


@pytest.mark.parametrize("text,expected", SHAPES)
def test_shapes(text, expected):
    assert [f.code for f in find_codes(text)] == expected


@pytest.mark.parametrize("text", DECOYS)
def test_look_alikes_are_ignored(text):
    assert find_codes(text) == []


def test_found_text_and_positions_point_into_the_input():
    text = "Reply failed: 550 #5.1.1 user unknown"
    (f,) = find_codes(text)
    assert f.text == "550 #5.1.1"
    assert text[f.start : f.end] == f.text
    assert (f.reply, f.enhanced) == ("550", "5.1.1")


@pytest.mark.parametrize(
    "reply,enhanced,severity",
    [
        ("550", "5.1.1", "permanent"),
        ("421", "4.7.28", "temporary"),
        ("250", "2.0.0", "success"),
        ("550", None, "permanent"),
        (None, "4.2.2", "temporary"),
        ("354", None, "unknown"),
        ("550", "4.4.2", "temporary"),  # the enhanced code is the more specific
    ],
)
def test_severity(reply, enhanced, severity):
    assert severity_of(reply, enhanced) == severity
