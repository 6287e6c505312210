"""kind_of (what a pasted message is) and action_of (a recipient's RFC 3464
action): on hand-written messages (tests/unit/data/kinds, one per kind), on
short pastes, on the Sisimai corpus and the external bounce corpus (each with
a confusion table, printed with -s), and on any input (it never raises, and
its time grows linearly with the input).

What the corpora should give:

* Sisimai (shared/data/bounces): module ``arf`` and reason ``feedback`` (an
  Amazon SES complaint) -> complaint; module ``rfc3834`` -> autoreply (also
  rfc3834-06, which Sisimai files as 'suspend': it is an auto-reply saying the
  mailbox is no longer in use); reason ``delivered`` -> success; every other
  email is a failure or a delay warning. Reason ``expired`` is Sisimai's for
  both: the test prints which of them were read as delays.
* External (shared/data/bounces-external): failures and delays, except the
  13 files in EXTERNAL_NOT_BOUNCES, which are no bounces at all (feedback-loop
  complaints and two non-reports, see there).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codes.decode import Report, read_report, to_text
from app.codes.kind import ACTIONS, KINDS, action_of, kind_of

from ..conftest import SHARED

FIXTURES = Path(__file__).parent / "data" / "kinds"
SISIMAI = SHARED / "data" / "bounces"
EXTERNAL = SHARED / "data" / "bounces-external"

# External files that are not bounces, what they are, and why.
EXTERNAL_NOT_BOUNCES = {
    **{
        f"PHP-Bounce-Handler/{name}": "complaint"  # ARF (report-type=feedback-report) or its wording
        for name in ("arf1.txt", "arf2.txt", "arf3.txt", "arf4.txt", "arf5.txt", "fbl-aol.txt", "fbl-comcast.txt",
                     "fbl-yahoo.txt", "fixture_feedback_001.eml")
    },
    # Outlook.com JMRP complaints ("complaint about message from <ip>"), despite one file's name
    "PHP-Bounce-Handler/fbl-hotmail.txt": "complaint",
    "PHP-Bounce-Handler/hotmailbounce.txt": "complaint",
    "PHP-Bounce-Handler/arf6.txt": "not_report",  # a newsletter (an "UNSUBSCRIBE, click here" footer)
    "PHP-Bounce-Handler/unsubscribe.txt": "not_report",  # an unsubscribe script's debug log and a newsletter
}


def kind_of_file(path: Path) -> str:
    return kind_of(read_report(to_text(path.read_bytes())))


def confusion(title: str, pairs: list[tuple[str, str]]) -> None:
    """Print expected x found counts."""
    table = Counter(pairs)
    found = sorted({f for _, f in pairs}, key=KINDS.index)
    print(f"\n{title}: {len(pairs)} emails\n{'expected':<16}" + "".join(f"{f:>11}" for f in found))
    for expected in sorted({e for e, _ in pairs}):
        print(f"{expected:<16}" + "".join(f"{table[(expected, f)] or '.':>11}" for f in found))


# -- hand-written messages ------------------------------------------------------


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.iterdir() if "--" in p.name), ids=lambda p: p.name)
def test_fixture(path):
    assert kind_of_file(path) == path.name.split("--")[0]


def test_every_kind_has_a_fixture():
    assert {p.name.split("--")[0] for p in FIXTURES.iterdir() if "--" in p.name} == set(KINDS)


def mail(headers: str, body: str) -> str:
    return f"{headers}\nMIME-Version: 1.0\n\n{body}"


def dsn(*actions: str) -> str:
    """A multipart/report with one recipient per action."""
    blocks = "\n\n".join(f"Final-Recipient: rfc822; r{i}@example.org\nAction: {a}\nStatus: 2.0.0" for i, a in
                         enumerate(actions))
    return mail(
        "From: postmaster@example.net\nSubject: Delivery Status Notification\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        f"--B\nContent-Type: text/plain\n\nReport.\n--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; example.net\n\n{blocks}\n--B--\n",
    )


EXIM = mail(
    "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\nTo: a@example.com\n"
    "Subject: Mail delivery failed: returning message to sender\nAuto-Submitted: auto-replied",
    "This message was created automatically by mail delivery software.\n\nA message that you sent could not be\n"
    "delivered to one or more of its recipients. This is a permanent error.\n\n"
    "  b@example.org\n    Unrouteable address",
)

PASTES = [
    ("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown", "failure"),
    ("host mx.example.org said: 550 5.1.1 user unknown (in reply to RCPT TO)", "failure"),
    ("421 4.7.0 Try again later, closing connection.", "failure"),  # a temporary rejection, not a warning DSN
    ("Status: 5.2.2", "failure"),
    ("How do I add an SPF record for my domain?", "not_report"),
    ("We have 450 customers and 550 orders a week.", "not_report"),  # numbers, not reply codes
    ("Our server runs CommuniGate Pro SMTP 5.0.9 on Linux.", "not_report"),  # a version, not a code
    ("", "not_report"),
    (EXIM, "failure"),  # Exim marks its bounces Auto-Submitted: auto-replied
    (mail("From: postmaster@example.net\nSubject: Undeliverable: Automatic reply: Lunch", "Delivery has failed to "
          "these recipients or groups:\n\nb@example.org"), "failure"),  # an out-of-office reply that bounced
    (mail("From: b@example.org\nSubject: Auto: Lunch", "Back on Monday."), "autoreply"),
    (mail("From: MAILER-DAEMON@example.net\nSubject: Successful Mail Delivery Report", "Your message was "
          "successfully delivered to the destination(s) listed below."), "success"),  # no Action fields
    (mail("From: postmaster@example.net\nSubject: Delivered: Lunch", "Your message has been delivered to the "
          "following recipients:\n\nb@example.org"), "success"),
    (mail("From: b@example.org\nSubject: Lunch\nPrecedence: auto_reply", "Back on Monday."), "autoreply"),
    ("Feedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1", "complaint"),  # a pasted ARF part
    (mail('From: fbl@example.net\nSubject: FW: offer\nContent-Type: multipart/report; boundary="A"',
          "--A\nContent-Type: text/plain\n\nSee below.\n--A\nContent-Type: message/feedback-report\n\n"
          "Feedback-Type: abuse\nVersion: 1\n--A--\n"), "complaint"),  # only the ARF part says so
    ('{"notificationType":"Complaint","complaint":{"complainedRecipients":[]}}', "complaint"),
    ('{"notificationType":"Delivery","delivery":{"recipients":["b@example.org"]}}', "success"),
    (dsn("failed", "delivered"), "failure"),
    (dsn("delayed", "delivered"), "delay"),
    (dsn("relayed", "expanded"), "success"),
    (dsn("Delayed"), "delay"),
    ("Final-Recipient: rfc822; b@example.org\nAction: delayed\nStatus: 4.4.1", "delay"),  # pasted DSN fields
    ("I use a challenge-response system: verify that you are a real person at the link below.", "challenge"),
    (mail("From: helen@example.com\nSubject: Fwd: see attached\nContent-Type: multipart/mixed; boundary=\"F\"",
          "--F\nContent-Type: text/plain\n\nWhat does this mean?\n--F\nContent-Type: message/rfc822\n\n"
          + EXIM + "\n--F--\n"), "failure"),  # a bounce forwarded as an attachment
    (mail("From: list-owner@example.org\nSubject: Your message awaits moderator approval", "Your mail to 'team' "
          "is being held until the list moderator can review it for approval."), "not_report"),
]


@pytest.mark.parametrize("text,expected", PASTES, ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_paste(text, expected):
    assert kind_of(read_report(text)) == expected


@pytest.mark.parametrize(
    "block,kind,expected",
    [
        ({"action": "failed"}, "delay", "failed"),
        ({"action": "Delayed"}, "failure", "delayed"),
        ({"action": "delivered"}, "failure", "delivered"),
        ({"action": "deliverable"}, "failure", "delivered"),  # rfc3464-28 writes it so
        ({"action": "expired"}, "delay", "failed"),
        ({"action": "relayed (to a non-DSN mailer)"}, "failure", "relayed"),
        ({"action": "expanded"}, "failure", "expanded"),
        ({"action": "x-unheard-of"}, "delay", "delayed"),
        ({}, "delay", "delayed"),
        ({}, "success", "delivered"),
        ({}, "failure", "failed"),
        ({}, "not_report", "failed"),
        (None, "success", "delivered"),
        ({"action": 7}, "delay", "delayed"),
        ({"action": "failed"}, ["unhashable"], "failed"),
    ],
)
def test_action_of(block, kind, expected):
    assert action_of(block, kind) == expected
    assert expected in ACTIONS


# -- never raises, linear ---------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.dictionaries(st.sampled_from(["subject", "content-type", "from", "x-boxbe-a"]),
                                              st.text(max_size=60)), st.lists(st.text(max_size=80), max_size=3))
def test_never_raises(text, headers, parts):
    assert kind_of(Report(text=text, dsn=parts, headers=headers)) in KINDS
    assert kind_of(read_report(text)) in KINDS


def test_odd_reports():
    for report in (Report(text=None), Report(text="x", headers={"subject": "=?bad?Q?=ZZ?="}), object(), None):
        assert kind_of(report) in KINDS  # type: ignore[arg-type]


def test_linear():
    """CPU time of the same adversarial input at n and 4n: linear is ~4x, quadratic ~16x."""
    unit = "this is a warning--could not   \t will retry for 4 more 550 5.1.1 #4.2. Action: delayed\n"

    def cost(n: int) -> float:
        report = Report(text=unit * n, dsn=[("Action: " + "x" * 50 + "\n") * n], headers={"subject": "auto: " * n})
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            kind_of(report)
            best = min(best, time.process_time() - start)
        return best

    assert cost(600) / max(cost(150), 1e-4) < 8  # 13K and 54K characters: under MAX_SCANNED


# -- corpora --------------------------------------------------------------------


def _records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sisimai_expected(rec: dict) -> str:
    if rec["module"] == "arf" or rec["reason"] == "feedback":
        return "complaint"
    if rec["module"] == "rfc3834":
        return "autoreply"
    return "success" if rec["reason"] == "delivered" else "failure or delay"


@pytest.mark.skipif(not (SISIMAI / "expected.jsonl").is_file(), reason="Sisimai corpus not found")
def test_sisimai_corpus():
    emails = {r["id"]: r for r in _records(SISIMAI / "expected.jsonl")}
    found = {i: kind_of_file(SISIMAI / "emails" / i) for i in emails}
    confusion("Sisimai", [(sisimai_expected(emails[i]), k) for i, k in found.items()])
    expired = Counter(
        (emails[i]["status"][:1] + ".x.x", k) for i, k in found.items() if emails[i]["reason"] == "expired"
    )
    print("reason 'expired' by status class:", dict(sorted(expired.items())))
    print("read as delays:", ", ".join(f"{i.split('/')[-1]} ({emails[i]['reason']})" for i, k in found.items()
                                      if k == "delay"))
    wrong = {i: k for i, k in found.items() if k not in sisimai_expected(emails[i]).split(" or ")}
    print("exceptions:", wrong or "none")
    assert not wrong
    copies = {r["id"]: r["same_as"] for r in _records(SISIMAI / "expected_line_endings.jsonl")}
    assert {i: kind_of_file(SISIMAI / "emails" / i) for i in copies} == {i: found[s] for i, s in copies.items()}


@pytest.mark.skipif(not (EXTERNAL / "expected.jsonl").is_file(), reason="external corpus not found")
def test_external_corpus():
    files = [r["file"].removeprefix("emails/") for r in _records(EXTERNAL / "expected.jsonl")]
    found = {f: kind_of_file(EXTERNAL / "emails" / f) for f in files}
    expected = {f: EXTERNAL_NOT_BOUNCES.get(f, "failure or delay") for f in files}
    confusion("External", [(expected[f], k) for f, k in found.items()])
    print("read as delays:", ", ".join(f for f, k in found.items() if k == "delay"))
    wrong = {f: k for f, k in found.items() if k not in expected[f].split(" or ")}
    print("exceptions:", wrong or "none")
    assert len(files) == 216 and not wrong
    assert set(EXTERNAL_NOT_BOUNCES) <= set(files)
