"""Feedback in SQLite, and its export as eval cases."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import app.web.feedback as fb
from app.errors import BadFeedback, BadSetting, BouncebotError, FeedbackFull, FeedbackTooLarge, FeedbackUnavailable
from app.web.feedback import FeedbackLog, export_down
from evals.run import load_cases

from ..conftest import ROOT


def test_store_and_export(tmp_path):
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    feedback_log.add("up", "what is 5.2.2", "**552-5.2.2** ...", answered=True, codes=[{"code": "5.2.2"}])
    down = feedback_log.add("down", "how do I merge conversations?", "From the article ...", "wrong: should refuse",
                     answered=True, sources=[{"section": "Introduction"}])
    assert feedback_log.count() == 2 and [f.rating for f in feedback_log.all()] == ["up", "down"]
    out = tmp_path / "cases.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        assert export_down(feedback_log, f) == 1
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
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    with pytest.raises(BadFeedback, match=phrase):
        feedback_log.add(rating, question, "a", comment)
    assert feedback_log.count() == 0


def test_survives_reopening(tmp_path):
    FeedbackLog(tmp_path / "f.sqlite3").add("down", "q", "a")
    assert FeedbackLog(tmp_path / "f.sqlite3").count() == 1


def test_cli_export(tmp_path):
    db = tmp_path / "f.sqlite3"
    FeedbackLog(db).add("down", "is 550 bad?", "...", "too vague")
    env = {**os.environ, "BOUNCEBOT_FEEDBACK_DB": str(db)}
    bin_ = Path(sys.executable).parent / "bouncebot"
    r = subprocess.run([str(bin_), "feedback", "export"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0 and "Exported 1" in r.stderr
    assert json.loads(r.stdout)["question"] == "is 550 bad?"
    r = subprocess.run([str(bin_), "feedback", "export"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "BOUNCEBOT_FEEDBACK_DB": str(tmp_path / "none.sqlite3")})
    assert r.returncode == 1 and "No feedback yet" in r.stderr


# ---------------------------------------------------------------------------- limits (finding 4)

KB = 1024


def _raises_too_large(feedback_log, field: str, limit: str, **post):
    before = feedback_log.count()
    with pytest.raises(FeedbackTooLarge, match=field) as e:
        feedback_log.add(**{"rating": "down", "question": "q", "answer": "a", **post})
    assert limit in str(e.value) and e.value.field == field
    assert feedback_log.count() == before


@pytest.mark.parametrize(
    "field,post,limit",
    [
        # bytes, not characters: 102,401 two-byte characters are 204,802 bytes
        ("question", {"question": "é" * (100 * KB + 1)}, "204,800 bytes"),
        ("answer", {"answer": "x" * (64 * KB + 1)}, "65,536 bytes"),
        ("answer", {"answer": "x" * 10_000_000}, "65,536 bytes"),  # the 10 MB body the finding stored
        ("comment", {"comment": "x" * 2001}, "2,000 characters"),
        ("codes", {"codes": [{"code": "5.1.1"}] * 101}, "100 items"),
        ("codes", {"codes": [{"code": "x" * (64 * KB)}]}, "65,536 bytes"),
        ("sources", {"sources": [{"text": "x" * (40 * KB)}, {"text": "y" * (40 * KB)}]}, "65,536 bytes"),
    ],
    ids=["question", "answer", "answer-10MB", "comment", "codes-count", "codes-size", "sources-size"],
)
def test_each_field_has_a_size_limit(tmp_path, field, post, limit):
    _raises_too_large(FeedbackLog(tmp_path / "f.sqlite3"), field, limit, **post)


def test_what_fits_the_limits_is_stored(tmp_path):
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    feedback_log.add("down", "x" * (200 * KB), "y" * (64 * KB), "z" * 2000, codes=[{"c": 1}] * 100,
              sources=[{"text": "s" * (60 * KB)}])
    assert feedback_log.count() == 1 and len(feedback_log.all()[0].question) == 200 * KB


def test_limits_come_from_the_settings(tmp_path):
    from app.config import Settings

    s = Settings.from_env({"BOUNCEBOT_FEEDBACK_DB": str(tmp_path / "f.sqlite3"), "BOUNCEBOT_MAX_QUESTION_BYTES": "1000",
                           "BOUNCEBOT_FEEDBACK_MAX_MB": "0.5", "BOUNCEBOT_FEEDBACK_RATE": "7/hour"})
    assert (s.feedback_max_mb, s.feedback_rate) == (0.5, "7/hour")
    defaults = Settings.from_env({})
    assert (defaults.feedback_max_mb, defaults.feedback_rate) == (100, "30/minute")
    feedback_log = FeedbackLog.from_settings(s)
    assert feedback_log.path == tmp_path / "f.sqlite3"
    assert (feedback_log.limits.question_bytes, feedback_log.limits.database_bytes) == (1000, 512 * KB)
    _raises_too_large(feedback_log, "question", "1,000 bytes", question="x" * 1001)
    for name, bad in [("BOUNCEBOT_FEEDBACK_RATE", "30"), ("BOUNCEBOT_FEEDBACK_RATE", "0/minute"),
                      ("BOUNCEBOT_FEEDBACK_MAX_MB", "0"), ("BOUNCEBOT_FEEDBACK_MAX_MB", "lots")]:
        with pytest.raises(BadSetting, match=name):
            Settings.from_env({name: bad})


def test_the_stored_size_is_capped_and_pruning_frees_it(tmp_path):
    path = tmp_path / "f.sqlite3"
    feedback_log = FeedbackLog(path, limits=fb.FeedbackLimits(database_bytes=256 * KB))
    with pytest.raises(FeedbackFull) as e:
        for _ in range(100):
            feedback_log.add("down", "q", "a" * (16 * KB))
    assert e.value.http_status == 507
    assert "BOUNCEBOT_FEEDBACK_MAX_MB" in str(e.value) and "bouncebot feedback export" in str(e.value)
    full = feedback_log.count()
    assert 5 < full < 16  # 16 rows of 16 KB would be the whole cap
    with pytest.raises(FeedbackFull):
        feedback_log.add("down", "q", "a" * (16 * KB))
    assert feedback_log.count() == full
    # what the message tells the operator to do: export, then delete old rows (from another connection)
    with sqlite3.connect(path) as other:
        other.execute("DELETE FROM feedback WHERE id <= ?", (full - 2,))
    other.close()
    feedback_log.add("down", "q", "a" * (16 * KB))  # room again, without a restart
    assert feedback_log.count() == 3


# ---------------------------------------------------------------------------- lost writes (finding 9)


def test_a_deleted_directory_is_an_error_not_a_silent_write(tmp_path):
    path = tmp_path / "data" / "f.sqlite3"
    feedback_log = FeedbackLog(path)
    feedback_log.add("down", "q", "a")
    shutil.rmtree(path.parent)
    with pytest.raises(FeedbackUnavailable, match="deleted or replaced") as e:
        feedback_log.add("down", "q", "a")
    assert e.value.http_status == 503 and str(path) in str(e.value) and "restart" in str(e.value).lower()
    assert feedback_log.count() == 1  # nothing was written into the unlinked file
    assert not path.exists()


def test_a_replaced_file_is_an_error(tmp_path):
    path = tmp_path / "f.sqlite3"
    feedback_log = FeedbackLog(path)
    FeedbackLog(tmp_path / "other.sqlite3").add("up", "q", "a")
    os.replace(tmp_path / "other.sqlite3", path)  # e.g. a backup restored under the running server
    with pytest.raises(FeedbackUnavailable, match="deleted or replaced"):
        feedback_log.add("down", "q", "a")


def test_a_database_that_became_read_only_is_an_error(tmp_path):
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    feedback_log._db.execute("PRAGMA query_only = ON")  # SQLite then refuses writes as for a read-only file
    with pytest.raises(FeedbackUnavailable, match="read-only") as e:
        feedback_log.add("down", "q", "a")
    assert e.value.http_status == 503 and not isinstance(e.value, FeedbackFull)
    assert isinstance(e.value, BouncebotError) and isinstance(e.value.__cause__, sqlite3.OperationalError)


def test_a_full_disk_is_an_error(tmp_path):
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    pages = feedback_log._db.execute("PRAGMA page_count").fetchone()[0]
    feedback_log._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite then reports 'database or disk is full'
    with pytest.raises(FeedbackFull, match="full") as e:
        feedback_log.add("down", "q", "a" * (32 * KB))
    assert e.value.http_status == 507 and feedback_log.count() == 0


def test_commits_are_durable(tmp_path):
    feedback_log = FeedbackLog(tmp_path / "f.sqlite3")
    assert feedback_log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert feedback_log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: each commit is synced to disk


def _ordinary_user():
    """For subprocess(preexec_fn=...): as root, drop the capabilities that let root write read-only
    files (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so file modes apply as for any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; takes effect at exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


OPEN = """
import sys
from app.errors import FeedbackUnavailable
from app.web.feedback import FeedbackLog
try:
    FeedbackLog(sys.argv[1])
except FeedbackUnavailable as e:
    print(e); sys.exit(7)
print("opened")
"""


@pytest.mark.parametrize("case", ["file read-only", "folder read-only", "new file in read-only folder"])
def test_start_up_refuses_a_database_it_cannot_write(tmp_path, case):
    if sys.platform != "linux":
        pytest.skip("uses Linux capabilities to drop root's override of file modes")
    folder = tmp_path / "data"
    path = folder / "f.sqlite3"
    FeedbackLog(path).close()
    if case == "file read-only":
        path.chmod(0o444)
    elif case == "new file in read-only folder":
        path = folder / "new.sqlite3"
    if case != "file read-only":
        folder.chmod(0o555)
    try:
        r = subprocess.run([sys.executable, "-c", OPEN, str(path)], capture_output=True, text=True, cwd=ROOT,
                           preexec_fn=_ordinary_user if os.geteuid() == 0 else None, timeout=60)
    except subprocess.SubprocessError as e:  # prctl refused (no CAP_SETPCAP): root would write anyway
        pytest.skip(f"cannot run without root's override of file modes here: {e}")
    finally:
        folder.chmod(0o755)
    assert r.returncode == 7, r.stdout + r.stderr
    assert str(path) in r.stdout and "writ" in r.stdout and "BOUNCEBOT_FEEDBACK_DB" in r.stdout


def test_start_up_refuses_a_path_it_cannot_open(tmp_path):
    (tmp_path / "a-folder.sqlite3").mkdir()
    with pytest.raises(FeedbackUnavailable, match="BOUNCEBOT_FEEDBACK_DB"):
        FeedbackLog(tmp_path / "a-folder.sqlite3")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FeedbackUnavailable, match="BOUNCEBOT_FEEDBACK_DB"):
        FeedbackLog(tmp_path / "a-file" / "f.sqlite3")


def test_read_only_opening_reads_and_refuses_writes(tmp_path):
    path = tmp_path / "f.sqlite3"
    writer = FeedbackLog(path)
    writer.add("down", "q", "a")
    reader = FeedbackLog(path, read_only=True)  # what an export needs; no write check at opening
    assert reader.count() == 1 and reader.all()[0].question == "q"
    with pytest.raises(FeedbackUnavailable, match="read-only"):
        reader.add("down", "q", "a")
    assert writer.problem() is None
    path.unlink()
    assert "deleted or replaced" in writer.problem()
