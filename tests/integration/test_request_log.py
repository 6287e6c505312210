"""The request log of a real ``bouncebot serve`` process (the real model, index and uvicorn): one JSON line
per request on stderr, no uvicorn access-log line beside it, no question text and no address in it."""

from __future__ import annotations

import json

import httpx
import pytest

from evals.load import Serve, _env

from ..unit.test_metrics_logs import EMAIL_Q

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("log_questions", [False, True])
def test_serve_logs_one_json_line_per_request_and_never_an_address(indexed_settings, tmp_path, log_questions):
    env = _env(BOUNCEBOT_INDEX_DIR=str(indexed_settings.index_dir), BOUNCEBOT_COLLECTION=indexed_settings.collection,
               BOUNCEBOT_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"), BOUNCEBOT_LOG_FORMAT="json",
               BOUNCEBOT_LOG_QUESTIONS="on" if log_questions else "off")
    with Serve(env) as server:  # it is ready once it has answered a question (one line too)
        for path in ("/api/ask", "/widget/api/ask"):
            assert httpx.post(f"{server.url}{path}", json={"question": EMAIL_Q}, timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
    output = server.output()  # once it has stopped: every line written
    lines = [line for line in output.splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    asked = [e for e in entries if e["route"] in ("/api/ask", "/widget/api/ask") and e["codes"] == ["550-5.1.1"]]
    assert [(e["route"], e["channel"], e["outcome"]) for e in asked] == [  # the readiness question, then ours
        ("/api/ask", "api", "answered"), ("/api/ask", "api", "answered"), ("/widget/api/ask", "widget", "answered")]
    assert sum(e["route"] == "/metrics" for e in entries) == 1
    assert "HTTP/1.1\"" not in output  # no uvicorn access log beside ours
    assert "jane.doe" not in output and "customer-mail.example.org" not in output
    with_question = [e for e in asked if "question" in e]
    if log_questions:
        assert [e["question"] for e in with_question] == ["What does 550 5.1.1 mean?"] + [
            "Bounce for [email]: 550 5.1.1, what now?"] * 2
    else:
        assert not with_question and "what now" not in output
