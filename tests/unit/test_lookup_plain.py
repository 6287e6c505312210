"""`bouncebot lookup` prints the look-up contract without pydantic (``app.answering.lookup_plain``):
its object must be the contract's JSON byte for byte, and its text the renderer's lines from the
models, for every input shape the tests know (questions, pasted bounces of every kind, capped
texts, codes several articles' tables hold)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.answering import render
from app.answering.contract import Lookup
from app.answering.lookup_plain import LookupView, lookup_data
from app.answering.services import lookup_contract
from app.codes.table import CodeTable

from ..fakes import KB, ROOT

DATA = Path(__file__).parent / "data"
FILES = sorted(p for d in ("kinds", "bounce_shapes") for p in (DATA / d).iterdir() if p.name != "README.md")


def _dsn(recipients: int) -> str:
    """A delivery-status report naming ``recipients`` failed recipients (past the cap of 100)."""
    blocks = "".join(f"Final-Recipient: rfc822; user{i}@example.net\nAction: failed\nStatus: 5.{i % 3}.1\n"
                     f"Diagnostic-Code: smtp; 55{i % 3} 5.{i % 3}.1 no such user\n\n" for i in range(recipients))
    return ("From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
            "--b\nContent-Type: text/plain\n\nThe mail could not be delivered.\n\n"
            f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n{blocks}--b--\n")


TEXTS = [
    ("exact", "550 5.1.1"),
    ("exact, other shape", "Remote server said 550 #5.1.1"),
    ("exact and not in the table", "421 4.7.28 and 550 5.7.26 and 421 4.7.0"),
    ("reply code alone", "554"),
    ("enhanced code alone", "5.7.1"),
    ("no codes", "nothing here 10.5.1.1"),
    ("empty", ""),
    ("non-ASCII", "ünïcode 550 5.1.1 — “quotes” \u2028 tab\there"),
    ("codes capped", " ".join(f"550 5.1.{i}" for i in range(60))),
    ("recipients capped", _dsn(120)),
]
QUESTIONS = [json.loads(line)["question"] for name in ("dev.jsonl", "test.jsonl")
             for line in (ROOT / "evals" / "datasets" / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def table() -> CodeTable:
    return CodeTable.from_kb(KB)


@pytest.fixture(scope="module")
def two_article_table(tmp_path_factory) -> CodeTable:
    kb = tmp_path_factory.mktemp("kb")
    shutil.copy(KB / "common-email-delivery-errors.md", kb)
    shutil.copytree(DATA / "zendesk", kb / "export")
    return CodeTable.from_kb(kb)


def _same(table: CodeTable, text: str) -> None:
    data = lookup_data(table, text)
    model = lookup_contract(table, text)
    dump = json.dumps(model.model_dump(mode="json"), ensure_ascii=False)
    assert json.dumps(data, ensure_ascii=False) == dump  # byte for byte, key order included
    assert Lookup.model_validate(data) == model  # and the contract's own types accept it
    assert render.lookup_text(LookupView(data)) == render.lookup_text(model)


@pytest.mark.parametrize("text", [t for _, t in TEXTS], ids=[n for n, _ in TEXTS])
def test_the_plain_object_is_the_contracts_json(table, text):
    _same(table, text)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_pasted_bounce_shape_is_the_contracts_json(table, path):
    _same(table, path.read_bytes().decode("utf-8", "replace"))


def test_every_eval_question_is_the_contracts_json(table):
    assert len(QUESTIONS) > 100
    for question in QUESTIONS:
        _same(table, question)


@pytest.mark.parametrize("text", ["What does 552-5.2.2 mean?", "5.7.1", "550 5.1.1", "552"])
def test_rows_of_several_articles_are_the_contracts_json(two_article_table, text):
    _same(two_article_table, text)


def test_the_cases_cover_what_they_claim(table, two_article_table):
    capped = lookup_data(table, dict(TEXTS)["codes capped"])["limits"]
    assert capped["truncated"] and capped["codes_found"] == 60 and capped["codes_examined"] == 50
    many = lookup_data(table, dict(TEXTS)["recipients capped"])
    assert many["limits"]["recipients_found"] == 120 and len(many["recipients"]) == 100
    assert many["recipients"][0]["verdict"] is not None and many["message_kind"] == "failure"
    (code,) = lookup_data(two_article_table, "What does 552-5.2.2 mean?")["codes"]
    assert len(code["rows"]) == 2
    assert {c["match"] for q in QUESTIONS for c in lookup_data(table, q)["codes"]} == {"exact", "none"}


def test_the_view_reads_like_the_models_and_is_read_only(table):
    view = LookupView(lookup_data(table, "550 5.1.1 and 421 4.7.0"))
    exact, other = view.codes
    assert exact.row.code == "550-5.1.1" and exact.rows[0].article and exact.explanation is None
    assert other.match == "none" and other.related[0].shares and other.explanation.basis
    assert view.limits.codes_found == 2 and view.recipients[0].verdict.hard is True and view.message_kind is None
    with pytest.raises(AttributeError):
        view.not_a_field
    with pytest.raises(AttributeError):
        view.text = "changed"
