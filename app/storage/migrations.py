"""The store's schema, as numbered migrations applied once each, in order.

Adding a table (or an index, a column) is one new ``Migration`` at the end of
``MIGRATIONS`` with its SQL for each backend; never edit one that has shipped.
A database records what it has in ``schema_version`` (one row per migration
applied). ``pending`` says what is left; the backends apply each pending
migration in its own transaction while holding a lock that a second process
starting at the same time waits for (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: an advisory lock), so each runs exactly once.

Migration 1 is the feedback table exactly as Bouncebot created it before there
were migrations (``CREATE TABLE IF NOT EXISTS``): an existing SQLite feedback
file is migrated in place and keeps its rows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str  # statements separated by ';' (no ';' inside them)
    postgresql: str

    def statements(self, dialect: str) -> list[str]:
        sql = self.sqlite if dialect == "sqlite" else self.postgresql
        return [s.strip() for s in sql.split(";") if s.strip()]


SCHEMA_VERSION_SQL = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
              "applied REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                  "applied TIMESTAMPTZ NOT NULL DEFAULT now())",
}

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "feedback", sqlite="""
        CREATE TABLE IF NOT EXISTS feedback (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            created   REAL    NOT NULL,
            rating    TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
            comment   TEXT    NOT NULL DEFAULT '',
            question  TEXT    NOT NULL,
            answer    TEXT    NOT NULL,
            answered  INTEGER,
            codes     TEXT    NOT NULL DEFAULT '[]',
            sources   TEXT    NOT NULL DEFAULT '[]'
        )""", postgresql="""
        CREATE TABLE IF NOT EXISTS feedback (
            id        BIGSERIAL PRIMARY KEY,
            created   DOUBLE PRECISION NOT NULL,
            rating    TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
            comment   TEXT    NOT NULL DEFAULT '',
            question  TEXT    NOT NULL,
            answer    TEXT    NOT NULL,
            answered  BOOLEAN,
            codes     TEXT    NOT NULL DEFAULT '[]',
            sources   TEXT    NOT NULL DEFAULT '[]'
        )"""),
    Migration(2, "feedback_rating_index",
              sqlite="CREATE INDEX IF NOT EXISTS feedback_rating ON feedback (rating, id)",
              postgresql="CREATE INDEX IF NOT EXISTS feedback_rating ON feedback (rating, id)"),
    # Shared rate limits: one row per (route, client, fixed window); see app/storage/postgres.py.
    # UNLOGGED in PostgreSQL: no WAL, so an upsert's commit waits for no disk flush (p50 3.2 ms -> 0.04 ms
    # here, evals/bench_storage.py); a crash of the database empties it: only the current windows are forgotten.
    # SQLite gets the table too (one schema), though one process counts in memory by default.
    Migration(3, "rate_limits", sqlite="""
        CREATE TABLE IF NOT EXISTS rate_limits (
            route        TEXT    NOT NULL,
            client       TEXT    NOT NULL,
            window_start INTEGER NOT NULL,
            hits         INTEGER NOT NULL,
            PRIMARY KEY (route, client, window_start)
        )""", postgresql="""
        CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (
            route        TEXT    NOT NULL,
            client       TEXT    NOT NULL,
            window_start BIGINT  NOT NULL,
            hits         INTEGER NOT NULL,
            PRIMARY KEY (route, client, window_start)
        );
        CREATE INDEX IF NOT EXISTS rate_limits_window ON rate_limits (window_start)"""),
    # The conversation log (issue 15; app/storage/conversations.py): one row per answered message, text
    # redacted unless BOUNCEBOT_LOG_KEEP_PERSONAL_DATA is on; created is epoch seconds in both dialects.
    Migration(4, "conversation_log", sqlite="""
        CREATE TABLE IF NOT EXISTS conversation_log (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            created    REAL    NOT NULL,
            channel    TEXT    NOT NULL CHECK (channel IN ('chat', 'widget', 'api')),
            mode       TEXT    NOT NULL CHECK (mode IN ('default', 'llm')),
            intent     TEXT    NOT NULL,
            answered   INTEGER NOT NULL,
            refused    INTEGER NOT NULL,
            fallback   TEXT,
            question   TEXT    NOT NULL,
            answer     TEXT    NOT NULL,
            codes      TEXT    NOT NULL DEFAULT '[]',
            sources    TEXT    NOT NULL DEFAULT '[]',
            latency_ms REAL    NOT NULL,
            rating     TEXT    CHECK (rating IN ('up', 'down')),
            comment    TEXT,
            redacted   INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS conversation_log_created ON conversation_log (created);
        CREATE INDEX IF NOT EXISTS conversation_log_rating ON conversation_log (rating)""", postgresql="""
        CREATE TABLE IF NOT EXISTS conversation_log (
            id         BIGSERIAL PRIMARY KEY,
            created    DOUBLE PRECISION NOT NULL,
            channel    TEXT    NOT NULL CHECK (channel IN ('chat', 'widget', 'api')),
            mode       TEXT    NOT NULL CHECK (mode IN ('default', 'llm')),
            intent     TEXT    NOT NULL,
            answered   BOOLEAN NOT NULL,
            refused    BOOLEAN NOT NULL,
            fallback   TEXT,
            question   TEXT    NOT NULL,
            answer     TEXT    NOT NULL,
            codes      TEXT    NOT NULL DEFAULT '[]',
            sources    TEXT    NOT NULL DEFAULT '[]',
            latency_ms DOUBLE PRECISION NOT NULL,
            rating     TEXT    CHECK (rating IN ('up', 'down')),
            comment    TEXT,
            redacted   BOOLEAN NOT NULL
        );
        CREATE INDEX IF NOT EXISTS conversation_log_created ON conversation_log (created);
        CREATE INDEX IF NOT EXISTS conversation_log_rating ON conversation_log (rating)"""),
)

LATEST = MIGRATIONS[-1].version


def check_order(migrations=MIGRATIONS) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise AssertionError(f"migrations must be numbered 1, 2, 3, ... in order: {versions}")


def pending(applied: set[int], migrations=MIGRATIONS) -> list[Migration]:
    return [m for m in migrations if m.version not in applied]


def newer_than_known(applied: set[int], migrations=MIGRATIONS) -> int | None:
    """The highest version applied that this code does not know (a newer Bouncebot made it), or None."""
    top = max(applied, default=0)
    return top if top > migrations[-1].version else None


check_order()
