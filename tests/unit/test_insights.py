"""Insights from the conversation log (``app.insights``): the period, every table filled from the
seeded log (``evals.insights_seed``) in a real SQLite ``ConversationLog``, period filtering, code
counting, grouping of refused questions (a deterministic fake embedder, and the word-overlap
fallback), CSV export (quoting and formula injection), eval cases in ``bouncebot feedback export``'s
shape, and ``bouncebot insights`` (text, --json, --eval-case, bad input)."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime, timezone

import pytest

from app.insights import (COLUMNS, TABLES, BadPeriod, CachedEmbed, Period, UnknownInsightsTable, compute, eval_case,
                          render)
from app.insights.grouping import group, shorten
from app.storage.conversations import LogEntry, SqliteConversationLog
from app.storage.feedback import as_eval_case
from app.storage.sqlite import FeedbackLog
from evals.insights_seed import seed

from ..fakes import FakeEmbedder

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=timezone.utc).timestamp()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def entry(question="what does 550 5.1.1 mean?", created=NOW - 60, channel="chat", answered=True, refused=False,
          codes=(), rating=None, comment=None, latency_ms=40.0, answer="the answer", fallback=None, mode="default"):
    return LogEntry(id=None, created=created, channel=channel, mode=mode, intent="question", answered=answered,
                    refused=refused, fallback=fallback, question=question, answer=answer, codes=list(codes),
                    sources=[], latency_ms=latency_ms, rating=rating, comment=comment, redacted=False)


@pytest.fixture
def log(tmp_path):
    log = SqliteConversationLog(tmp_path / "feedback.sqlite3")
    yield log
    log.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("seed") / "feedback.sqlite3"
    log = SqliteConversationLog(path)
    seed(log, 300, now=NOW)
    yield log, path
    log.close()


# ------------------------------------------------------------------ the period

@pytest.mark.parametrize("text,since,until", [
    ("7d", NOW - 7 * 86400, NOW),
    ("30d", NOW - 30 * 86400, NOW),
    ("24h", NOW - 86400, NOW),
    (" 7D ", NOW - 7 * 86400, NOW),
    ("2026-11-01..2026-11-30", at("2026-11-01T00:00:00"), at("2026-12-01T00:00:00")),
    ("2026-11-30", at("2026-11-30T00:00:00"), at("2026-12-01T00:00:00")),
    ("2026-11-30 .. 2026-11-30", at("2026-11-30T00:00:00"), at("2026-12-01T00:00:00")),
])
def test_a_period_is_read_from_what_people_write(text, since, until):
    p = Period.parse(text, now=NOW)
    assert (p.since, p.until) == (since, until)


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "0d", "0h", "-3d", "99999d", "last week", "2026-13-01",
                                  "2026-11-30..2026-11-01", "2026-11-01..", "2026-11-01...2026-11-02", "7d; drop"])
def test_a_bad_period_says_what_to_write_and_is_bad_input(text):
    with pytest.raises(BadPeriod) as e:
        Period.parse(text, now=NOW)
    assert e.value.exit_code == 2 and e.value.http_status == 400
    assert "7d" in str(e.value) and "2026-11-01..2026-11-30" in str(e.value)


def test_a_period_lists_every_utc_day_it_touches():
    assert Period.parse("24h", now=NOW).days() == ["2026-11-30", "2026-12-01"]
    assert len(Period.parse("2026-11-01..2026-11-30").days()) == 30
    assert Period.parse("2026-11-30").days() == ["2026-11-30"]


# ------------------------------------------------------------------ every table from the seed

def test_every_table_is_filled_from_the_seeded_log(seeded):
    log, _ = seeded
    ins = compute(log, Period.parse("30d", now=NOW), FakeEmbedder().embed_documents)
    t = ins.totals
    assert t["questions"] == 300 == log.count()
    assert 0 < t["refused"] < t["questions"] and 0 < t["answered"] < t["questions"]
    assert t["up"] > 0 and t["down"] > 0 and t["fallback"] > 0
    assert t["answered_rate"] == round(t["answered"] / 300, 4) and t["refused_rate"] == round(t["refused"] / 300, 4)
    for table in TABLES:
        assert getattr(ins, table), f"{table} is empty"
    # the per-day table adds up to the totals, by channel and by outcome
    assert sum(d["chat"] + d["widget"] + d["api"] for d in ins.per_day) == 300
    for key in ("answered", "refused", "up", "down"):
        assert sum(d[key] for d in ins.per_day) == t[key]
    assert len(ins.per_day) == 31 and all(set(d) == set(COLUMNS["per_day"]) for d in ins.per_day)
    assert {c["code"] for c in ins.codes_in_table} >= {"550-5.1.1", "552-5.2.2", "421-4.7.28"}
    assert {c["code"] for c in ins.codes_missing} >= {"550-5.7.26", "450-4.2.2", "554"}
    assert all(c["reason"] for c in ins.codes_missing if c["code"] in ("550-5.7.26", "450-4.2.2", "554-5.7.1"))
    assert sum(g["count"] for g in ins.refused_groups) == t["refused"]
    assert max(g["count"] for g in ins.refused_groups) > 1  # paraphrases were grouped
    assert len(ins.thumbs_down) == t["down"] and any(r["comment"] for r in ins.thumbs_down)
    assert len(ins.slowest) == 20
    assert [r["latency_ms"] for r in ins.slowest] == sorted((r["latency_ms"] for r in ins.slowest), reverse=True)


def test_the_seed_is_deterministic_and_stored_redacted(tmp_path, seeded):
    log, _ = seeded
    again = SqliteConversationLog(tmp_path / "again.sqlite3")
    try:
        seed(again, 300, now=NOW)
        strip = lambda es: [(e.created, e.question, e.answer, e.codes, e.rating, e.comment, e.latency_ms) for e in es]
        assert strip(again.entries(0)) == strip(log.entries(0))
    finally:
        again.close()
    texts = [e.question + " " + (e.comment or "") for e in log.entries(0)]
    assert any("[email]" in t for t in texts) and any("[phone]" in t for t in texts)
    assert not any("example.com" in t or "7946 0958" in t for t in texts)
    assert all(NOW - 30 * 86400 <= e.created <= NOW for e in log.entries(0))


# ------------------------------------------------------------------ periods, codes, groups

def test_only_the_period_is_counted_its_start_included_its_end_not(log):
    for when in ("2026-10-31T23:59:59", "2026-11-01T00:00:00", "2026-11-15T12:00:00", "2026-11-30T23:59:59",
                 "2026-12-01T00:00:00"):
        log.record(entry(question=f"asked at {when}", created=at(when)))
    ins = compute(log, Period.parse("2026-11-01..2026-11-30"))
    assert ins.totals["questions"] == 3
    assert sorted(r["question"] for r in ins.slowest) == [
        "asked at 2026-11-01T00:00:00", "asked at 2026-11-15T12:00:00", "asked at 2026-11-30T23:59:59"]
    days = {d["day"]: d["chat"] for d in ins.per_day}
    assert days["2026-11-01"] == days["2026-11-15"] == days["2026-11-30"] == 1 and sum(days.values()) == 3
    assert compute(log, Period.parse("2026-12-01")).totals["questions"] == 1
    empty = compute(log, Period.parse("2026-01-01..2026-01-07"))
    assert empty.totals["questions"] == 0 and empty.totals["answered_rate"] is None
    assert all(not getattr(empty, t) for t in TABLES if t != "per_day") and len(empty.per_day) == 7


def code(c, tabled, reason=None):
    return {"code": c, "tabled": tabled, "reason": reason}


def test_codes_are_counted_once_a_message_split_by_the_table_with_reason_and_a_redacted_example(log):
    log.record(entry("550 5.1.1 then again 550-5.1.1", created=NOW - 50,
                     codes=[code("550-5.1.1", True, "user_unknown"), code("550-5.1.1", True, "user_unknown")]))
    log.record(entry("what's 5.4.4?", created=NOW - 40, codes=[code("5.4.4", True, "network")]))
    log.record(entry("Diagnostic: 554 5.4.4", created=NOW - 30, codes=[code("554-5.4.4", True, "network")]))
    log.record(entry("older: 550 5.7.26 from gmail", created=NOW - 20, codes=[code("550-5.7.26", False, "authentication")]))
    log.record(entry("reply to maria.lopez@example.com: 550 5.7.26", created=NOW - 10,
                     codes=[code("550-5.7.26", False, "authentication"), code("554", False, None)]))
    ins = compute(log, Period.parse("1d", now=NOW))
    assert ins.codes_in_table == [
        {"code": "554-5.4.4", "count": 2, "example": "Diagnostic: 554 5.4.4"},  # 5.4.4 alone is that row
        {"code": "550-5.1.1", "count": 1, "example": "550 5.1.1 then again 550-5.1.1"},
    ]
    assert ins.codes_missing == [
        {"code": "550-5.7.26", "count": 2, "reason": "authentication", "example": "reply to [email]: 550 5.7.26"},
        {"code": "554", "count": 1, "reason": "", "example": "reply to [email]: 550 5.7.26"},
    ]


REFUSED = [
    "how much does SparrowDesk cost per agent",
    "SparrowDesk cost per agent each month?",
    "what does SparrowDesk cost per agent on the enterprise plan",
    "connect WhatsApp to the inbox",
    "how do we connect WhatsApp to our inbox",
    "what's the capital of australia",
]


@pytest.mark.parametrize("embed", [FakeEmbedder().embed_documents, None], ids=["fake-embedder", "shared-words"])
def test_refused_questions_are_grouped_by_similarity_whatever_their_order(embed):
    items = list(enumerate(REFUSED + ["How much does SparrowDesk cost per agent"], start=1))
    groups = group(items, embed)
    pricing = next(g for g in groups if 1 in g["ids"])
    assert set(pricing["ids"]) >= {1, 7} and 4 not in pricing["ids"] and 6 not in pricing["ids"]
    assert next(g for g in groups if 4 in g["ids"])["ids"] == [5, 4]
    assert [6] in [g["ids"] for g in groups]
    assert sum(g["count"] for g in groups) == 7 and sorted(i for g in groups for i in g["ids"]) == list(range(1, 8))
    assert all(len(g["examples"]) <= 3 and g["label"] == shorten(g["examples"][0]) for g in groups)
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    assert {tuple(sorted(g["ids"])) for g in group(shuffled, embed)} == {tuple(sorted(g["ids"])) for g in groups}


def test_cached_embed_embeds_each_distinct_question_once_across_calls():
    fake = FakeEmbedder()
    cached = CachedEmbed(fake.embed_documents, size=3)
    first = cached(["a b", "c d", "a b"])
    assert fake.documents == 2 and first[0] == first[2] == fake.embed_documents(["a b"])[0]
    fake.documents = 0
    assert cached(["c d", "e f"])[0] == first[1] and fake.documents == 1
    cached(["g h"])  # over its size: the oldest ("a b") goes
    fake.documents = 0
    cached(["a b"])
    assert fake.documents == 1
    assert group(list(enumerate(REFUSED)), cached) == group(list(enumerate(REFUSED)), fake.embed_documents)


def test_a_long_label_is_shortened_at_a_word():
    label = shorten("how do i point help.ourcompany.example to our sparrowdesk help centre, custom domain setup")
    assert len(label) <= 72 and label.endswith("…") and not label[:-1].endswith(" ")
    assert group([]) == []


# ------------------------------------------------------------------ CSV and eval cases

def test_each_table_exports_as_csv_with_its_header_and_one_row_each(seeded):
    log, _ = seeded
    ins = compute(log, Period.parse("30d", now=NOW), FakeEmbedder().embed_documents)
    for table in TABLES:
        rows = list(csv.reader(io.StringIO(ins.csv(table))))
        assert tuple(rows[0]) == COLUMNS[table]
        assert len(rows) == 1 + len(getattr(ins, table))
    with pytest.raises(UnknownInsightsTable) as e:
        ins.csv("users")
    assert "per_day" in str(e.value)


TRICKY = [
    ('a question, with commas', 'a question, with commas'),
    ('she said "550 5.1.1" twice', 'she said "550 5.1.1" twice'),
    ('line one\nline two\r\nline three', 'line one\nline two\r\nline three'),
    ('=HYPERLINK("http://x.example","click")', '\'=HYPERLINK("http://x.example","click")'),
    ('+2 more bounces today', "'+2 more bounces today"),
    ('-5.1.1 what is it', "'-5.1.1 what is it"),
    ('@SUM(A1:A9)', "'@SUM(A1:A9)"),
    ('\tindented', "'\tindented"),
    ('plain 550-5.1.1 = fine', 'plain 550-5.1.1 = fine'),
]


@pytest.mark.parametrize("question,cell", TRICKY)
def test_a_csv_cell_keeps_commas_quotes_and_newlines_and_never_runs_as_a_formula(log, question, cell):
    log.record(entry(question, rating="down", comment="=1+1", latency_ms=12.5))
    ins = compute(log, Period.parse("1d", now=NOW))
    header, row = list(csv.reader(io.StringIO(ins.csv("thumbs_down"), newline="")))
    got = dict(zip(header, row))
    assert got["question"] == cell and got["comment"] == "'=1+1" and got["channel"] == "chat"
    slow = dict(zip(*csv.reader(io.StringIO(ins.csv("slowest"), newline=""))))
    assert slow["latency_ms"] == "12.5" and slow["question"] == cell


def test_a_logged_message_becomes_the_same_eval_case_as_feedback_export(log, tmp_path):
    codes = [code("550-5.7.26", False, "authentication")]
    sources = [{"article": "Common Email Delivery Errors", "section": "Common delivery errors", "url": "https://x/#c"}]
    log_id = log.record(LogEntry(id=None, created=NOW - 5, channel="widget", mode="default", intent="question",
                                 answered=True, refused=False, fallback=None, question="550 5.7.26?",
                                 answer="not in the table", codes=codes, sources=sources, latency_ms=30.0))
    log.rate(log_id, "down", "we need this code documented")
    feedback = FeedbackLog(tmp_path / "fb.sqlite3")
    try:
        fid = feedback.add("down", "550 5.7.26?", "not in the table", "we need this code documented", True,
                           codes, sources)
        expected = as_eval_case(next(f for f in feedback.all("down") if f.id == fid))
    finally:
        feedback.close()
    case = eval_case(log.get(log_id))

    def shape(d):
        return {k: shape(v) if isinstance(v, dict) else type(v).__name__ for k, v in d.items()}

    assert shape(case) == shape(expected)
    assert case["id"] == f"log-{log_id:05d}" and case["category"] == "feedback" and case["expect"] == {}
    same = lambda c: {**c, "id": None, "feedback": {**c["feedback"], "created": None}}
    assert same(case) == same(expected)
    json.dumps(case)  # one JSON Lines line


def test_a_refused_message_without_feedback_is_an_eval_case_too(log):
    log_id = log.record(entry("how much per agent?", answered=False, refused=True))
    case = eval_case(log.get(log_id))
    assert case["question"] == "how much per agent?" and case["feedback"]["answered"] is False
    assert case["feedback"]["rating"] is None and case["feedback"]["comment"] == ""


# ------------------------------------------------------------------ the command

@pytest.fixture
def cli_env(seeded, monkeypatch):
    _, path = seeded
    monkeypatch.setenv("BOUNCEBOT_FEEDBACK_DB", str(path))
    monkeypatch.delenv("BOUNCEBOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("BOUNCEBOT_CONVERSATION_LOG", raising=False)
    return path


def days_since_seed() -> int:
    import time

    return int((time.time() - NOW) / 86400) + 31


def test_the_command_prints_the_totals_and_every_table(cli_env, capsys):
    from app.cli import main

    assert main(["insights", "--since", f"{days_since_seed()}d", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "questions 300" in out and "refused questions grouped by shared words" in out
    for title in ("Questions per day", "Codes asked about that the article's table holds",
                  "Codes missing from the article's table", "Refused questions, grouped by similarity",
                  "Thumbs-down answers", "Slowest answers"):
        assert title in out
    assert "550-5.1.1" in out and "550-5.7.26" in out and "(none in this period)" not in out


def test_the_command_prints_json_and_one_eval_case(cli_env, capsys, seeded):
    from app.cli import main

    assert main(["insights", "--since", f"{days_since_seed()}d", "--json", "--no-model"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) >= {"period", "totals", *TABLES} and d["totals"]["questions"] == 300
    down = d["thumbs_down"][0]["id"]
    assert main(["insights", "--eval-case", str(down)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == f"log-{down:05d}"


@pytest.mark.parametrize("argv,needle", [
    (["insights", "--since", "a week"], "write 7d"),
    (["insights", "--since", "0d"], "from 1 to"),
    (["insights", "--since", "2026-11-30..2026-11-01"], "before its first"),
    (["insights", "--eval-case", "999999"], "no message 999999"),
])
def test_bad_input_exits_2_saying_what_to_write(cli_env, capsys, argv, needle):
    from app.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("bouncebot: ")


def test_a_bad_period_exits_2_even_without_a_log(tmp_path, monkeypatch, capsys):
    from app.cli import main

    monkeypatch.setenv("BOUNCEBOT_FEEDBACK_DB", str(tmp_path / "none.sqlite3"))
    assert main(["insights", "--since", "yesterday"]) == 2
    assert main(["insights", "--since", "7d", "--no-model"]) == 0  # no log yet: empty figures, and says so
    assert "nothing has been logged yet" in capsys.readouterr().err
    monkeypatch.setenv("BOUNCEBOT_CONVERSATION_LOG", "off")
    assert main(["insights", "--since", "7d", "--no-model"]) == 1
    assert "BOUNCEBOT_CONVERSATION_LOG=off" in capsys.readouterr().err


def test_render_says_when_a_table_is_empty(log):
    out = render(compute(log, Period.parse("7d", now=NOW)))
    assert out.count("(none in this period)") == 5 and "questions 0" in out
