"""A seeded conversation log for insights: a few hundred realistic messages over the last 30 days.

    python -m evals.insights_seed --db PATH [--count 300] [--seed 15] [--now EPOCH]

Deterministic for a given ``--seed`` and ``--now`` (times are spread over the 30 days before
``--now``, default: now). The questions are the eval dev split's (``evals/datasets/dev.jsonl``):
codes in every pasted shape, pasted bounces, article questions, untabled codes, and refusals, plus
a few paraphrases of the refusals so that they form groups; a handful carry a customer's email
address, phone number and name, which the log redacts before storing. Each message's codes are
looked up in the real table (``app.codes``: tabled or not, and the bounce reason), the answer is
written in the shape the answerer gives, and about one message in five gets a thumbs up or down
(with a comment, sometimes). Everything is written through ``ConversationLog.record`` and
``rate``, so it is stored as the app would store it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from pathlib import Path

from app.codes.table import CodeTable
from app.knowledge.articles import load_articles
from app.storage.conversations import LogEntry, SqliteConversationLog

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "evals" / "datasets" / "dev.jsonl"
KB = ROOT / "kb"
DAYS = 30

# Refusals asked in other words, so that the insights' grouping has something to group (ours).
REFUSAL_VARIANTS = [
    "what does SparrowDesk cost for each agent per month",
    "how much is the price per seat?",
    "pricing for 12 agents on the annual plan?",
    "can I export every conversation as a CSV file",
    "is there a way to download all our tickets to a spreadsheet",
    "how do I change the chat widget colour to match our brand",
    "can the widget on our site be a different colour",
    "can I connect WhatsApp to the inbox",
    "how do we hook up our WhatsApp business number",
    "is there a slack integration that posts bounces to a channel",
    "send a slack notification when a reply bounces?",
    "how do I set up SSO with Okta",
    "does SparrowDesk support single sign-on for agents",
    "how do I cancel the subscription",
    "where do I cancel our plan",
    "how do I merge two conversations from the same customer",
    "where are the CSAT scores for each agent",
]
PERSONAL = [
    "Hi, my customer Maria Lopez (maria.lopez@example.com) says our reply bounced with 550 5.1.1, "
    "she asked us to call +44 20 7946 0958 instead",
    "reply to jonas.berg@example.org bounced: 552-5.2.2. Can I text him on 030 1234567?",
    "Dear Mr. Smith wrote back from a new address, old one gave 550-5.1.1. phone: (555) 010-9999",
    "customer anna.k@example.net got 421 4.7.28 twice today, her mobile is +1 415 555 0100",
]
COMMENTS_DOWN = {  # by what went wrong (ours)
    "refused": ["this is a billing question, it should point me to the billing docs",
                "customers ask this every week, we need an article for it",
                "ask Anna at anna.k@example.net, she owns this topic", ""],
    "untabled": ["the code is in the bounce but the article's table doesn't have it, please document it",
                 "=cmd|' /C calc'!A0 (an agent pasted this; it must stay harmless in the CSV)",
                 "general guidance was ok but I need the official wording", ""],
    "slow": ["answer was fine but took forever", "slow again, customer was waiting on the phone"],
    "other": ["didn't tell me what to do next", "too long, agent just needs the action",
              "wrong section, the customer's mailbox is full, not blocked", ""],
}
COMMENTS_UP = ["", "", "exactly what I needed", "quick and right", "sent this to the customer, thanks"]
FALLBACKS = ["unsupported_sentence", "timeout", "unknown_code", "refused"]


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


class Writer:
    """Builds log entries the way the answerer would have answered each question."""

    def __init__(self):
        self.article = load_articles(KB)[0]
        self.table = CodeTable.from_articles([self.article])
        self.dont_know = (f"I don't know: the help article *{self.article.title}* does not answer this, and I "
                          "only answer from it.")

    def source(self, heading: str) -> dict:
        return {"article": self.article.title, "section": heading, "url": f"{self.article.url}#{_slug(heading)}"}

    def entry(self, case: dict, rng: random.Random, created: float) -> LogEntry:
        q = case["question"]
        category = case.get("category", "")
        matches = self.table.analyse(q).matches
        codes = [{"code": m.found.code, "tabled": m.exact, "reason": m.reason} for m in matches]
        small_talk = category == "small_talk"
        refused = not codes and not small_talk and (case.get("expect", {}).get("answered") is False
                                                    or category == "refusal")
        intent = "small_talk" if small_talk else "question"
        if small_talk:
            answer, sources, answered = "You're welcome! Paste a bounce or ask about a code any time.", [], False
        elif refused:
            answer, sources, answered = self.dont_know, [], False
        elif codes:
            parts, sources = [], []
            for m in matches:
                if m.exact:
                    parts.append(f"**{m.row.code}**: from the table in {m.row.section}\n> What it means: "
                                 f"{m.row.meaning}\n> What you can do: {m.row.action}")
                    sources.append(self.source(m.row.section))
                else:
                    parts.append(f"**{m.found.code}** is not in the article's error table. General guidance, "
                                 "not from the article: check the full error message.")
            answer, answered = "\n\n".join(parts), True
            if not sources:
                sources = [self.source("Troubleshooting message delivery failures")]
        else:
            sections = case.get("expect", {}).get("sections") or ["Troubleshooting message delivery failures"]
            sources = [self.source(s) for s in sections]
            answer = f"From the article *{self.article.title}*:\n> " + " ".join(
                b.text for s in self.article.sections if s.heading in sections for b in s.blocks[:1])
            answered = True
        mode = "llm" if rng.random() < 0.15 else "default"
        fallback = rng.choice(FALLBACKS) if mode == "llm" and rng.random() < 0.3 else None
        if len(q) > 1000:  # a whole bounce email: parsing and more codes take longer
            latency = rng.lognormvariate(math.log(180), 0.4)
        else:
            latency = rng.lognormvariate(math.log(45 if mode == "default" else 1800), 0.35)
        if rng.random() < 0.02:  # a cold start or a busy machine
            latency *= rng.uniform(8, 20)
        return LogEntry(id=None, created=created, channel=rng.choices(("chat", "widget", "api"), (55, 30, 15))[0],
                        mode=mode, intent=intent, answered=answered, refused=refused, fallback=fallback,
                        question=q, answer=answer, codes=codes, sources=sources, latency_ms=round(latency, 1),
                        redacted=False)


def cases() -> list[dict]:
    dev = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = [c for c in dev if c["category"] != "adversarial"]
    for c in out:
        if c["category"] == "unanswerable" and c["question"].strip(" !").lower() in ("thanks", "thank you"):
            c["category"] = "small_talk"
    out += [{"id": f"seed-refusal-{i:02d}", "category": "refusal", "question": q} for i, q in
            enumerate(REFUSAL_VARIANTS)]
    out += [{"id": f"seed-personal-{i:02d}", "category": "code_shape", "question": q} for i, q in enumerate(PERSONAL)]
    return out


def _weight(c: dict) -> float:
    """How often agents ask this kind: codes and situations most, long pasted emails least."""
    return {"code_shape": 4, "untabled_code": 3, "situation": 2, "article_question": 1.5, "bounce_paste": 2,
            "bounce_email": 0.6, "unanswerable": 1, "refusal": 1.2, "decoy": 0.8, "small_talk": 1}.get(
        c["category"], 1)


def _when(rng: random.Random, now: float) -> float:
    """A time in the last 30 days, on working hours mostly, busier on weekdays."""
    while True:
        t = now - rng.uniform(0, DAYS * 86400.0)
        tm = time.gmtime(t)
        busy = (0.35 if tm.tm_wday >= 5 else 1.0) * (1.0 if 7 <= tm.tm_hour < 19 else 0.2)
        if rng.random() < busy:
            return t


def seed(log, count: int = 300, seed_value: int = 15, now: float | None = None) -> list[int]:
    """Write ``count`` messages through ``log`` (a ``ConversationLog``); their ids."""
    now = time.time() if now is None else float(now)
    rng = random.Random(seed_value)
    writer, pool = Writer(), cases()
    weights = [_weight(c) for c in pool]
    # every case once when there is room (so every table fills), then by weight
    chosen = rng.sample(pool, min(count, len(pool))) + rng.choices(pool, weights, k=max(0, count - len(pool)))
    rng.shuffle(chosen)
    ids = []
    for c in chosen:
        e = writer.entry(c, rng, _when(rng, now))
        log_id = log.record(e)
        ids.append(log_id)
        bad = e.refused or any(not x["tabled"] for x in e.codes) or e.fallback is not None or e.latency_ms > 1000
        r = rng.random()
        if r < (0.25 if bad else 0.05):
            kind = ("slow" if e.latency_ms > 1000 else "refused" if e.refused else
                    "untabled" if any(not x["tabled"] for x in e.codes) else "other")
            log.rate(log_id, "down", rng.choice(COMMENTS_DOWN[kind]))
        elif r < (0.30 if bad else 0.22):
            log.rate(log_id, "up", rng.choice(COMMENTS_UP))
    return ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.insights_seed", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, help="the SQLite file to write (BOUNCEBOT_FEEDBACK_DB's shape)")
    p.add_argument("--count", type=int, default=300, help="messages to write (default 300)")
    p.add_argument("--seed", type=int, default=15, help="random seed (default 15)")
    p.add_argument("--now", type=float, help="epoch seconds the 30 days end at (default: now)")
    p.add_argument("--keep-personal-data", action="store_true", help="store texts unredacted")
    a = p.parse_args(argv)
    if a.count < 1:
        p.error("--count: at least 1")
    log = SqliteConversationLog(Path(a.db), keep_personal_data=a.keep_personal_data)
    try:
        t0 = time.perf_counter()
        ids = seed(log, a.count, a.seed, a.now)
        took = time.perf_counter() - t0
    finally:
        log.close()
    print(f"Wrote {len(ids)} messages to {a.db} in {took:.2f} s ({len(ids) / took:,.0f} a second).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
