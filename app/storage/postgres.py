"""The shared backend: PostgreSQL (``BOUNCEBOT_DATABASE_URL=postgresql://...``),
for several replicas of Bouncebot: feedback and the rate-limit counters.

``PostgresStore`` holds one connection per process (autocommit; a lock
serialises its users; after a failure the next use connects again) and
migrates the schema under an advisory lock, so replicas starting together
apply each migration once. ``PostgresFeedbackLog`` behaves as the SQLite
log does (same checks, limits and errors: 503 when the database cannot
take a row, 507 when the stored feedback reached its cap or the disk is
full). ``PostgresRateCounter`` counts requests per (route, client, fixed
window) with one atomic upsert per request.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from app.config import Settings
from app.errors import FeedbackFull, FeedbackUnavailable
from app.storage.feedback import COLUMNS, MB, Feedback, FeedbackLimits, check_post
from app.storage.migrations import MIGRATIONS, SCHEMA_VERSION_SQL, newer_than_known, pending

MIGRATION_LOCK = 0x626F756E6365  # pg_advisory_lock key: "bounce"
CONNECT_TIMEOUT = 5  # seconds to reach the server
STATEMENT_TIMEOUT_MS = 10_000


class NewerSchema(Exception):
    """The database was migrated by a newer Bouncebot than this one."""


class CounterUnavailable(Exception):
    """The rate-limit counter could not be read or written (the database is down or refused)."""


def where(url: str) -> str:
    """host:port/dbname of a URL, without the user or password (for messages)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        d = conninfo_to_dict(url)
    except Exception:  # a URL psycopg cannot parse: say so without echoing it
        return "(an unparsable BOUNCEBOT_DATABASE_URL)"
    return f"{d.get('host') or 'localhost'}:{d.get('port') or 5432}/{d.get('dbname') or ''}"


class PostgresStore:
    def __init__(self, url: str, connect_timeout: float = CONNECT_TIMEOUT, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS):
        self.url, self.where, self.connect_timeout = url, where(url), connect_timeout
        self.statement_timeout_ms = int(statement_timeout_ms)
        self._conn = None
        self._lock = threading.RLock()

    def _open(self):
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=int(self.connect_timeout),
                               application_name="bouncebot")
        conn.execute(f"SET statement_timeout = {self.statement_timeout_ms}")
        return conn

    @contextmanager
    def connection(self):
        """The connection, held alone for the block; a connection error closes it (the next use reconnects)."""
        import psycopg

        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = self._open()
            try:
                yield self._conn
            except psycopg.OperationalError:
                self._drop()
                raise

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def applied(self) -> set[int]:
        with self.connection() as c:
            if c.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
                return set()
            return {int(r[0]) for r in c.execute("SELECT version FROM schema_version")}

    def migrate(self, migrations=MIGRATIONS) -> list[int]:
        """Apply the pending migrations, each once in its own transaction, holding an advisory lock that
        another process migrating the same database waits for; the versions this call applied."""
        done: list[int] = []
        with self.connection() as c:
            c.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                c.execute(SCHEMA_VERSION_SQL["postgresql"])
                while True:
                    with c.transaction():
                        applied = {int(r[0]) for r in c.execute("SELECT version FROM schema_version")}
                        newer = newer_than_known(applied, migrations)
                        if newer:
                            raise NewerSchema(f"its schema is version {newer}, newer than this Bouncebot knows "
                                              f"({migrations[-1].version})")
                        todo = pending(applied, migrations)
                        if not todo:
                            return done
                        m = todo[0]
                        for statement in m.statements("postgresql"):
                            c.execute(statement)
                        c.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (m.version, m.name))
                    done.append(m.version)
            finally:
                if not c.closed:
                    c.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def close(self) -> None:
        with self._lock:
            self._drop()


class PostgresFeedbackLog:
    """Feedback rows in PostgreSQL's ``feedback`` table; the interface of ``app.storage.sqlite.FeedbackLog``.

    A row is committed when ``add`` returns. Opening connects and migrates (``read_only``: connects and
    reads only) and raises ``FeedbackUnavailable`` saying what to do when it cannot."""

    def __init__(self, store: PostgresStore, limits: FeedbackLimits | None = None, read_only: bool = False):
        import psycopg

        self.store, self.limits, self.read_only = store, limits or FeedbackLimits(), read_only
        self.path = f"postgresql://{store.where}"  # what messages and /healthz call it
        self._problem: str | None = None
        try:
            if read_only:
                newer = newer_than_known(store.applied())
                if newer:
                    raise NewerSchema(f"its schema is version {newer}, newer than this Bouncebot knows")
                with store.connection() as c:
                    c.execute("SELECT COUNT(*) FROM feedback").fetchone()
            else:
                store.migrate()
        except (psycopg.Error, NewerSchema) as e:
            raise self._unavailable(e, starting=True) from e

    @classmethod
    def from_settings(cls, settings: Settings, read_only: bool = False) -> "PostgresFeedbackLog":
        return cls(PostgresStore(settings.database_url), FeedbackLimits.from_settings(settings), read_only=read_only)

    def _unavailable(self, e: Exception, starting: bool = False, reading: bool = False) -> FeedbackUnavailable:
        import psycopg

        db = f"the PostgreSQL database {self.store.where} (BOUNCEBOT_DATABASE_URL)"
        if starting:
            lead = f"Feedback cannot be {'read' if self.read_only else 'kept'}: {db}"
        elif reading:
            lead = f"Feedback could not be read from {db}"
        else:
            lead = f"Feedback was not saved: {db}"
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, NewerSchema):
            return FeedbackUnavailable(f"{lead} cannot be used: {e}. Run the newer Bouncebot that migrated it.")
        if isinstance(e, psycopg.errors.DiskFull):
            return FeedbackFull(f"{lead} has no room: its disk is full ({detail}). Free space on the database "
                                "server; feedback is accepted again at once.")
        if isinstance(e, psycopg.errors.UndefinedTable):
            return FeedbackUnavailable(f"{lead} has no feedback table yet ({detail}). Start `bouncebot serve` "
                                       "with this BOUNCEBOT_DATABASE_URL once: it creates the tables.")
        if isinstance(e, psycopg.errors.InsufficientPrivilege):
            return FeedbackUnavailable(f"{lead} refused ({detail}). Grant the user in BOUNCEBOT_DATABASE_URL the "
                                       "right to create tables and write in that database.")
        if isinstance(e, psycopg.OperationalError):
            later = "." if starting else "; nothing was stored, so send it again once the database is back."
            return FeedbackUnavailable(f"{lead} did not answer ({detail}). Check that PostgreSQL is running and "
                                       f"reachable, and the host, port, user and password in BOUNCEBOT_DATABASE_URL"
                                       f"{later}")
        return FeedbackUnavailable(f"{lead} failed ({type(e).__name__}: {detail}). Check the database server's "
                                   "log; nothing was stored.")

    def problem(self) -> str | None:
        """Why the last write or read failed, until one succeeds (a health check never waits on the database)."""
        if self.read_only:
            return f"the feedback database {self.path} was opened read-only"
        return self._problem

    def _run(self, work, reading: bool = False):
        import psycopg

        try:
            with self.store.connection() as c:
                result = work(c)
        except psycopg.Error as e:
            err = self._unavailable(e, reading=reading)
            self._problem = str(err)
            raise err from e
        self._problem = None
        return result

    def add(self, rating: str, question: str, answer: str, comment: str = "", answered: bool | None = None,
            codes: list | None = None, sources: list | None = None) -> int:
        codes_json, sources_json, size = check_post(self.limits, rating, question, answer, comment, codes or [],
                                                    sources or [])
        if self.read_only:
            raise FeedbackUnavailable(f"Feedback was not saved: the feedback database {self.path} was opened "
                                      "read-only.")

        def insert(c) -> int:
            used = int(c.execute("SELECT pg_total_relation_size('feedback')").fetchone()[0])
            if used + size > self.limits.database_bytes:
                raise FeedbackFull(
                    f"Feedback was not saved: the feedback table in {self.store.where} is full: it holds "
                    f"{used / MB:,.1f} MB and the cap is {self.limits.database_bytes / MB:,.1f} MB "
                    "(BOUNCEBOT_FEEDBACK_MAX_MB). An operator should run `bouncebot feedback export --out "
                    "cases.jsonl` to keep the thumbs-down cases, then delete old rows (for example: DELETE FROM "
                    "feedback WHERE created < extract(epoch FROM now() - interval '90 days'); then VACUUM FULL "
                    "feedback), or raise BOUNCEBOT_FEEDBACK_MAX_MB and restart.")
            return int(c.execute(
                "INSERT INTO feedback (created, rating, comment, question, answer, answered, codes, sources)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (time.time(), rating, comment, question, answer, answered, codes_json, sources_json),
            ).fetchone()[0])

        return self._run(insert)

    def all(self, rating: str | None = None) -> list[Feedback]:
        sql, args = f"SELECT {COLUMNS} FROM feedback", ()
        if rating:
            sql, args = sql + " WHERE rating = %s", (rating,)
        rows = self._run(lambda c: c.execute(sql + " ORDER BY id", args).fetchall(), reading=True)
        return [Feedback.from_row(r) for r in rows]

    def count(self) -> int:
        return self._run(lambda c: int(c.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]), reading=True)

    def close(self) -> None:
        self.store.close()


class PostgresRateCounter:
    """Requests per (route, client) in fixed windows of ``period`` seconds, shared by every replica.

    ``hit`` is one atomic upsert: it adds the request to its window's row only while the row is under
    ``count``, so concurrent replicas never let more than ``count`` through per window and refused
    requests do not count. Windows older than the previous one are deleted, at most once a period per
    route and process. Windows start at multiples of ``period`` on the wall clock (replicas' clocks
    should agree, as NTP keeps them); like any fixed window, up to 2 x ``count`` may pass across a
    window boundary.
    """

    UPSERT = ("INSERT INTO rate_limits (route, client, window_start, hits) VALUES (%s, %s, %s, 1) "
              "ON CONFLICT (route, client, window_start) DO UPDATE SET hits = rate_limits.hits + 1 "
              "WHERE rate_limits.hits < %s RETURNING hits")

    def __init__(self, store: PostgresStore):
        self.store = store
        self._cleaned: dict[str, float] = {}

    def hit(self, route: str, client: str, count: int, period: float, now: float) -> float:
        """0 when the request is allowed, else the seconds until its window ends; ``CounterUnavailable``
        when the database cannot say."""
        import psycopg

        period = max(1, int(period))
        start = int(now // period) * period
        try:
            with self.store.connection() as c:
                row = c.execute(self.UPSERT, (route, client, start, count)).fetchone()
                if now - self._cleaned.get(route, float("-inf")) >= period:
                    c.execute("DELETE FROM rate_limits WHERE route = %s AND window_start < %s",
                              (route, start - period))
                    self._cleaned[route] = now
        except psycopg.Error as e:
            raise CounterUnavailable(f"the rate-limit counters in {self.store.where} cannot be read: "
                                     f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
        return 0.0 if row is not None else max(0.0, start + period - now)
