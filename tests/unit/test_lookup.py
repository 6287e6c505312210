"""The exact-match contract of the code look-up, against the real KB."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.codes.table import CodeTable
from app.codes.tool import make_lookup_tool

from ..conftest import KB, ROOT
from .test_kb_source import seed_table

SEED_ROWS = {code: (meaning, action) for code, meaning, action in seed_table()[1]}


@pytest.fixture(scope="module")
def table():
    return CodeTable.from_kb(KB)


# (text, [(normalised code, matched row code or None)])
CASES = [
    ("550 5.1.1", [("550-5.1.1", "550-5.1.1")]),
    ("550-5.1.1", [("550-5.1.1", "550-5.1.1")]),
    ("5.1.1", [("5.1.1", "550-5.1.1")]),
    ("550", [("550", "550")]),
    ("421-4.7.28", [("421-4.7.28", "421-4.7.28")]),
    ("4.7.28", [("4.7.28", "421-4.7.28")]),
    ("550 #5.7.1", [("550-5.7.1", "550-5.7.1")]),
    ("5.7.1", [("5.7.1", "550-5.7.1")]),
    ('552, "5.2.2"', [("552-5.2.2", "552-5.2.2")]),
    ("(#5.2.2)", [("5.2.2", "552-5.2.2")]),
    ("554 5.4.4", [("554-5.4.4", "554-5.4.4")]),
    ("5.4.7", [("5.4.7", "554-5.4.7")]),
    # never exact
    ("550 5.7.26", [("550-5.7.26", None)]),
    ("450 4.2.2", [("450-4.2.2", None)]),
    ("554", [("554", None)]),  # two rows start with 554: not one answer
    ("421", [("421", None)]),  # the row is 421-4.7.28, not bare 421
    ("552", [("552", None)]),
    ("550 5.1.10", [("550-5.1.10", None)]),
    ("5.1.10", [("5.1.10", None)]),
    ("452 5.2.2", [("452-5.2.2", None)]),  # the pair must equal the row
    ("550 5.2.2", [("550-5.2.2", None)]),
    ("4.2.2", [("4.2.2", None)]),
    ("551 5.1.1", [("551-5.1.1", None)]),
    ("10.5.1.1", []),
    ("v5.2.2", []),
    ("550 5.1.1 and 550 5.7.26", [("550-5.1.1", "550-5.1.1"), ("550-5.7.26", None)]),
    # look-alike characters: one code, matched as its ASCII spelling
    ("550\u20105.1.1", [("550-5.1.1", "550-5.1.1")]),  # U+2010 hyphen: one exact row, not 550 and 5.1.1
    ("550\u20135.1.1", [("550-5.1.1", "550-5.1.1")]),  # en dash
    ("550\u22125.1.1", [("550-5.1.1", "550-5.1.1")]),  # minus sign
    ("\uff15\uff15\uff10-\uff15.\uff11.\uff11", [("550-5.1.1", "550-5.1.1")]),  # fullwidth digits
    ("\uff15\uff15\uff10\uff0d\uff15\uff0e\uff11\uff0e\uff11", [("550-5.1.1", "550-5.1.1")]),
    ("550\u00a05.1.1", [("550-5.1.1", "550-5.1.1")]),  # no-break space
    ("421\u20104.7.28", [("421-4.7.28", "421-4.7.28")]),
    ("\uff15.\uff17.\uff11", [("5.7.1", "550-5.7.1")]),
    ("550\u20105.7.26", [("550-5.7.26", None)]),  # still never exact
]


@pytest.mark.parametrize("text,expected", CASES)
def test_exact_only_by_the_rules(table, text, expected):
    got = [(m.found.code, m.row.code if m.row else None) for m in table.lookup(text)]
    assert got == expected


@pytest.mark.parametrize("code", sorted(SEED_ROWS))
def test_exact_rows_are_the_seed_words_verbatim(table, code):
    (m,) = table.lookup(f"What does {code} mean?")
    c = m.as_contract()
    assert c["match"] == "exact"
    assert c["row"] == {"code": code, "meaning": SEED_ROWS[code][0], "action": SEED_ROWS[code][1],
                        "section": "Common delivery errors", "url": m.row.url}
    assert c["row"]["url"].endswith("#common-delivery-errors")


def test_not_exact_carries_no_row(table):
    (m,) = table.lookup("550 5.7.26")
    c = m.as_contract()
    assert {k: c[k] for k in ("text", "code", "match", "row", "severity")} == {
        "text": "550 5.7.26", "code": "550-5.7.26", "match": "none", "row": None, "severity": "permanent",
    }


# (text, explanation basis or None, related row codes in order, reason)
UNTABLED = [
    ("550 5.7.26", "registry", ["550-5.7.1", "550", "550-5.1.1"], "authentication"),
    ("550 5.7.26 from mx.google.com", "provider", ["550-5.7.1", "550", "550-5.1.1"], "authentication"),
    ("554", "reply-code", ["554-5.4.4", "554-5.4.7"], "other"),
    ("421", "reply-code", ["421-4.7.28"], "system"),
    ("450 4.2.2", "registry", [], "mailbox_full"),
    ("5.4.1", "registry", ["554-5.4.4", "554-5.4.7"], "network"),
    ("5.7.509", "class-subject", ["550-5.7.1"], "policy"),
    ("551 5.1.1", "registry", ["550-5.1.1"], "user_unknown"),
]


@pytest.mark.parametrize("text,basis,related,reason", UNTABLED)
def test_untabled_codes_get_general_guidance_and_related_rows(table, text, basis, related, reason):
    (m,) = table.lookup(text)
    c = m.as_contract()
    assert c["match"] == "none" and c["row"] is None
    assert c["explanation"]["basis"] == basis and c["explanation"]["meaning"] and c["explanation"]["sources"]
    assert [r["code"] for r in c["related"]] == related
    assert all(r["shares"] for r in c["related"])
    assert c["reason"] == reason
    table_meanings = {r.meaning for r in table.rows}
    assert c["explanation"]["meaning"] not in table_meanings  # general words, never the table's


def test_exact_codes_carry_no_explanation_but_a_reason(table):
    (m,) = table.lookup("550 5.1.1")
    c = m.as_contract()
    assert c["explanation"] is None and c["related"] == [] and c["reason"] == "user_unknown"


def test_langchain_tool_gives_the_same_contract(table):
    tool = make_lookup_tool(table)
    out = json.loads(tool.invoke({"text": "bounced with 552 5.2.2 and 450 4.2.2"}))
    from app.answering.services import lookup_contract

    expected = lookup_contract(table, "bounced with 552 5.2.2 and 450 4.2.2").model_dump(mode="json")
    assert out == {"codes": expected["codes"], "limits": expected["limits"]}  # what `lookup --json` prints
    assert [c["match"] for c in out["codes"]] == ["exact", "none"]


def test_lookup_contract_is_the_typed_lookup_with_each_row_located(table):
    from app.answering.contract import Lookup
    from app.answering.services import lookup_contract

    text = "bounced with 552 5.2.2 and 550 5.7.26"
    result = lookup_contract(table, text)
    assert isinstance(result, Lookup) and Lookup.model_validate(result.model_dump(mode="json")) == result
    d = result.model_dump(mode="json")
    assert set(d) == {"text", "codes", "recipients", "limits", "message_kind"} and d["text"] == text
    assert d["codes"] == [m.as_contract() for m in table.lookup(text)]
    rows = {r.code: r for r in table.rows}
    exact, untabled = result.codes
    assert (exact.row.section, exact.row.url) == (rows["552-5.2.2"].section, rows["552-5.2.2"].url)
    assert exact.row.meaning == SEED_ROWS["552-5.2.2"][0] and exact.row.action == SEED_ROWS["552-5.2.2"][1]
    assert untabled.related and all(r.url == rows[r.code].url for r in untabled.related)
    assert (d["limits"]["codes_found"], d["limits"]["codes_examined"], d["limits"]["truncated"]) == (2, 2, False)


def test_lookup_needs_no_torch_no_chroma():
    code = (
        "import sys; from app.codes.table import CodeTable; from app.config import Settings; "
        "t = CodeTable.from_kb(Settings().kb_dir); assert t.lookup('550 5.1.1')[0].exact; "
        "bad = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'gradio') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


DSN = """From: MAILER-DAEMON@relay.example.net
To: agent@help.example.com
Subject: Undelivered Mail Returned to Sender
Content-Type: text/plain

This is the mail system at host relay.example.net.
<pat@example.org>: host mx.example.org said: 550 5.0.0 <pat@example.org>... User unknown
    (in reply to RCPT TO command)

Reporting-MTA: dns; relay.example.net
Final-Recipient: rfc822; pat@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <pat@example.org>: Recipient address rejected: User unknown
"""


def test_a_bounce_message_counts_its_decisive_code_not_every_token(table):
    matches, recipients = table.analyse(DSN)
    assert [r.to_dict()["recipient"] for r in recipients] == ["pat@example.org"]
    assert [(m.found.code, m.row.code if m.row else None) for m in matches] == [("550-5.1.1", "550-5.1.1")]
    assert [m.found.code for m in table.lookup(DSN)] == ["550-5.1.1"]  # the fast path agrees


def test_contract_text_is_the_users_own_spelling(table):
    (m,) = table.lookup("it said \uff15\uff15\uff10-\uff15.\uff11.\uff11 twice")
    c = m.as_contract()
    assert (c["text"], c["code"], c["match"]) == ("\uff15\uff15\uff10-\uff15.\uff11.\uff11", "550-5.1.1", "exact")


def test_a_question_counts_every_code(table):
    matches, _ = table.analyse("what do 550 5.1.1 and 550 5.7.26 mean?")
    assert [m.found.code for m in matches] == ["550-5.1.1", "550-5.7.26"]
