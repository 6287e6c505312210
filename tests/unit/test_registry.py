"""The code registry: the three data files load and agree with each other, and
explain() resolves codes in its documented order (provider, registry,
class-subject, reply code) with actions that follow the help article."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.codes.registry import Explanation, action_for, data, explain, named_providers

ROOT = Path(__file__).resolve().parents[2]

# Every enhanced status code the IANA registry lists (as of its 2024-12-06 update).
REGISTERED = (
    ["X.0.0"]
    + [f"X.1.{n}" for n in range(0, 11)]
    + [f"X.2.{n}" for n in range(0, 5)]
    + [f"X.3.{n}" for n in range(0, 7)]
    + [f"X.4.{n}" for n in range(0, 8)]
    + [f"X.5.{n}" for n in range(0, 7)]
    + [f"X.6.{n}" for n in range(0, 11)]
    + [f"X.7.{n}" for n in range(0, 31)]
)
RFC5321 = "211 214 220 221 250 251 252 354 421 450 451 452 455 500 501 502 503 504 550 551 552 553 554 555".split()
EXTENSIONS = "432 454 530 534 535 538 521 556".split()
BASES = {"provider", "registry", "class-subject", "reply-code"}
SEVERITIES = {"permanent", "temporary", "success", "unknown"}


def _all_entries():
    d = data()
    rows = [("enhanced", e["code"], e) for e in d.enhanced.values()]
    rows += [("reply", e["code"], e) for e in d.replies.values()]
    rows += [("provider", e["written"], e) for es in d.providers.values() for e in es]
    return [pytest.param(kind, code, entry, id=f"{kind}:{code}") for kind, code, entry in rows]


# --- the data files -----------------------------------------------------------


def test_registry_has_exactly_the_iana_codes():
    assert len(REGISTERED) == 81
    assert sorted(data().enhanced) == sorted(REGISTERED)


@pytest.mark.parametrize("code", REGISTERED)
def test_registered_code_is_complete(code):
    entry = data().enhanced[code]
    for field in ("title", "meaning", "reason", "source"):
        assert isinstance(entry[field], str) and entry[field].strip(), (code, field)
    assert entry["source"] in data().source_urls


@pytest.mark.parametrize("code", RFC5321 + EXTENSIONS)
def test_reply_code_is_complete(code):
    entry = data().replies[code]
    assert entry["meaning"].strip() and entry["reason"].strip()
    assert entry["source"] in {"RFC 5321", "RFC 4954", "RFC 7504"}


def test_reply_codes_are_exactly_the_listed_ones():
    assert sorted(data().replies) == sorted(RFC5321 + EXTENSIONS)


@pytest.mark.parametrize("kind,code,entry", _all_entries())
def test_every_reason_is_declared(kind, code, entry):
    assert entry["reason"] in data().reasons, (kind, code)


@pytest.mark.parametrize("key", ["classes", "subjects"])
def test_class_and_subject_reasons_are_declared(key):
    for value in getattr(data(), key).values():
        assert value.get("reason", "other") in data().reasons


def test_classes_and_subjects_are_defined():
    d = data()
    assert sorted(d.classes) == ["2", "4", "5"]
    assert sorted(d.subjects) == [str(n) for n in range(8)]
    assert all(v["meaning"].strip() for v in [*d.classes.values(), *d.subjects.values()])


def test_every_severity_has_a_default_action_and_only_declared_reasons():
    actions = data().actions
    assert set(actions) == SEVERITIES
    for table in actions.values():
        assert table["default"].strip()
        assert set(table) - {"default"} <= set(data().reasons)


@pytest.mark.parametrize(
    "written,entry",
    [pytest.param(e["written"], e, id=e["written"]) for es in data().providers.values() for e in es],
)
def test_provider_entry_is_complete(written, entry):
    assert written.startswith(entry["reply"])
    assert entry["enhanced"] in written
    assert entry["provider"] and entry["meaning"].strip()
    assert entry["sources"] and all(re.match(r"https://", url) for url in entry["sources"])


def test_providers_sharing_a_pair_share_a_reason():
    for pair, entries in data().providers.items():
        assert len({e["reason"] for e in entries}) == 1, pair


@pytest.mark.parametrize(
    "provider,written",
    [
        ("Gmail", "421-4.7.28"),
        ("Gmail", "550-5.7.26"),
        ("Gmail", "421-4.7.0"),
        ("Gmail", "452-4.2.2"),
        ("Gmail", "550-5.2.1"),
        ("Gmail", "550-5.7.1"),
        ("Microsoft", "550 5.1.10"),
        ("Microsoft", "550 5.7.708"),
        ("Microsoft", "550 5.4.1"),
        ("Microsoft", "550 5.7.606"),
        ("Yahoo", "421 4.7.0 [TSS04]"),
    ],
)
def test_required_provider_codes_are_present(provider, written):
    found = {(e["provider"], e["written"]) for es in data().providers.values() for e in es}
    assert (provider, written) in found


def test_data_is_loaded_once():
    assert data() is data()


# --- explain(): resolution order ----------------------------------------------

# (reply, enhanced, code, basis, reason); provider entries need the provider named in the context
CONTEXT = "Reply from mx.google.com (gsmtp) / outlook.com"
RESOLUTION = [
    # 1. provider: reply and enhanced both match, and the text names the provider
    ("421", "4.7.28", "421-4.7.28", "provider", "rate_limited"),
    ("550", "5.7.26", "550-5.7.26", "provider", "authentication"),
    ("452", "4.2.2", "452-4.2.2", "provider", "mailbox_full"),
    ("550", "5.1.10", "550-5.1.10", "provider", "user_unknown"),
    ("550", "5.4.1", "550-5.4.1", "provider", "user_unknown"),
    ("550", "5.7.606", "550-5.7.606", "provider", "policy"),
    # 2. registry: no provider pair, the X.subject.detail entry
    ("450", "4.2.2", "450-4.2.2", "registry", "mailbox_full"),
    (None, "4.2.2", "4.2.2", "registry", "mailbox_full"),
    (None, "5.2.2", "5.2.2", "registry", "mailbox_full"),
    (None, "5.7.26", "5.7.26", "registry", "authentication"),  # provider needs the reply code too
    ("421", "4.4.1", "421-4.4.1", "registry", "network"),
    ("554", "5.4.4", "554-5.4.4", "registry", "routing"),
    ("554", "5.4.7", "554-5.4.7", "registry", "expired"),
    (None, "5.4.1", "5.4.1", "registry", "network"),  # not Microsoft's reading without 550
    (None, "5.1.10", "5.1.10", "registry", "host_unknown"),  # X.1.10, not X.1.1
    (None, "5.7.30", "5.7.30", "registry", "policy"),
    (None, "2.1.5", "2.1.5", "registry", "success"),  # class 2 is a success whatever the detail
    (None, "5.07.01", "5.7.1", "registry", "policy"),  # leading zeros normalised
    # 3. class-subject: an enhanced code the registry does not list
    (None, "5.7.509", "5.7.509", "class-subject", "policy"),
    (None, "4.4.99", "4.4.99", "class-subject", "network"),
    ("550", "5.1.99", "550-5.1.99", "class-subject", "other"),
    (None, "2.0.9", "2.0.9", "class-subject", "success"),
    # 4. reply code alone, or with an enhanced code that is not one
    ("421", None, "421", "reply-code", "system"),
    ("554", None, "554", "reply-code", "other"),
    ("550", None, "550", "reply-code", "other"),
    ("521", None, "521", "reply-code", "host_unknown"),
    ("535", None, "535", "reply-code", "smtp_login"),
    ("421", "6.1.1", "421", "reply-code", "system"),
    ("550", "5.9.1", "550-5.9.1", "reply-code", "other"),  # subject 9 does not exist
]


@pytest.mark.parametrize("reply,enhanced,code,basis,reason", RESOLUTION)
def test_resolution_order(reply, enhanced, code, basis, reason):
    got = explain(reply, enhanced, CONTEXT)
    assert isinstance(got, Explanation)
    assert (got.code, got.basis, got.reason) == (code, basis, reason)
    assert got.meaning.strip() and got.action.strip() and got.sources
    assert got.basis in BASES and got.severity in SEVERITIES


@pytest.mark.parametrize(
    "reply,enhanced",
    [(None, "6.1.1"), ("199", None), (None, None), ("", ""), ("abc", "x.y.z"), ("600", None), (None, "5.1")],
)
def test_unknown_returns_none(reply, enhanced):
    assert explain(reply, enhanced) is None


@pytest.mark.parametrize(
    "context,basis",
    [(None, "registry"), ("bounce from some-isp.example", "registry"), ("mx.google.com said", "provider"),
     ("GMAIL", "provider"), ("Yahoo Mail", "registry")],  # Yahoo has no 550 5.7.26 entry
)
def test_provider_reading_needs_the_provider_named(context, basis):
    got = explain("550", "5.7.26", context)
    assert got.basis == basis
    assert ("Gmail" in got.meaning) == (basis == "provider")


def test_providers_named_once_by_the_caller_are_used_as_given():
    assert explain("550", "5.7.26", "mx.google.com said", providers=set()).basis == "registry"
    assert explain("550", "5.7.26", None, providers={"Gmail"}).basis == "provider"
    assert explain("550", "5.7.26", None, providers=named_providers("mx.google.com said")).basis == "provider"


@pytest.mark.parametrize(
    "text,providers",
    [("", set()), ("mx.google.com said", {"Gmail"}), ("GSMTP and Protection.Outlook.com", {"Gmail", "Microsoft"}),
     ("yahoo, hotmail and gmail", {"Gmail", "Microsoft", "Yahoo"}), ("mail.example.org", set())],
)
def test_named_providers(text, providers):
    assert named_providers(text) == providers


def test_shared_provider_pair_shows_every_provider():
    got = explain("421", "4.7.0", "gmail and yahoo both deferred")
    assert got.basis == "provider"
    assert "Gmail" in got.meaning and "Yahoo" in got.meaning
    assert any("google" in s for s in got.sources) and any("yahoo" in s for s in got.sources)


def test_unregistered_code_says_so():
    got = explain(None, "5.7.509")
    assert "5.7.509" in got.meaning and "not in the IANA registry" in got.meaning
    assert data().registry_url in got.sources


def test_registry_sources_name_the_defining_rfc():
    assert explain(None, "5.7.26").sources[-1] == "https://www.rfc-editor.org/rfc/rfc7372"
    assert explain(None, "5.1.1").sources[-1] == "https://www.rfc-editor.org/rfc/rfc3463"
    assert explain("521", None).sources == ("https://www.rfc-editor.org/rfc/rfc7504",)


# --- severity -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply,enhanced,severity,label",
    [
        (None, "2.1.5", "success", "Success"),
        (None, "4.2.2", "temporary", "Temporary failure"),
        (None, "5.2.2", "permanent", "Permanent failure"),
        ("250", None, "success", "Success"),
        ("451", None, "temporary", "Temporary failure"),
        ("553", None, "permanent", "Permanent failure"),
        ("550", "4.7.0", "temporary", "Temporary failure"),  # the enhanced class decides
        ("354", None, "unknown", None),
    ],
)
def test_severity_follows_the_class(reply, enhanced, severity, label):
    got = explain(reply, enhanced)
    assert got.severity == severity
    if label:
        assert got.meaning.startswith(label + ":")


def test_same_detail_differs_only_by_class():
    temp, perm = explain(None, "4.2.2"), explain(None, "5.2.2")
    assert temp.meaning.split(": ", 1)[1] == perm.meaning.split(": ", 1)[1]
    assert temp.meaning.startswith("Temporary failure:") and perm.meaning.startswith("Permanent failure:")
    assert (temp.severity, perm.severity) == ("temporary", "permanent")
    assert temp.reason == perm.reason == "mailbox_full"


# --- actions follow the help article ------------------------------------------

# The article's own table rows, and the key words of its advice for each.
ARTICLE = [
    ("421", "4.7.28", ["again later", "SPF", "DKIM"]),
    ("550", None, ["verify", "email address", "another channel"]),
    ("550", "5.1.1", ["Confirm", "email address", "update the contact"]),
    ("550", "5.7.1", ["SPF", "DKIM", "IT team", "blocking"]),
    ("552", "5.2.2", ["again later", "another channel"]),
    ("554", "5.4.4", ["again later", "mail server settings"]),
    ("554", "5.4.7", ["again later", "another email address or channel"]),
]


@pytest.mark.parametrize("reply,enhanced,words", ARTICLE)
def test_action_matches_article_advice(reply, enhanced, words):
    action = explain(reply, enhanced).action
    for word in words:
        assert word.lower() in action.lower(), (word, action)


@pytest.mark.parametrize(
    "severity,reason,expected",
    [
        ("temporary", "other", "Try sending again later."),
        ("temporary", "no_such_reason", "Try sending again later."),
        ("success", "user_unknown", data().actions["success"]["default"]),
        ("bogus", "other", data().actions["unknown"]["default"]),
    ],
)
def test_action_falls_back_to_defaults(severity, reason, expected):
    assert action_for(severity, reason) == expected


# --- stays light ---------------------------------------------------------------


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import app.codes.registry, sys\n"
        "app.codes.registry.explain('550', '5.1.1')\n"
        "heavy = [m for m in ('torch', 'chromadb', 'gradio', 'langchain') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
