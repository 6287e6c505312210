"""Feedback in SQLite, and its export as eval cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.feedback import BadFeedback, FeedbackStore, export_down
from evals.run import load_cases

from .conftest import ROOT


def test_store_and_export(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add("up", "what is 5.2.2", "**552-5.2.2** ...", answered=True, codes=[{"code": "5.2.2"}])
    down = store.add("down", "how do I merge conversations?", "From the article ...", "wrong: should refuse",
                     answered=True, sources=[{"section": "Introduction"}])
    assert store.count() == 2 and [f.rating for f in store.all()] == ["up", "down"]
    out = tmp_path / "cases.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        assert export_down(store, f) == 1
    (case,) = load_cases([str(out)])  # the eval runner reads it as a case
    assert case["id"] == f"feedback-{down:05d}" and case["category"] == "feedback"
    assert case["question"] == "how do I merge conversations?"
    assert case["feedback"]["comment"] == "wrong: should refuse"
    assert case["feedback"]["sources"] == [{"section": "Introduction"}]


@pytest.mark.parametrize(
    "rating,question,comment,phrase",
    [("meh", "q", "", "rating"), ("up", "  ", "", "question"), ("down", "q", "x" * 2001, "comment")],
)
def test_bad_feedback_is_refused(tmp_path, rating, question, comment, phrase):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    with pytest.raises(BadFeedback, match=phrase):
        store.add(rating, question, "a", comment)
    assert store.count() == 0


def test_survives_reopening(tmp_path):
    FeedbackStore(tmp_path / "f.sqlite3").add("down", "q", "a")
    assert FeedbackStore(tmp_path / "f.sqlite3").count() == 1


def test_cli_export(tmp_path):
    db = tmp_path / "f.sqlite3"
    FeedbackStore(db).add("down", "is 550 bad?", "...", "too vague")
    env = {**os.environ, "BOUNCEBOT_FEEDBACK_DB": str(db)}
    bin_ = Path(sys.executable).parent / "bouncebot"
    r = subprocess.run([str(bin_), "feedback", "export"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0 and "Exported 1" in r.stderr
    assert json.loads(r.stdout)["question"] == "is 550 bad?"
    r = subprocess.run([str(bin_), "feedback", "export"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "BOUNCEBOT_FEEDBACK_DB": str(tmp_path / "none.sqlite3")})
    assert r.returncode == 1 and "No feedback yet" in r.stderr
