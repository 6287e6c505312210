"""The recipients stage on one hand-written bounce per shape a mail server
writes its failed recipients in (tests/unit/data/bounce_shapes, see its
README): who is reported, with which codes and action, and that nobody else
is (the original's To:/Cc:, the bounce's sender, an alias, the addresses in a
recipient's own diagnostic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.codes.bounce import read_bounce

SHAPES_DIR = Path(__file__).parent / "data" / "bounce_shapes"


def shape(file, *expected, why=""):
    """file -> [(recipient, status, reply_code, action)]; ``why``: what the case shows."""
    return pytest.param(file, list(expected), id=f"{file}: {why}" if why else file)


def failed(recipient, status=None, reply=None, action="failed"):
    return (recipient, status, reply, action)


SHAPES = [
    shape("qmail_code.eml", failed("bob@example.org", "5.1.1", "550"), why="the copy's To: is not read"),
    shape("qmail_no_code.eml", failed("carol@example.org"), failed("dan@example.org"), why="<a@b>: blocks, no code"),
    shape("yahoo_unable.eml", failed("frank@example.org", None, "554"), why="'said: 554 30'"),
    shape("yahoo_sorry_paste.txt", failed("grace@example.org"), why="'Sorry, your message to a@b cannot'"),
    shape("yahoo_couldnt_deliver.txt", failed("heidi@example.org"), why="'couldn't deliver your message to'"),
    shape(
        "exchange_2010.eml",
        failed("ivan@example.org", "5.1.1", "550"),
        failed("judy@example.org", "5.2.2", "554"),
        why="'Delivery has failed to these recipients or groups', display names",
    ),
    shape("exchange_html_only.eml", failed("lee@example.org", "5.1.10", "550"), why="HTML only, mailto link"),
    shape("exchange_2003.eml", failed("nick@example.org"), why="'did not reach', not the summary's To:/Cc:"),
    shape(
        "postfix.eml",
        failed("pat@example.org", "5.1.1", "550"),
        failed("quinn@example.org"),
        failed("rosa@example.org", "4.2.2", "452"),
        why="said:, no code, expanded from, the server's own address is not read",
    ),
    shape("postfix_paste_no_code.txt", failed("sam@example.org"), why="a pasted body without headers"),
    shape(
        "exim.eml",
        failed("tina@example.org", "5.1.1", "550"),
        failed("uma@example.org"),
        failed("vic@example.org"),
        why="'SMTP error from remote mail server', no code, 'a@b: mailbox is full'",
    ),
    shape("sendmail_expanded_from.txt", failed("team@example.com", "5.1.1", "550"), why="the alias, as its DSN says"),
    shape("sendmail_dsn_alias.eml", failed("help@example.com", "5.1.1", "550"), why="Final-Recipient, not X-Actual"),
    shape("groupwise.eml", failed("yuri@example.org"), why="not the alternative addresses"),
    shape("groupwise_status.eml", failed("zoe@example.org", "5.1.1", "550"), why="'undeliverable recipient(s)'"),
    shape("lotus_notes.eml", failed("adam@example.org"), why="'was not delivered to:' and a list"),
    shape("lotus_notes_inline.txt", failed("beth@example.org"), why="'was not delivered to: a@b'"),
    shape("dsn_x400.eml", failed("carl.diaz@example.org", "5.1.1"), why="X.400 Final-Recipient"),
    shape(
        "dsn_empty_status.eml",
        failed("dora@example.org"),
        failed("eli@example.org", "4.4.1", "441", "delayed"),
        why="an empty Status:, Action: delayed",
    ),
    shape("original_only.eml", failed(None, "5.7.1", "550"), why="only the original's To: and Cc: name anyone"),
    shape("gmail_delay.txt", failed("hank@example.org", action="delayed"), why="'has been delayed', indented"),
    shape("opensmtpd.eml", failed("iris@example.org", "5.2.1", "550"), why="'a@b: 550 ...'"),
    shape("arf.eml", failed("jack@example.org"), why="a complaint's Original-Rcpt-To"),
]


@pytest.mark.parametrize("file,expected", SHAPES)
def test_shapes(file, expected):
    got = read_bounce((SHAPES_DIR / file).read_bytes())
    assert [(r.recipient, r.status, r.reply_code, r.action) for r in got.recipients] == expected
    assert got.found == len(expected)


def test_every_shape_file_is_in_the_table():
    listed = {p.values[0] for p in SHAPES}
    assert listed == {p.name for p in SHAPES_DIR.iterdir() if p.suffix in (".eml", ".txt")}


