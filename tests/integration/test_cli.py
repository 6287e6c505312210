"""The ``bouncebot`` command as a user runs it: real processes, exit codes,
messages that say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT, kb_documents

BIN = Path(sys.executable).parent / "bouncebot"


def run(args, env_extra=None, stdin=None, timeout=180):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [str(BIN), *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


def index_env(settings):
    return {
        "BOUNCEBOT_KB_DIR": str(settings.kb_dir),
        "BOUNCEBOT_INDEX_DIR": str(settings.index_dir),
        "BOUNCEBOT_COLLECTION": settings.collection,
    }


def test_lookup_json():
    r = run(["lookup", "--json", "Remote server said 550 #5.1.1 and 421 4.7.0"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(c["code"], c["match"]) for c in out["codes"]] == [("550-5.1.1", "exact"), ("421-4.7.0", "none")]
    assert out["codes"][0]["row"]["action"] == (
        "Confirm the customer’s email address and update the contact before sending again."
    )
    from app.answering.contract import Lookup

    assert Lookup.model_validate(out).text == "Remote server said 550 #5.1.1 and 421 4.7.0"


def test_lookup_plain_is_the_renderers_lines_in_the_shared_words():
    from app.answering.render import WORDING, lookup_text
    from app.answering.services import lookup_contract
    from app.codes.table import CodeTable

    text = "Remote server said 550 #5.1.1 and 421 4.7.0"
    r = run(["lookup", text])
    assert r.returncode == 0, r.stderr
    assert r.stdout == lookup_text(lookup_contract(CodeTable.from_kb(ROOT / "kb"), text)) + "\n"
    lines = r.stdout.splitlines()
    assert lines[0] == "550-5.1.1  exact: table row 550-5.1.1 (permanent failure)"
    assert lines[1].startswith(f"  {WORDING['meaning_label']}: The email address is invalid")
    assert lines[3] == "421-4.7.0  not in the article's table (temporary failure)"
    assert lines[4].startswith("  General guidance, not from the article (from the IANA registry")
    assert lines[-1] == "  Closest in the article's table (different codes, not an exact match): 421-4.7.28."


def test_lookup_plain_and_stdin():
    r = run(["lookup", "-"], stdin="bounce: 552-5.2.2 mailbox full")
    assert r.returncode == 0
    assert "exact: table row 552-5.2.2" in r.stdout
    assert "What you can do: Try again later or contact the customer through another channel." in r.stdout
    r = run(["lookup", "nothing here 10.5.1.1"])
    assert r.returncode == 0 and "No SMTP reply code" in r.stdout


def test_lookup_command_never_imports_the_model_or_the_store():
    # Behaviour, not timing (the measured speed is in `make bench`).
    code = (
        "import sys; from app import cli; assert cli.main(['lookup', '550']) == 0; "
        "bad = [m for m in ('torch', 'chromadb', 'gradio', 'langchain', 'langchain_core', 'onnxruntime', "
        "'tokenizers', 'numpy', 'rank_bm25') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


@pytest.mark.parametrize("argv, not_imported", [
    # A code alone: no answerer, no search layer, no MIME parser (a one-shot process pays for each import).
    (["lookup", "550-5.1.1"], ["app.answering.answerer", "app.search", "app.search.guard", "email.parser",
                               "email.policy", "concurrent.futures"]),
    (["lookup", "--json", "550 5.7.26"], ["app.answering.answerer", "app.answering.render", "app.search",
                                          "email.parser"]),
])
def test_lookup_imports_only_what_its_input_needs(argv, not_imported):
    code = (
        "import sys, io, contextlib; from app import cli\n"
        f"with contextlib.redirect_stdout(io.StringIO()): assert cli.main({argv!r}) == 0\n"
        f"bad = [m for m in {not_imported!r} if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_lookup_of_a_pasted_email_still_parses_it():
    # The MIME parser is imported on first use: a whole RFC 3464 email is still read as one.
    eml = ("From: MAILER-DAEMON@example.org\nTo: help@example.com\nSubject: Undelivered Mail Returned to Sender\n"
           "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
           "--b\nContent-Type: text/plain\n\nThe mail could not be delivered.\n\n"
           "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
           "Final-Recipient: rfc822; ann@example.net\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <ann@example.net>: Recipient address rejected\n\n--b--\n")
    r = run(["lookup", "--json", "-"], stdin=eml)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(x["recipient"], x["status"], x["reply_code"]) for x in out["recipients"]] == [
        ("ann@example.net", "5.1.1", "550")]
    assert out["message_kind"] == "failure" and out["codes"][0]["match"] == "exact"


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_exits_2(question):
    r = run(["ask", question])
    assert r.returncode == 2
    assert "question is empty" in r.stderr


def test_missing_index_says_how_to_fix(tmp_path):
    r = run(["ask", "how do I reduce bounces?"], {"BOUNCEBOT_INDEX_DIR": str(tmp_path / "none")})
    assert r.returncode == 3
    assert "bouncebot ingest" in r.stderr


def test_bad_setting_is_reported():
    r = run(["lookup", "550"], {"BOUNCEBOT_PORT": "eighty"})
    assert r.returncode == 2 and "BOUNCEBOT_PORT" in r.stderr


def test_malformed_article_exits_4_with_file_and_line(kb_copy, tmp_path):
    (kb_copy / "broken.md").write_text("---\ntitle: [oops\n---\ntext\n", encoding="utf-8")
    r = run(["ingest"], {"BOUNCEBOT_KB_DIR": str(kb_copy), "BOUNCEBOT_INDEX_DIR": str(tmp_path / "idx")})
    assert r.returncode == 4
    assert "broken.md:2:" in r.stderr and "left as it was" in r.stderr


@pytest.mark.slow
def test_ingest_then_stale_then_ingest(kb_copy, tmp_path):
    env = {"BOUNCEBOT_KB_DIR": str(kb_copy), "BOUNCEBOT_INDEX_DIR": str(tmp_path / "idx")}
    r = run(["ingest"], env)
    assert r.returncode == 0, r.stderr
    assert f"{kb_documents()} added, 0 kept, 0 removed" in r.stdout
    r = run(["ingest"], env)
    assert f"0 added, {kb_documents()} kept, 0 removed" in r.stdout
    (kb_copy / "extra.md").write_text("---\ntitle: Extra\n---\n\nA new article.\n", encoding="utf-8")
    r = run(["ask", "how do I reduce bounces?"], env)
    assert r.returncode == 3 and "out of date" in r.stderr and "bouncebot ingest" in r.stderr


@pytest.mark.slow
def test_ask_json_and_batch(indexed_settings):
    env = index_env(indexed_settings)
    r = run(["ask", "--json", "What does 550-5.7.1 mean?"], env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["answered"] and d["codes"][0]["row"]["code"] == "550-5.7.1"
    from app.answering.contract import Answer

    assert Answer.model_validate(d).to_dict() == d  # the contract's model, as the API sends it
    plain = run(["ask", "What does 550-5.7.1 mean?"], env)
    assert plain.returncode == 0 and plain.stdout == d["answer"] + "\n"  # without --json: the Markdown

    lines = [
        json.dumps({"question": "what does 5.2.2 mean"}),
        json.dumps({"question": "how much is a seat?"}),
        "not json",
        json.dumps({"question": ""}),
        json.dumps({"question": "How do I get off the bounce list?", "id": "x"}),
    ]
    r = run(["ask", "--json", "--batch", "-"], env, stdin="\n".join(lines) + "\n")
    assert r.returncode == 2  # some lines could not be answered, and the rest were
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["codes"][0]["row"]["code"] == "552-5.2.2"
    assert out[1]["answered"] is False
    assert out[2]["line"] == 3 and out[2]["error"]
    assert out[3]["line"] == 4 and "empty" in out[3]["error"]
    assert out[4]["sources"][0]["section"] == "Email address is on a bounce list"


def test_batch_lines_carry_history(indexed_settings):
    env = index_env(indexed_settings)
    history = [{"role": "user", "content": "What does 552-5.2.2 mean?"}, {"role": "assistant", "content": "…"}]
    lines = [
        json.dumps({"question": "ok so what now?", "history": history}),
        json.dumps({"question": "compose a text for the customer", "history": history}),
        json.dumps({"question": "where do I send that request?", "history": history}),
        json.dumps({"question": "ok so what now?", "history": [{"role": "bot", "content": "x"}]}),
    ]
    r = run(["ask", "--json", "--batch", "-"], env, stdin="\n".join(lines) + "\n")
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 2 and len(out) == 4
    assert out[0]["intent"] == "follow_up" and out[0]["codes"][0]["from_history"] is True
    assert out[0]["codes"][0]["row"]["code"] == "552-5.2.2"
    assert out[1]["intent"] == "draft" and out[1]["draft"]["reason"] == "mailbox_full"
    assert out[2]["intent"] == "handoff" and out[2]["handoff"]["mailto"] is None
    assert out[3]["line"] == 4 and "role" in out[3]["error"]
    r = run(["ask", "--json", "--batch", "-"], {**env, "BOUNCEBOT_SUPPORT_EMAIL": "help@sparrowdesk.example"},
            stdin=lines[2] + "\n")
    assert json.loads(r.stdout)["handoff"]["mailto"].startswith("mailto:help@sparrowdesk.example?")


def test_batch_needs_json():
    r = run(["ask", "--batch", "-"], stdin="{}\n")
    assert r.returncode == 2 and "--json" in r.stderr


BOUNCES = ROOT.parent / "shared" / "data" / "bounces" / "emails" / "maildir"


def test_lookup_files_one_object_each_in_order():
    files = [BOUNCES / "bsd" / "lhost-postfix-01.eml", BOUNCES / "dos" / "rhost-google-01.eml",
             BOUNCES / "mac" / "lhost-qmail-01.eml"]
    r = run(["lookup", "--json", "--file", *map(str, files)])
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["file"] for o in out] == list(map(str, files))
    assert out[0]["codes"][0]["row"]["code"] == "550-5.1.1"  # Status: 5.1.1 is decisive
    assert out[0]["recipients"][0]["status"] == "5.1.1" and out[0]["recipients"][0]["decisive"]
    assert out[1]["recipients"][0] == {**out[1]["recipients"][0], "status": "5.2.1", "reply_code": "550"}
    assert out[1]["codes"][0]["match"] == "none" and out[1]["codes"][0]["explanation"]["basis"] == "provider"
    assert all(set(o) == {"file", "codes", "recipients", "limits", "message_kind"} for o in out)
    assert not any(o["limits"]["truncated"] for o in out)


def test_lookup_file_errors():
    r = run(["lookup", "--file", "/nonexistent/bounce.eml"])
    assert r.returncode == 1 and "Cannot read /nonexistent/bounce.eml" in r.stderr
    r = run(["lookup"])
    assert r.returncode == 2 and "--file" in r.stderr


@pytest.mark.slow
def test_ask_about_bounce_files(indexed_settings):
    files = [BOUNCES / "bsd" / "lhost-postfix-01.eml", BOUNCES / "bsd" / "rhost-google-01.eml"]
    r = run(["ask", "--json", "--file", *map(str, files)], index_env(indexed_settings))
    assert r.returncode == 0, r.stderr
    first, second = (json.loads(line) for line in r.stdout.splitlines())
    assert first["codes"][0]["row"]["code"] == "550-5.1.1" and first["answered"] is True
    assert first["recipients"][0]["recipient"] == "r@p351355.pool.example.ne.jp"
    assert second["codes"][0]["code"] == "550-5.2.1" and "General guidance, not from the article" in second["answer"]
