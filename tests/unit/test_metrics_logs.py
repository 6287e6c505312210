"""/metrics and the request log, fast: the whole app (``create_app``) in-process through FastAPI's
``TestClient``, over services on the fake embedder. The same figures summed over two processes are
in ``tests/integration/test_metrics_multiprocess.py``."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from app.answering.contract import Answer, LLMReport
from app.errors import SearchUnavailable
from app.web.logs import LOGGER, Entry, RequestLog, redact
from app.web.metrics import Observer, outcome_of

from ..fakes import FakeFeedbackLog, FakeRetriever, fake_services, services_with

ORIGIN = "https://help.example.com"
CODE_Q = "What does 550 5.1.1 mean?"
EMAIL_Q = "Bounce for jane.doe+vip@customer-mail.example.org: 550 5.1.1, what now?"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("metrics_index"), allowed_origins=(ORIGIN,), max_body_bytes=32 * 1024)


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def lines():
    handler = Lines()
    log = logging.getLogger(LOGGER)
    log.addHandler(handler)
    yield handler.lines
    log.removeHandler(handler)


def app_for(services, feedback_log=None, **settings_changes):
    from app.web.server import create_app

    settings = services.settings.with_(**settings_changes)
    return TestClient(create_app(services, feedback_log or FakeFeedbackLog(), settings), raise_server_exceptions=False)


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, of every sample on the page (histogram buckets left out)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "_bucket{" not in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def value(page: dict, name: str, **labels) -> float:
    """The sample ``name`` whose labels include ``labels`` (0 when there is none)."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    got = [v for k, v in page.items() if (k == name or k.startswith(name + "{")) and all(w in k for w in want)]
    return sum(got)


# ------------------------------------------------------------------ outcomes, from the Answer's fields


@pytest.mark.parametrize("fields, outcome", [
    (dict(answered=True), "answered"),
    (dict(answered=False), "refused"),
    (dict(answered=False, intent="small_talk"), "small_talk"),
    (dict(answered=True, mode="llm", llm=LLMReport(model="m", used=True)), "answered"),
    (dict(answered=True, mode="default", llm=LLMReport(model="m", used=False, fallback="timeout")), "fallback"),
    (dict(answered=False, llm=LLMReport(model="m", used=False, fallback="refused")), "fallback"),
])
def test_the_outcome_is_read_from_the_answer_and_its_json(fields, outcome):
    answer = Answer(question="q", answer="a", **fields)
    assert outcome_of(answer) == outcome
    assert outcome_of(answer.to_dict()) == outcome  # a stream's final answer arrives as JSON


# ------------------------------------------------------------------ every family after requests

# (method, path, body, route label, status, channel, outcome)
REQUESTS = [
    ("POST", "/api/ask", {"question": CODE_Q}, "/api/ask", 200, "api", "answered"),
    ("POST", "/api/ask", {"question": "how much does SparrowDesk cost per seat?"}, "/api/ask", 200, "api", "refused"),
    ("POST", "/api/ask", {"question": "hi"}, "/api/ask", 200, "api", "small_talk"),
    ("POST", "/api/ask/stream", {"question": CODE_Q}, "/api/ask/stream", 200, "api", "answered"),
    ("POST", "/widget/api/ask", {"question": CODE_Q}, "/widget/api/ask", 200, "widget", "answered"),
    ("POST", "/widget/api/ask/stream", {"question": "hi"}, "/widget/api/ask/stream", 200, "widget", "small_talk"),
    ("POST", "/api/ask", {"question": ""}, "/api/ask", 422, "api", None),  # bad input: a request, not an answer
    ("POST", "/api/ask", {"question": "x" * 40_000}, "/api/ask", 413, "api", None),  # refused before routing
    ("GET", "/api/lookup?q=550+5.1.1+for+bob%40example.com", None, "/api/lookup", 200, None, None),
    ("GET", "/widget/panel.css", None, "/widget/{name}", 200, None, None),
    ("GET", "/widget/no-such-file.js", None, "/widget/{name}", 404, None, None),
    ("GET", "/healthz", None, "/healthz", 200, None, None),
    ("GET", "/docs/static/swagger-ui.css", None, "/docs/static/{path}", 200, None, None),
    ("GET", "/no/such/page/for/alice@example.com", None, "unmatched", 404, None, None),
]


@pytest.fixture(scope="module")
def after_requests(services):
    """The metrics page after each of REQUESTS once, two feedback posts and a failed one."""
    feedback = FakeFeedbackLog()
    with app_for(services, feedback) as http:
        for method, path, body, *_ in REQUESTS:
            http.request(method, path, json=body)
        for rating in ("up", "down", "down"):
            assert http.post("/api/feedback", json={"rating": rating, "question": CODE_Q, "answer": "a"}).status_code == 201
        feedback.fail_with = OSError("disk full")
        assert http.post("/api/feedback", json={"rating": "up", "question": CODE_Q, "answer": "a"}).status_code >= 500
        page = http.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    return page.text


@pytest.mark.parametrize("method, path, body, route, status, channel, outcome", REQUESTS)
def test_each_request_is_counted_and_timed_by_route_template_and_status(after_requests, method, path, body, route,
                                                                        status, channel, outcome):
    page = samples(after_requests)
    labels = dict(method=method, route=route, status=status)
    assert value(page, "bouncebot_http_requests_total", **labels) >= 1
    assert value(page, "bouncebot_http_request_duration_seconds_count", **labels) >= 1
    if outcome:
        assert value(page, "bouncebot_answers_total", channel=channel, outcome=outcome) >= 1


def test_labels_never_hold_a_raw_path_or_a_query(after_requests):
    routes = set(re.findall(r'route="([^"]*)"', after_requests))
    assert routes <= {r[3] for r in REQUESTS} | {"/api/feedback"}
    assert "@" not in after_requests and "no-such-file" not in after_requests


def test_answers_feedback_and_index_families(after_requests, services):
    page = samples(after_requests)
    assert value(page, "bouncebot_answers_total", channel="api", outcome="answered") == 2
    assert value(page, "bouncebot_answers_total", channel="widget") == 2
    assert value(page, "bouncebot_answers_total", outcome="fallback") == 0  # present, at 0, from the start
    assert value(page, "bouncebot_feedback_total", rating="up") == 1  # the one that was not saved is not counted
    assert value(page, "bouncebot_feedback_total", rating="down") == 2
    assert page["bouncebot_feedback_stored"] == 3
    assert page["bouncebot_index_documents"] == len(services.answerer.retriever_if_open())
    assert 0 <= page["bouncebot_index_age_seconds"] < 24 * 3600  # built by this test session
    assert "bouncebot_http_requests_in_progress" in page


@pytest.mark.parametrize("failure, status", [
    (SearchUnavailable("the vector store did not answer"), 503),
    (RuntimeError("boom"), 500),
])
def test_an_answer_that_fails_on_the_server_counts_as_an_error(services, failure, status):
    broken = services_with(services, FakeRetriever(failure))
    with app_for(broken) as http:
        assert http.post("/api/ask", json={"question": "how do I get an address off the bounce list?"}).status_code == status
        page = samples(http.get("/metrics").text)
    assert value(page, "bouncebot_answers_total", channel="api", outcome="error") == 1


def test_a_language_model_fallback_is_counted_from_the_answer_the_route_returns(services, monkeypatch):
    def ask(question, history=None):
        return Answer(question=question, answer="default", answered=True, mode="default",
                      llm=LLMReport(model="m", used=False, fallback="unsupported_sentence"))

    with app_for(services) as http:
        monkeypatch.setattr(services.answerer, "ask", ask)
        assert http.post("/widget/api/ask", json={"question": CODE_Q}).status_code == 200
        page = samples(http.get("/metrics").text)
    assert value(page, "bouncebot_answers_total", channel="widget", outcome="fallback") == 1


def test_chat_answers_are_counted_as_the_chat_channel(services, lines):
    from app.web.chat import ChatUI

    observer = Observer(services.settings, services)
    chat = ChatUI(services.answerer, on_answer=observer.chat_answer)
    for message in (CODE_Q, "hi"):
        list(chat.respond(message, []))
    page = samples(observer.metrics.exposition().decode())
    assert value(page, "bouncebot_answers_total", channel="chat", outcome="answered") == 1
    assert value(page, "bouncebot_answers_total", channel="chat", outcome="small_talk") == 1
    assert "channel=chat outcome=answered codes=550-5.1.1" in lines[-2]


# ------------------------------------------------------------------ /metrics: who may read it


def test_metrics_are_not_readable_cross_origin_even_by_the_widgets_allowlist(services):
    with app_for(services) as http:
        api = http.post("/api/ask", json={"question": CODE_Q}, headers={"Origin": ORIGIN})
        assert api.headers.get("access-control-allow-origin") == ORIGIN  # the allowlist works on the API ...
        got = http.get("/metrics", headers={"Origin": ORIGIN})
        assert got.status_code == 200 and "access-control-allow-origin" not in got.headers  # ... not on /metrics
        pre = http.options("/metrics", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in pre.headers


def test_metrics_can_be_turned_off(services):
    with app_for(services, metrics=False) as http:
        assert http.get("/metrics").status_code == 404
        assert http.post("/api/ask", json={"question": CODE_Q}).status_code == 200  # the rest unchanged


# ------------------------------------------------------------------ the log line


def _ask_lines(lines):
    return [line for line in lines if "/api/ask" in line]


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("log_questions", [False, True])
def test_one_line_per_request_without_the_question_or_any_address(services, lines, log_format, log_questions):
    with app_for(services, log_format=log_format, log_questions=log_questions) as http:
        assert http.post("/api/ask", json={"question": EMAIL_Q}).status_code == 200
    (line,) = _ask_lines(lines)
    assert "jane.doe" not in line and "customer-mail.example.org" not in line and "@" not in line
    if log_format == "json":
        d = json.loads(line)
        assert {k: d[k] for k in ("event", "method", "route", "status", "channel", "outcome", "codes")} == {
            "event": "request", "method": "POST", "route": "/api/ask", "status": 200, "channel": "api",
            "outcome": "answered", "codes": ["550-5.1.1"]}
        assert isinstance(d["duration_ms"], float) and d["ts"].endswith("Z")
        assert ("question" in d) is log_questions
        if log_questions:
            assert d["question"] == "Bounce for [email]: 550 5.1.1, what now?"
    else:
        assert re.search(r"Z POST /api/ask 200 \d+\.\dms channel=api outcome=answered codes=550-5.1.1", line)
        assert ("what now" in line) is log_questions
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_every_request_gets_exactly_one_line(services, lines):
    with app_for(services, log_format="json") as http:
        for method, path, body, *_ in REQUESTS:
            http.request(method, path, json=body)
    got = [json.loads(line) for line in lines]
    assert [(d["method"], d["route"], d["status"]) for d in got] == [(m, r, s) for m, _, _, r, s, _, _ in REQUESTS]


@pytest.mark.parametrize("text, expected", [
    ("mail to bob@example.com failed", "mail to [email] failed"),
    ("<Jane.Doe+tag@sub.example.co.uk>: 550 5.1.1", "<[email]>: 550 5.1.1"),
    ("two: a@b.io, c.d@e-f.example", "two: [email], [email]"),
    ("no address, only 550 5.1.1 and 10.5.1.1", "no address, only 550 5.1.1 and 10.5.1.1"),
])
def test_addresses_are_redacted(text, expected):
    assert redact(text) == expected


def test_a_question_with_newlines_stays_on_one_text_line():
    line = RequestLog("text", log_questions=True).line(Entry(method="POST", route="/api/ask", status=200,
                                                            question="line one\nline two"))
    assert "\n" not in line and '"line one\\nline two"' in line


# ------------------------------------------------------------------ serve's multiprocess folder


def test_serve_makes_a_multiprocess_folder_for_several_workers_and_removes_it(monkeypatch):
    import os

    from app.web.metrics import MULTIPROC_ENV, multiprocess_dir

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with multiprocess_dir(1) as path:
        assert path is None and MULTIPROC_ENV not in os.environ  # one process: its own memory is the whole server
    with multiprocess_dir(2) as path:
        assert os.environ[MULTIPROC_ENV] == path and os.path.isdir(path)
        open(os.path.join(path, "counter_123.db"), "wb").close()
    assert MULTIPROC_ENV not in os.environ and not os.path.exists(path)


def test_an_operators_multiprocess_folder_is_used_and_kept(monkeypatch, tmp_path):
    import os

    from app.web.metrics import MULTIPROC_ENV, multiprocess_dir

    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with multiprocess_dir(4) as path:
        assert path == str(tmp_path)
    assert os.environ[MULTIPROC_ENV] == str(tmp_path) and tmp_path.is_dir()
