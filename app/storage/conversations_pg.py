"""The conversation log in PostgreSQL (``BOUNCEBOT_DATABASE_URL``): the interface of
``app.storage.conversations.ConversationLog`` on a connection of its own (``PostgresStore``), so a
log write never waits behind a feedback post or a rate-limit count.

``synchronous_commit = off`` on that connection: a commit returns without waiting for the WAL flush
(the log is analytics, not a record anyone is promised: a crash of the database server may lose
its last fraction of a second of rows; the feedback table keeps the default).
"""

from __future__ import annotations

from app.errors import ConversationLogUnavailable
from app.storage.conversations import COLUMNS, ConversationLog, LogEntry
from app.storage.postgres import PostgresStore

CONNECT_TIMEOUT = 2  # seconds: the recorder gives up on a database that does not answer, quickly
STATEMENT_TIMEOUT_MS = 5000


class PostgresConversationLog(ConversationLog):
    def __init__(self, url: str, **options):
        import psycopg

        super().__init__(**options)
        self.store = PostgresStore(url, connect_timeout=CONNECT_TIMEOUT, statement_timeout_ms=STATEMENT_TIMEOUT_MS)
        self.where = f"the conversation log in the PostgreSQL database {self.store.where} (BOUNCEBOT_DATABASE_URL)"
        self._tuned = None  # the connection synchronous_commit was turned off on
        try:
            if self.read_only:
                self._run(lambda c: c.execute("SELECT COUNT(*) FROM conversation_log").fetchone())
            else:
                self.store.migrate()
        except psycopg.Error as e:
            raise self._unavailable(e) from e

    def _unavailable(self, e: Exception) -> ConversationLogUnavailable:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return ConversationLogUnavailable(
            f"{self.where} failed ({type(e).__name__}: {detail}). Check that PostgreSQL is running and reachable "
            "and that the user may write there (`bouncebot serve` creates the table), or set "
            "BOUNCEBOT_CONVERSATION_LOG=off to run without the log.")

    def _run(self, work):
        import psycopg

        try:
            with self.store.connection() as c:
                if self._tuned is not c:
                    c.execute("SET synchronous_commit = off")
                    self._tuned = c
                return work(c)
        except psycopg.Error as e:
            raise self._unavailable(e) from e

    def _insert(self, e: LogEntry, codes: str, sources: str) -> int:
        return int(self._run(lambda c: c.execute(
            "INSERT INTO conversation_log (created, channel, mode, intent, answered, refused, fallback, question, "
            "answer, codes, sources, latency_ms, rating, comment, redacted) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (e.created, e.channel, e.mode, e.intent, e.answered, e.refused, e.fallback, e.question, e.answer,
             codes, sources, e.latency_ms, e.rating, e.comment, e.redacted)).fetchone()[0]))

    def _rate(self, log_id: int, rating: str, comment: str | None) -> bool:
        return self._run(lambda c: c.execute("UPDATE conversation_log SET rating = %s, comment = %s WHERE id = %s",
                                             (rating, comment, log_id)).rowcount) > 0

    def _select(self, since: float, until: float | None) -> list:
        sql, args = f"SELECT {COLUMNS} FROM conversation_log WHERE created >= %s", (since,)
        if until is not None:
            sql, args = sql + " AND created < %s", (since, until)
        return self._run(lambda c: c.execute(sql + " ORDER BY created DESC, id DESC", args).fetchall())

    def _get(self, log_id: int):
        return self._run(lambda c: c.execute(f"SELECT {COLUMNS} FROM conversation_log WHERE id = %s",
                                             (log_id,)).fetchone())

    def _delete_before(self, cutoff: float) -> int:
        return self._run(lambda c: c.execute("DELETE FROM conversation_log WHERE created < %s", (cutoff,)).rowcount)

    def _count(self) -> int:
        return int(self._run(lambda c: c.execute("SELECT COUNT(*) FROM conversation_log").fetchone()[0]))

    def close(self) -> None:
        self.store.close()
