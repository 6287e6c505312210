"""Properties of the bounce parser on any input: it never raises, reports
only codes and addresses that are in the (decoded) input, a recipient without
a code only by its address, and a one-megabyte paste stays fast."""

from __future__ import annotations

import base64
import email
import email.policy
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codes.bounce import Recipient, parse_bounce

from .test_bounce import DSN_FOLDED, GMAIL_PASTE, POSTFIX_SAID, SENDMAIL, report

def decoded(raw: str | bytes) -> str:
    """The input as text plus every MIME part decoded, the way a reader sees it."""
    readings = [raw.decode("latin-1"), raw.decode("utf-8", "replace")] if isinstance(raw, bytes) else [raw]
    parts = []
    for text in readings:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        parts.append(text)
        try:
            for part in email.message_from_string(text, policy=email.policy.compat32).walk():
                data = part.get_payload(decode=True)
                if isinstance(data, bytes):
                    parts += [data.decode("latin-1"), data.decode("utf-8", "replace")]
        except Exception:  # noqa: BLE001 - the oracle tolerates what the parser tolerates
            pass
    return "\n".join(parts)


FRAGMENTS = st.sampled_from(
    [
        "550", "5.1.1", "550-5.7.26 ", "#550 5.1.1 ##", "(#5.1.1)", "<<< 421 4.4.2 ", "said: ", "554 4.4.7 x<",
        "Status: ", "Diagnostic-Code: smtp;", "Final-Recipient: rfc822; ", "Action: failed", "a@example.org",
        "<b@example.org>:", "\n", "\n\n", "\r\n", "\r", "    ", "=\n", "=35", "From: x@y.z\n", "Subject: s\n",
        "Content-Type: multipart/report; boundary=\"B\"\n", "--B\n", "Content-Type: message/delivery-status\n",
        "Content-Transfer-Encoding: base64\n", "Content-Transfer-Encoding: quoted-printable\n", "NTUwIDUuMS4x",
        "From MAILER-DAEMON Thu Jul  2 12:05:05 2020\n", "4.8.3.54", "10.5.1.1", "...", "MAIL From:<s@x.y>",
    ]
)
BOUNCE_LIKE = st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=40).map("".join)


def _check(raw: str | bytes) -> None:
    got = parse_bounce(raw)
    assert isinstance(got, list)
    seen = decoded(raw)
    for r in got:
        assert isinstance(r, Recipient)
        assert r.status or r.reply_code or r.recipient, r  # without a code, a named recipient
        assert r.recipient is None or r.recipient in seen, (r.recipient, raw)
        for code in (r.status, r.reply_code):
            assert code is None or code in seen, (code, raw)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_text_and_codes_come_from_it(text):
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_never_raises_on_bytes_and_codes_come_from_them(raw):
    _check(raw)


@settings(max_examples=500, deadline=None)
@given(BOUNCE_LIKE)
def test_never_raises_on_bounce_like_text(text):
    _check(text)
    _check(text.encode("utf-8"))


def _megabyte(unit: str) -> str:
    return (unit * (1_000_000 // len(unit) + 1))[:1_000_000]


PASTES = {
    "log of bounce lines": _megabyte(
        GMAIL_PASTE + SENDMAIL.split("\n\n", 1)[1] + POSTFIX_SAID.split("\n\n", 1)[1]
    ),
    "bounce with a 1 MB attachment": report("Delivery failed.", DSN_FOLDED).replace(
        "Meet at", base64.encodebytes(b"\x00" * 740_000).decode() + "Meet at"
    ),
    "many DSN blocks": _megabyte(DSN_FOLDED.replace("alice", "a") + "\n"),
}


@pytest.mark.parametrize("kind", PASTES)
def test_a_one_megabyte_paste_is_fast(kind, capsys):
    paste = PASTES[kind]
    start = time.perf_counter()
    got = parse_bounce(paste)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nparse_bounce, 1 MB paste ({kind}): {elapsed:.3f} s, {len(got)} recipient(s)")
    assert got and got[0].status
    assert elapsed < 10  # a generous bound; the figure above is the measurement
