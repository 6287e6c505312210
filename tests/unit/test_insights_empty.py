"""`bouncebot insights` before anything was logged (a fresh install: no database file yet) prints
empty figures and says why, instead of failing: the README's command works on a new machine."""

from __future__ import annotations

import io
import json

import pytest

from app.config import Settings
from app.insights.command import run


@pytest.mark.parametrize("as_json", [False, True])
def test_insights_before_the_first_logged_message(tmp_path, capsys, as_json):
    settings = Settings().with_(feedback_db=tmp_path / "none-yet.sqlite3")
    out = io.StringIO()
    assert run(settings, "7d", as_json=as_json, use_model=False, out=out) == 0
    assert "nothing has been logged yet" in capsys.readouterr().err
    assert not (tmp_path / "none-yet.sqlite3").exists()  # reading never creates the file
    if as_json:
        assert json.loads(out.getvalue())["totals"]["questions"] == 0
    else:
        assert out.getvalue().strip()
