"""Insights over the conversation log in a real PostgreSQL: the same figures and tables as over
SQLite for the same seeded log, and ``bouncebot insights`` reading BOUNCEBOT_DATABASE_URL."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from app.insights import TABLES, Period, compute
from app.storage.conversations import SqliteConversationLog
from app.storage.conversations_pg import PostgresConversationLog
from evals.insights_seed import seed

pytestmark = pytest.mark.slow
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc).timestamp()


def test_postgresql_and_sqlite_give_the_same_insights(database_url, tmp_path, monkeypatch, capsys):
    pg, lite = PostgresConversationLog(database_url), SqliteConversationLog(tmp_path / "log.sqlite3")
    try:
        seed(pg, 200, now=NOW)
        seed(lite, 200, now=NOW)
        for text in ("30d", "7d", "2026-11-10..2026-11-20"):
            period = Period.parse(text, now=NOW)
            a, b = compute(pg, period).to_dict(), compute(lite, period).to_dict()
            assert a == b
        assert all(a[t] for t in TABLES)
    finally:
        pg.close()
        lite.close()
    from app.cli import main

    monkeypatch.setenv("BOUNCEBOT_DATABASE_URL", database_url)
    days = int((time.time() - NOW) / 86400) + 31
    assert main(["insights", "--since", f"{days}d", "--json", "--no-model"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["questions"] == 200
