"""`bouncebot lookup` as the one-shot process a user starts: what it imports (the modules it never
needs stay out, so the start-up win cannot silently regress), and how it ends (it skips the
interpreter's tear-down only when nothing needs it). Behaviour, not timing: the measured figures
are in the README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

BIN = Path(sys.executable).parent / "bouncebot"
EML = ROOT / "tests" / "unit" / "data" / "bounce_shapes" / "exim.eml"

# Never in any look-up: the model, the store, the web stack, the language-model stack, the answerer.
NEVER = ["torch", "chromadb", "onnxruntime", "numpy", "tokenizers", "transformers", "sentence_transformers",
         "fastapi", "starlette", "uvicorn", "gradio", "httpx", "langchain", "langchain_core", "rank_bm25",
         "sqlite3", "prometheus_client", "concurrent.futures", "asyncio", "logging", "importlib.metadata",
         "app.search", "app.web", "app.llm", "app.storage", "app.insights", "app.answering.answerer"]
# Kept out of `lookup --json` of a typed text too: pydantic (the object is built without it), the
# MIME parser and the email package, importlib.resources (data files are read from their folder).
PLAIN = ["pydantic", "pydantic_core", "app.answering.contract", "app.answering.render", "email",
         "importlib.resources"]

CASES = [
    (["lookup", "--json", "421 4.7.28"], NEVER + PLAIN),
    (["lookup", "--json", "Remote server said 550 #5.1.1 and 421 4.7.0"], NEVER + PLAIN),
    # the text is rendered by app.answering.render from the same object (its contract types are annotations)
    (["lookup", "550 5.1.1"], NEVER + ["pydantic", "pydantic_core", "app.answering.contract", "email",
                                       "importlib.resources"]),
    (["lookup", "--json", "--file", str(EML)], NEVER + ["pydantic", "app.answering.contract"]),
]


def imported(args: list[str]) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules a fresh ``python -m app.cli ARGS`` imports (from ``-X importtime``), and the run."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "app.cli", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "app.codes.table" in names  # the listing is real
    return names, r


@pytest.mark.parametrize("args, kept_out", CASES, ids=[" ".join(a[:2]) + " " + Path(a[-1]).name for a, _ in CASES])
def test_a_lookup_process_imports_none_of_what_it_never_needs(args, kept_out):
    names, r = imported(args)
    bad = sorted(m for m in kept_out if m in names or any(n.startswith(m + ".") for n in names))
    assert not bad, bad
    assert r.stdout.strip()


def test_a_lookup_process_prints_what_the_contract_prints():
    from app.answering.render import lookup_text
    from app.answering.services import lookup_contract
    from app.codes.table import CodeTable

    text = "Remote server said 550 #5.1.1 and 421 4.7.0"
    table = CodeTable.from_kb(ROOT / "kb")
    model = lookup_contract(table, text)
    for args, expected in ((["lookup", "--json", text], json.dumps(model.model_dump(mode="json"), ensure_ascii=False)),
                           (["lookup", text], lookup_text(model))):
        r = subprocess.run([str(BIN), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stdout, r.stderr) == (0, expected + "\n", "")


@pytest.mark.parametrize("args, code, says", [
    (["lookup"], 2, "Give text to look up"),
    (["lookup", "--file", "/nonexistent/bounce.eml"], 1, "/nonexistent/bounce.eml"),
])
def test_a_failed_lookup_still_exits_with_its_code_and_message(args, code, says):
    r = subprocess.run([str(BIN), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == code and says in r.stderr and r.stdout == ""


def test_exit_handlers_and_profilers_still_run(tmp_path):
    # An exit handler someone registered runs: the process then exits the normal way.
    code = ("import atexit, sys; atexit.register(lambda: print('handler ran', file=sys.stderr)); "
            "sys.argv = ['bouncebot', 'lookup', '550']; from app.cli import main; sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "handler ran" in r.stderr and "550" in r.stdout
    # A profiler sees the whole run and writes its file.
    out = tmp_path / "lookup.prof"
    r = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "app.cli", "lookup", "550"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.stat().st_size > 0

