"""Look-up and bounce parsing cost time linear in the input, and the work per
request is capped, with the cap stated wherever the result is read.

The timing tests compare the CPU time of the same work on an input n and 4n
codes (or recipients) long, the best of three runs each: linear work takes
about 4 times as long, quadratic work about 16 times. The bound of 8 leaves
room for noise on a busy machine; no test asserts an absolute time.
"""

from __future__ import annotations

import gc
import itertools
import time
from types import SimpleNamespace

import pytest

import app.codes.bounce
import app.codes.table
import app.codes.registry
from app.answering.answerer import Answerer
from app.codes.bounce import MAX_RECIPIENTS, parse_bounce
from app.codes.find import find_codes
from app.codes.table import MAX_CODES, CodeTable

from ..conftest import KB

GROWTH = 4  # the larger input is this many times the smaller one
RATIO = 8  # linear: about 4; quadratic: about 16


# -- inputs ----------------------------------------------------------------------

_REPLIES = {"5": ("550", "551", "552", "553", "554"), "4": ("421", "450", "451", "452")}


def pairs(n: int) -> list[str]:
    """``n`` distinct code pairs ('550 5.0.0', '451 4.3.2', ...)."""
    gen = (
        f"{reply} {cls}.{subject}.{detail}"
        for cls, subject, detail in itertools.product("54", range(8), range(1000))
        for reply in _REPLIES[cls]
        if (reply, subject, detail) != ("550", 1, 1)  # the question's own first code
    )
    return list(itertools.islice(gen, n))


def question(n: int) -> str:
    """A question naming ``n`` distinct codes, the first one in the table."""
    return "What do these mean? 550 5.1.1 and " + " and ".join(pairs(n - 1))


def paste(n: int) -> str:
    """A Postfix-style bounce paste: ``n`` failed recipients, each its own code."""
    head = "From: MAILER-DAEMON@relay.example.net\nTo: agent@help.example.com\nSubject: Undelivered Mail\n\n"
    lines = [
        f"<user{i}@example.org>: host mx.example.org said: {p} <user{i}@example.org>... User unknown\n"
        "    (in reply to RCPT TO command)"
        for i, p in enumerate(pairs(n))
    ]
    return head + "This is the mail system at host relay.example.net.\n\n" + "\n".join(lines) + "\n"


def dsn(n: int) -> str:
    """An RFC 3464-style paste: ``n`` delivery-status blocks, each its own code."""
    blocks = [
        f"Final-Recipient: rfc822; user{i}@example.org\nAction: failed\nStatus: {p.split()[1]}\n"
        f"Diagnostic-Code: smtp; {p} user unknown\n"
        for i, p in enumerate(pairs(n))
    ]
    head = "From: MAILER-DAEMON@relay.example.net\nTo: agent@help.example.com\nSubject: Undelivered Mail\n\n"
    return head + "This is the mail system.\n\nReporting-MTA: dns; relay.example.net\n\n" + "\n".join(blocks)


# -- measuring -------------------------------------------------------------------


def cpu_seconds(work, arg, runs: int = 3) -> float:
    """The least CPU time ``work(arg)`` takes in ``runs`` runs (cold caches)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            app.codes.registry._explain.cache_clear()
            start = time.process_time()
            work(arg)
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best


def growth(work, make, n: int) -> tuple[float, float, float]:
    """(time on n, time on GROWTH * n, their ratio)."""
    work(make(8))  # load the data files outside the measurement
    small, large = make(n), make(GROWTH * n)
    t_small, t_large = cpu_seconds(work, small), cpu_seconds(work, large)
    return t_small, t_large, t_large / max(t_small, 1e-6)


@pytest.fixture(scope="module")
def table():
    return CodeTable.from_kb(KB)


@pytest.fixture(scope="module")
def uncapped():
    """A table that examines every code, so every stage is measured at full size."""
    return CodeTable.from_kb(KB, max_codes=None)


@pytest.fixture
def all_recipients(monkeypatch):
    """No recipient cap, so the bounce parser is measured at full size."""
    monkeypatch.setattr(app.codes.bounce, "MAX_RECIPIENTS", 10**9)


# -- linear time -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["capped", "uncapped"])
def test_question_lookup_grows_linearly(table, uncapped, which):
    t = table if which == "capped" else uncapped
    small, large, ratio = growth(t.analyse, question, 2000)
    assert ratio < RATIO, f"2k codes {small:.3f}s, 8k codes {large:.3f}s: x{ratio:.1f}"


def test_finding_codes_grows_linearly():
    small, large, ratio = growth(find_codes, question, 2000)
    assert ratio < RATIO, f"2k codes {small:.3f}s, 8k codes {large:.3f}s: x{ratio:.1f}"


@pytest.mark.parametrize("make", [paste, dsn], ids=["paste", "dsn"])
def test_bounce_lookup_grows_linearly(uncapped, all_recipients, make):
    small, large, ratio = growth(uncapped.analyse, make, 100)
    assert ratio < RATIO, f"100 recipients {small:.3f}s, 400 {large:.3f}s: x{ratio:.1f}"


@pytest.mark.parametrize("make", [paste, dsn], ids=["paste", "dsn"])
def test_bounce_parsing_grows_linearly(all_recipients, make):
    small, large, ratio = growth(parse_bounce, make, 100)
    assert ratio < RATIO, f"100 recipients {small:.3f}s, 400 {large:.3f}s: x{ratio:.1f}"


def test_provider_markers_are_scanned_once_per_text(uncapped, monkeypatch):
    """A deterministic count: the provider-marker scan reads the text once,
    not once per code (the quadratic look-up of the issue)."""
    scanned: list[int] = []
    original = app.codes.registry.named_providers

    def counting(text):
        scanned.append(len(text or ""))
        return original(text)

    monkeypatch.setattr(app.codes.registry, "named_providers", counting)
    monkeypatch.setattr(app.codes.table, "named_providers", counting, raising=False)
    for text in (question(300), paste(60), dsn(60)):
        scanned.clear()
        uncapped.analyse(text)
        assert sum(scanned) <= len(text), f"{sum(scanned)} characters scanned for a {len(text)}-character text"


# -- caps, stated ----------------------------------------------------------------


def test_default_caps_are_sensible():
    assert 20 <= MAX_CODES <= 100
    assert 20 <= MAX_RECIPIENTS <= 200


def test_codes_past_the_cap_are_counted_not_examined(table):
    result = table.analyse(question(MAX_CODES + 25))
    assert len(result.matches) == MAX_CODES
    assert result.matches[0].exact  # in order of appearance: the first codes are examined
    assert result.limits.truncated
    assert result.limits.as_contract() == {
        "codes_found": MAX_CODES + 25, "codes_examined": MAX_CODES,
        "recipients_found": result.limits.recipients_found,
        "recipients_examined": result.limits.recipients_examined,
        "truncated": True,
    }


def test_nothing_cut_says_so(table):
    matches, recipients = result = table.analyse("what does 550 5.1.1 mean?")
    assert len(matches) == 1 and not result.limits.truncated
    assert result.limits.as_contract()["codes_found"] == result.limits.as_contract()["codes_examined"] == 1


def test_recipients_past_the_cap_are_counted_not_read(table):
    for make in (paste, dsn):
        result = table.analyse(make(MAX_RECIPIENTS + 30))
        assert len(result.recipients) == MAX_RECIPIENTS, make.__name__
        assert result.recipients[0].recipient == "user0@example.org"
        assert (result.limits.recipients_found, result.limits.recipients_examined) == (
            MAX_RECIPIENTS + 30, MAX_RECIPIENTS,
        ), make.__name__
        assert len(result.matches) == MAX_CODES and result.limits.codes_found == MAX_RECIPIENTS
        assert result.limits.truncated


def test_lookup_fast_path_is_capped_too(table):
    assert len(table.lookup(question(MAX_CODES * 3))) == MAX_CODES


class _NoPassages:
    """A retriever that finds nothing (these answers need no index)."""

    def search(self, question, k=3, kinds=None):
        return SimpleNamespace(best_similarity=0.0, hits=[], vector=None)


@pytest.fixture(scope="module")
def answerer(table):
    return Answerer(table, _NoPassages)


def test_answer_states_the_code_cap(answerer):
    text = answerer.ask(question(10_000)).answer
    assert f"Only the first {MAX_CODES} of the 10,000 codes in the message were looked up" in text
    assert text.count("**550-5.1.1**") == 1


def test_answer_states_the_recipient_cap(answerer):
    text = answerer.ask(dsn(MAX_RECIPIENTS + 30)).answer
    assert f"Only the first {MAX_RECIPIENTS} of the {MAX_RECIPIENTS + 30} failed recipients" in text
    assert f"Only the first {MAX_CODES} of the {MAX_RECIPIENTS} codes" in text


def test_answer_without_cuts_has_no_notice(answerer):
    assert "Only the first" not in answerer.ask("what does 550 5.1.1 mean?").answer
