"""The JSON API over HTTP against a real server on loopback."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ..conftest import kb_documents
from .test_answer import SEED_ROWS, check_contract

pytestmark = pytest.mark.slow




@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_ask_returns_the_contract(http, answerer):
    r = http.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
    assert r.status_code == 200
    d = r.json()
    check_contract(d)
    assert d == answerer.ask("What does 550 5.1.1 mean?").to_dict()  # the same JSON as `ask --json`
    assert d["codes"][0]["row"]["meaning"] == SEED_ROWS["550-5.1.1"][0]


def test_lookup_needs_no_model_and_matches_the_cli_contract(http):
    r = http.get("/api/lookup", params={"q": "Remote server: 550 #5.7.1 and 421 4.7.0"})
    assert r.status_code == 200
    codes = r.json()["codes"]
    assert [(c["code"], c["match"]) for c in codes] == [("550-5.7.1", "exact"), ("421-4.7.0", "none")]


@pytest.mark.parametrize(
    "body,status,phrase",
    [
        ({"question": ""}, 422, "empty"),
        ({"question": "   \n"}, 422, "empty"),
        ({}, 422, "question"),
        ({"question": 42}, 422, "question"),
        ({"question": "x" * (210 * 1024)}, 413, "limit"),
    ],
)
def test_bad_questions(http, body, status, phrase):
    r = http.post("/api/ask", json=body)
    assert r.status_code == status
    assert phrase in r.json()["error"]


def test_malformed_json_and_recovery(http):
    r = http.post("/api/ask", content=b'{"question": "550', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "Malformed request" in r.json()["error"]
    assert http.post("/api/ask", json={"question": "5.2.2"}).status_code == 200  # still answering


def test_lookup_without_text(http):
    assert http.get("/api/lookup").status_code == 422
    assert http.get("/api/lookup", params={"q": " "}).status_code == 422


def test_feedback_is_stored(http, feedback_log):
    before = feedback_log.count()
    answer = http.post("/api/ask", json={"question": "how much does a seat cost?"}).json()
    r = http.post("/api/feedback", json={"rating": "down", "comment": "should mention billing article",
                                         "question": answer["question"], "answer": answer["answer"],
                                         "answered": answer["answered"], "codes": answer["codes"],
                                         "sources": answer["sources"]})
    assert r.status_code == 201
    assert feedback_log.count() == before + 1
    saved = feedback_log.all("down")[-1]
    assert (saved.question, saved.comment, saved.answered) == ("how much does a seat cost?",
                                                              "should mention billing article", False)
    assert http.post("/api/feedback", json={"rating": "meh", "question": "q"}).status_code == 422
    assert http.post("/api/feedback", json={"rating": "up", "question": " "}).status_code == 422


def test_healthz_and_openapi(http):
    h = http.get("/healthz").json()
    assert h["status"] == "ok" and h["model_loaded"] is True
    assert h["index"]["documents"] == kb_documents() and h["table_rows"] == 7
    spec = http.get("/openapi.json").json()
    assert {"/api/ask", "/api/lookup", "/api/feedback", "/healthz"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200


def test_50_concurrent_asks_all_answered_correctly(server):
    codes = sorted(SEED_ROWS)
    questions = [f"reply bounced with {codes[i % len(codes)]}, what now?" for i in range(50)]

    def ask(q):
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return q, c.post("/api/ask", json={"question": q})

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(ask, questions))
    assert all(r.status_code == 200 for _, r in results)
    for q, r in results:
        row = r.json()["codes"][0]["row"]
        assert row["code"] in q and row["meaning"] == SEED_ROWS[row["code"]][0]
