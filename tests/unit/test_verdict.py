"""app.codes.verdict.decide, table by table: the reason from the server's
wording, from the codes when the wording says nothing, a provider's own
reading, the message kind, the dialogue stage; what each reason means for the
address (hard, suppress, retry); the evidence; odd input. The measurement
against Sisimai's labels is tests/unit/test_bounce_corpus.py."""

from __future__ import annotations

import pytest

from app.codes import verdict
from app.codes.find import find_codes
from app.codes.registry import data as registry_data
from app.codes.verdict import MAX_EVIDENCE, RETRY, Verdict, decide, tables

# The usual wording of each reason: "reason | server's reply"; the codes are read from the reply.
WORDING = [line.split(" | ", 1) for line in """
userunknown | 550 5.1.1 <a@example.org>... User Unknown
userunknown | 550 5.1.1 <a@example.org>: Recipient address rejected: User unknown in local recipient table
userunknown | 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
mailboxfull | 552 5.2.2 <a@example.org>: Recipient address rejected: Mailbox full
mailboxfull | 452 4.2.2 The email account that you tried to reach is over quota
hostunknown | 550 5.1.2 <a@example.org>... Host unknown (Name server: example.org: host not found)
hasmoved | 550 5.1.6 recipient no longer on server: a@example.org
suspend | 550 5.2.1 The email account that you tried to reach is disabled.
suspend | 525 5.7.13 Disabled recipient address
blocked | 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org
blocked | 550 5.7.606 Access denied, banned sending IP [192.0.2.1]
spamdetected | 550 5.7.1 Message content rejected, UBE, id=00000-00-000
spamdetected | 554 5.6.0 This message has been scored as spam with a probability of more than 90%
virusdetected | 550 Virus Detected; Content Rejected
authfailure | 550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC policy
authfailure | 550 5.7.1 192.0.2.1 is not allowed to send from <example.net> per its SPF Record
requireptr | 550 5.7.25 The IP address sending this message does not have a PTR record setup
badreputation | 421 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation
toomanyconn | 452 4.3.2 Connection rate limit exceeded.
speeding | 550-5.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages
norelaying | 554 5.7.1 <a@example.org>: Relay access denied
rejected | 501 5.1.8 Sender address rejected: Domain not found
policyviolation | 554 5.7.9 Message not accepted for policy reasons.
notcompliantrfc | 550-5.7.1 This message is not RFC 5322 compliant. There are multiple Subject headers.
contenterror | 550 5.6.9 improper use of 8-bit data in message header
mesgtoobig | 552 5.3.4 Message too big for system
exceedlimit | 552 5.2.3 Message length exceeds administrative limit
securityerror | 550 5.7.1 Please turn on SMTP Authentication in your mail client
failedstarttls | 500 Remote server does not support TLS
systemerror | 550 5.3.0 <a@example.org>... Internal System Error
systemfull | 452 4.3.1 Insufficient system resources
mailererror | 554 5.3.0 unknown mailer error 255
networkerror | connect to mx.example.org[192.0.2.1]:25: No route to host
expired | 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>
notaccept | DNS Error: DNS type 'mx' lookup of example.org responded with code NOERROR: returned a Null MX
syntaxerror | 503 Improper sequence of commands
onhold | 550 5.0.0 <a@example.org>: Recipient address rejected: On hold
""".strip().splitlines()]


def _codes(reply: str) -> tuple[str | None, str | None]:
    """The (status, reply code) a server's reply starts with, as the parser would give them."""
    first = (find_codes(reply) or [None])[0]
    return (first.enhanced, first.reply) if first else (None, None)


# (status, reply, reason): nothing in the words, so the codes decide.
CODES = [
    ("5.1.1", "550", "userunknown"),
    ("5.1.2", None, "hostunknown"),
    ("5.1.6", "551", "hasmoved"),
    ("5.1.8", "553", "rejected"),
    ("5.2.2", "552", "mailboxfull"),
    ("5.2.3", None, "exceedlimit"),
    ("5.3.4", None, "mesgtoobig"),
    ("5.4.4", None, "hostunknown"),
    ("4.4.7", None, "expired"),
    ("5.7.1", "550", "securityerror"),
    ("5.7.25", None, "requireptr"),
    ("5.7.26", None, "authfailure"),
    ("5.7.27", None, "notaccept"),
    ("5.6.3", None, "contenterror"),  # by its subject (X.6: media)
    ("5.3.9", None, "systemerror"),  # by its subject (X.3: mail system)
    (None, "552", "mailboxfull"),
    (None, "521", "notaccept"),
    (None, "503", "syntaxerror"),
    (None, "554", "blocked"),
    ("5.0.0", None, "onhold"),  # a code that says nothing specific
    ("5.0.0", "599", "onhold"),
    (None, None, "undefined"),
]


@pytest.mark.parametrize(("reason", "diagnostic"), WORDING, ids=[w[0] for w in WORDING])
def test_reason_from_the_usual_wording(reason, diagnostic):
    v = decide(*_codes(diagnostic), diagnostic)
    assert (v.reason, v.basis) == (reason, "text")
    assert v.evidence and v.evidence in " ".join(diagnostic.split())


@pytest.mark.parametrize(("status", "reply", "reason"), CODES, ids=[f"{c[0]}/{c[1]}" for c in CODES])
def test_reason_from_the_codes_when_the_words_say_nothing(status, reply, reason):
    v = decide(status, reply, "Delivery failed.")
    assert v.reason == reason
    assert v.basis == ("status" if status else "reply" if reply else "text")
    assert v.evidence == (status or reply)


def test_the_status_code_wins_over_the_reply_code():
    assert decide("5.2.2", "550", None).reason == "mailboxfull"


def test_the_diagnostic_wins_over_the_report_text():
    text = "The mail system\n\n<a@example.org>: mailbox is full\n"
    v = decide("5.0.0", "550", "550 5.0.0 <a@example.org>... User unknown (in reply to RCPT TO command)", text=text)
    assert v.reason == "userunknown"


def test_the_report_text_is_read_when_the_diagnostic_says_nothing():
    text = "Hi. This is the qmail-send program.\n\n<a@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n"
    v = decide("5.1.1", None, "", text=text)
    assert (v.reason, v.basis, v.evidence) == ("userunknown", "text", "Sorry, no mailbox here by that name. (#5.1.1)")


# -- where in the dialogue: a 'user unknown' is a missing address only when the address was refused


@pytest.mark.parametrize(
    ("diagnostic", "status", "text", "reason"),
    [
        ("550 Unknown user a@example.org", "5.0.0", "a@example.org said: 550 Unknown user (in reply to RCPT TO command)",
         "userunknown"),
        ("550 Unknown user a@example.org", "5.0.0",
         "a@example.org said: 550 Unknown user a@example.org (in reply to end of DATA command)", "filtered"),
        ("550 Unknown user a@example.org", "5.2.0", ">>> DATA\n<<< 550 Unknown user a@example.org", "filtered"),
        ("550 5.1.1 <a@example.org>... User unknown", "5.1.1", ">>> DATA\n<<< 550 5.1.1 <a@example.org>... User unknown",
         "userunknown"),  # the status names the address itself
        ("550 5.2.1 <a@example.org>... User Unknown", "5.2.1", "", "filtered"),  # a mailbox status, nothing else
        ("550 No such user", "5.0.0", "", "filtered"),  # nothing proves the address was refused
        ("550 <a@example.org>: User unknown", "5.0.0", "", "userunknown"),  # the reply names the refused address
        ("550 : User unknown", "5.0.0", "", "filtered"),  # ... or names none: said after DATA
        ("551 not our customer", "5.1.6", "550 5.1.1 <a@example.org>... User unknown", "hasmoved"),
    ],
)
def test_user_unknown_by_where_it_was_said(diagnostic, status, text, reason):
    assert decide(status, "550", diagnostic, text=text).reason == reason


def test_the_transcript_line_before_the_reply_tells_the_command():
    text = (">>> DATA\n<<< 550 5.2.1 <b@example.org>... Mailbox disabled\n"
            ">>> RCPT To:<a@example.org>\n<<< 550 No such user here\n550 <a@example.org>... User unknown\n")
    assert decide(None, "550", "550 <a@example.org>... User unknown", text=text).reason == "userunknown"


def test_a_name_lookup_that_failed_for_now_is_a_network_error():
    assert decide("5.1.2", "550", "Host or domain name not found").reason == "hostunknown"
    assert decide("4.0.0", None, "Host or domain name not found").reason == "networkerror"


def test_a_missing_domain_in_a_sender_status_is_about_the_sender():
    v = decide("5.1.8", "553", "553 5.1.8 <root@host.example>... Domain of sender address does not exist")
    assert (v.reason, v.hard, v.suppress) == ("rejected", False, False)
    assert decide("5.1.7", "550", "550 5.1.7 No such domain example.org").reason == "rejected"


def test_not_authorized_in_answer_to_mail_from_refuses_the_sender():
    text = "<a@example.org>: host mx said: 550 5.7.1 Access denied (in reply to MAIL FROM command)"
    assert decide("5.7.1", "550", "550 5.7.1 Access denied", text=text).reason == "rejected"
    assert decide("5.7.1", "550", "550 5.7.1 Access denied").reason == "securityerror"


# -- a provider's own reading


GMAIL_DISABLED = "550-5.2.1 The email account that you tried to reach is disabled. - gsmtp"


def test_a_provider_reading_wins_when_the_bounce_names_the_provider():
    v = decide("5.4.1", "550", "550 5.4.1 Recipient address rejected: Access denied. [x.prod.protection.outlook.com]")
    assert (v.reason, v.basis, v.hard) == ("userunknown", "provider", True)
    assert v.evidence == "550 5.4.1 (Microsoft)"
    # Not named: the code is read as any other server's (X.1.10: null MX), not as Microsoft's.
    assert decide("5.1.10", "550", "550 5.1.10 delivery failed").reason == "notaccept"
    assert decide("5.1.10", "550", "550 5.1.10 delivery failed", providers={"Microsoft"}).reason == "userunknown"


def test_a_provider_is_named_by_the_caller_or_by_the_text():
    assert decide("5.2.1", "550", GMAIL_DISABLED).basis == "provider"
    assert decide("5.2.1", "550", "550 5.2.1 disabled", text="Received: by mx.google.com").basis == "status"  # a header
    assert decide("5.2.1", "550", "550 5.2.1 disabled", providers=frozenset({"Gmail"})).reason == "suspend"


def test_a_reading_the_provider_documents_for_the_same_code_follows_the_wording():
    wording = "550-5.2.1 The user you are trying to contact is receiving mail at a rate that prevents delivery. gsmtp"
    v = decide("5.2.1", "550", wording)
    assert (v.reason, v.basis) == ("speeding", "text")


def test_a_broad_provider_category_leaves_the_reason_to_the_wording():
    v = decide("5.7.1", "550", "550-5.7.1 [192.0.2.1] Messages with multiple addresses in From: header are not "
                               "accepted. gsmtp")
    assert (v.reason, v.basis) == ("notcompliantrfc", "text")


# -- the message kind


@pytest.mark.parametrize(
    ("kind", "reason", "retry", "suppress"),
    [("complaint", "feedback", "no", True), ("autoreply", "vacation", "later", False),
     ("success", "delivered", "no", False), ("challenge", "onhold", "after_fix", False)],
)
def test_a_kind_fixes_the_reason(kind, reason, retry, suppress):
    v = decide("5.1.1", "550", "550 5.1.1 User unknown", kind=kind, text="I am out of the office until Monday.")
    assert (v.reason, v.basis, v.retry, v.suppress, v.hard) == (reason, "kind", retry, suppress, False)
    assert v.evidence == kind


def test_an_auto_reply_saying_the_mailbox_is_gone():
    v = decide(None, None, None, kind="autoreply", text="This email inbox a@example.org is no longer in use.")
    assert (v.reason, v.basis) == ("suspend", "text")


def test_a_delay_is_expired_unless_it_says_why_and_the_server_keeps_trying():
    v = decide("4.4.7", None, None, kind="delay", text="Delivery to the following recipient has been delayed")
    assert (v.reason, v.retry) == ("expired", "wait")
    v = decide("4.2.2", "452", "452 4.2.2 Mailbox full", action="delayed")
    assert (v.reason, v.retry, v.hard) == ("mailboxfull", "wait", False)
    assert decide("4.4.1", None, None, kind="delay").basis == "kind"
    # Not failed yet: nothing to suppress, even for an address the server calls unknown.
    v = decide("4.1.1", "450", "450 4.1.1 <a@example.org>: Recipient address rejected: User unknown", action="delayed")
    assert (v.reason, v.hard, v.suppress, v.retry) == ("userunknown", True, False, "wait")


def test_failure_and_not_report_read_the_codes():
    for kind in ("failure", "not_report"):
        assert decide("5.1.1", "550", None, kind=kind).reason == "userunknown"


# -- what the reason means for the address


# "status | server's words | reason, hard or soft, suppress or keep, retry"
MEANING = [line.split(" | ") for line in """
5.1.1 | User unknown | userunknown hard suppress after_fix
4.1.1 | User unknown in virtual alias table (in reply to RCPT TO command) | userunknown hard suppress after_fix
5.1.2 | Host unknown | hostunknown hard suppress after_fix
5.1.6 | Mailbox has moved | hasmoved hard suppress no
5.1.10 | Null MX | notaccept hard suppress no
4.0.0 | No MX found for domain | notaccept soft keep later
5.2.2 | Mailbox full | mailboxfull soft keep later
5.2.1 | Account disabled | suspend soft keep later
5.7.1 | blocked using zen.spamhaus.org | blocked soft keep after_fix
4.7.1 | blocked using zen.spamhaus.org | blocked soft keep later
4.3.2 | Too many connections | toomanyconn soft keep later
5.7.26 | DMARC policy | authfailure soft keep after_fix
5.2.0 | 550 5.2.0 Message Filtered | filtered soft keep after_fix
4.4.7 | Message expired | expired soft keep later
""".strip().splitlines()]


@pytest.mark.parametrize(("status", "diagnostic", "meaning"), MEANING, ids=[m[2] for m in MEANING])
def test_hard_suppress_and_retry_per_reason(status, diagnostic, meaning):
    v = decide(status, None, diagnostic)
    hard, suppress = ("hard" if v.hard else "soft"), ("suppress" if v.suppress else "keep")
    assert f"{v.reason} {hard} {suppress} {v.retry}" == meaning


def test_every_reason_the_tables_name_has_its_properties():
    t = tables()
    named = {r for r, _ in t.phrases} | {v for v in t.status.values() if v} | set(t.reply.values())
    named |= {k["reason"] for k in t.kinds.values()} | set(t.fallback.values())
    named |= {p["reason"] for p in t.providers.values() if "reason" in p} | {r for p in t.providers.values()
                                                                            for r in p.get("or", ())}
    for rule in t.refine:
        named |= set(rule["reason"] if isinstance(rule["reason"], list) else [rule["reason"]]) | {rule["to"]}
    assert named <= set(t.reasons)
    for props in t.reasons.values():
        assert props["hard"] in ("always", "permanent", "never") and props["suppress"] in ("always", "permanent",
                                                                                             "never")
        retry = props["retry"]
        assert set(retry.values() if isinstance(retry, dict) else [retry]) <= set(RETRY)
    assert {k.get("retry", "no") for k in t.kinds.values()} <= set(RETRY)
    assert set(t.ambiguous) <= set(t.stages)


def test_every_provider_category_is_mapped():
    categories = {e["reason"] for entries in registry_data().providers.values() for e in entries}
    assert categories <= set(tables().providers)


# -- evidence


def test_evidence_is_the_line_the_deciding_phrase_was_on():
    text = "This is the mail system.\n\nI'm sorry.\n<a@example.org>: host mx said: 552 Mailbox quota exceeded\nBye\n"
    v = decide(None, "552", None, text=text)
    assert (v.reason, v.evidence) == ("mailboxfull", "<a@example.org>: host mx said: 552 Mailbox quota exceeded")


def test_evidence_of_a_long_line_is_cut_around_the_phrase():
    diagnostic = "x" * 5000 + " 550 5.1.1 User unknown " + "y" * 5000
    v = decide("5.1.1", "550", diagnostic)
    assert v.reason == "userunknown" and "User unknown" in v.evidence and len(v.evidence) <= MAX_EVIDENCE


def test_evidence_of_a_code_is_the_code():
    assert decide("5.2.2", "552", None).evidence == "5.2.2"
    assert decide(None, "552", None).evidence == "552"


# -- odd input


@pytest.mark.parametrize(
    "args",
    [
        (None, None, None),
        ("", "", ""),
        ("5.1.1", "550", None),
        ("9.9.9", "999", "\x00\x01\x02"),
        ("5.1.1", "550", "User unknown " * 100_000),
        (None, None, "é" * 200_000),
        ("5.1.1 5.2.2", "550 552", "a" * 300_000),
        (5.11, 550, b"550 5.1.1 user unknown"),  # not strings
    ],
)
def test_never_raises(args):
    text = "İ" * 100_000 + "\n\t user unknown"
    verdict._decide(*args, "failed", "failure", text, frozenset())  # handled, not caught by decide's safety net
    v = decide(*args, text=text)
    assert isinstance(v, Verdict) and v.retry in RETRY
    assert v.basis in ("provider", "text", "status", "reply", "kind")
    assert v.evidence is None or len(v.evidence) <= MAX_EVIDENCE


@pytest.mark.parametrize("text", [None, 42, "", "a" * 1_000_000, "\n" * 100_000, "<a@" * 50_000])
def test_never_raises_on_odd_text(text):
    verdict._decide("5.0.0", "550", "550 Rejected", "nonsense", "nonsense", text, frozenset())
    v = decide("5.0.0", "550", "550 Rejected", text=text, kind="nonsense", action="nonsense")
    assert v.reason in tables().reasons
