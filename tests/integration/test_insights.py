"""Insights with the real MiniLM embedder: refused questions of the seeded log grouped by meaning,
and ``bouncebot insights`` loading the model itself. Prints how long the grouping took."""

from __future__ import annotations

import json
import time

import pytest

from app.insights import Period, compute

from ..unit.test_insights import NOW, seeded  # noqa: F401 - the seeded log (a fixture), as the unit tests have it

pytestmark = pytest.mark.slow


def test_the_real_embedder_groups_paraphrases_and_keeps_requests_apart(seeded, embedder):
    log, _ = seeded
    period = Period.parse("30d", now=NOW)
    t0 = time.perf_counter()
    ins = compute(log, period, embedder.embed_documents)
    took = time.perf_counter() - t0
    words = compute(log, period)
    print(f"\ninsights of 300 messages with MiniLM grouping: {took:.2f} s; "
          f"{len(ins.refused_groups)} groups (shared words: {len(words.refused_groups)})")
    text = {e.id: e.question for e in log.entries(0)}

    def group_of(question):
        return next({text[i] for i in g["ids"]} for g in ins.refused_groups if question in {text[i] for i in g["ids"]})

    assert ins.grouping == "embeddings" and len(ins.refused_groups) < len(words.refused_groups)
    assert "what does SparrowDesk cost for each agent per month" in group_of("how much does SparrowDesk cost per agent?")
    assert {"send a slack notification when a reply bounces?",
            "can i integrate with slack so bounces post to a channel"} <= group_of(
        "is there a slack integration that posts bounces to a channel")
    assert "can the widget on our site be a different colour" in group_of(
        "how do I change the chat widget colour to match our brand")
    assert "where are the CSAT scores for each agent" not in group_of("can I export every conversation as a CSV file")
    assert "how do I cancel the subscription" not in group_of("how much does SparrowDesk cost per agent?")
    assert sum(g["count"] for g in ins.refused_groups) == ins.totals["refused"]


def test_the_command_groups_with_the_model_by_default(seeded, monkeypatch, capsys):
    from app.cli import main

    _, path = seeded
    monkeypatch.setenv("BOUNCEBOT_FEEDBACK_DB", str(path))
    days = int((time.time() - NOW) / 86400) + 31
    assert main(["insights", "--since", f"{days}d", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["grouping"] == "embeddings" and d["totals"]["questions"] == 300
    assert main(["insights", "--since", f"{days}d"]) == 0
    assert "grouped by meaning (embeddings)" in capsys.readouterr().out
