"""What ``bouncebot insights`` does (``app.cli`` parses its arguments and calls ``run``).

    bouncebot insights --since 7d [--json] [--no-model]   the totals and every table
    bouncebot insights --eval-case ID                     one logged message as an eval case (JSON Lines)

The period is read first, so a bad ``--since`` exits 2 before anything is opened. The log is
opened read-only (the SQLite file ``BOUNCEBOT_FEEDBACK_DB``, or ``BOUNCEBOT_DATABASE_URL``).
Refused questions are grouped with the MiniLM embedder unless ``--no-model`` is given.
"""

from __future__ import annotations

import json
import sys

from app.errors import ConversationLogOff, NoSuchLogEntry
from app.insights.export import eval_case
from app.insights.period import Period
from app.insights.report import compute
from app.insights.text import render


def open_log(settings):
    from pathlib import Path

    from app.storage.conversations import ConversationLog, SqliteConversationLog

    if settings.conversation_log and not settings.database_url and not Path(settings.feedback_db).exists():
        print(f"bouncebot: nothing has been logged yet: {settings.feedback_db} does not exist (`bouncebot serve` "
              "creates it and logs each answered message there).", file=sys.stderr)
        return SqliteConversationLog(Path(":memory:"))  # an empty log: every figure 0, every table empty
    log = ConversationLog.open(settings, read_only=True)
    if log is None:
        raise ConversationLogOff("the conversation log is off (BOUNCEBOT_CONVERSATION_LOG=off), so there are no "
                                 "insights: turn it on (unset it or set it to on) and restart `bouncebot serve`.")
    return log


def _embedder(settings):
    from app.search.embeddings import Embedder

    return Embedder.from_settings(settings).embed_documents  # loads the model on first use


def run(settings, since: str | None = None, as_json: bool = False, eval_case_id: int | None = None,
        use_model: bool = True, out=None) -> int:
    out = sys.stdout if out is None else out
    period = None if eval_case_id is not None else Period.parse(since or "7d")
    log = open_log(settings)
    try:
        if eval_case_id is not None:
            entry = log.get(eval_case_id)
            if entry is None:
                raise NoSuchLogEntry(f"the conversation log has no message {eval_case_id} (it may be older than "
                                     f"BOUNCEBOT_LOG_RETENTION_DAYS={settings.log_retention_days}); give an id "
                                     "shown by `bouncebot insights --since 30d`.")
            out.write(json.dumps(eval_case(entry), ensure_ascii=False) + "\n")
            return 0
        insights = compute(log, period, _embedder(settings) if use_model else None)
    finally:
        log.close()
    out.write(json.dumps(insights.to_dict(), ensure_ascii=False) + "\n" if as_json else render(insights))
    return 0
