"""The ask routes send the answer serialised once by pydantic (``app.web.api.answer_json``), not through
FastAPI's validation and encoding of a returned model: the same bytes, headers and schema, whatever the
answer holds. The whole app in-process (``TestClient``) over services on the fake embedder."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.answering.contract import Answer, AskRequest

from ..fakes import FakeFeedbackLog, fake_services

REQUESTS = [
    {"question": "What does 550 5.1.1 mean?"},
    {"question": "how do I get an address off the bounce list?"},
    {"question": "What does 5.7.1 mean?"},  # an enhanced code alone
    {"question": "550 5.7.26 and 421 4.7.28 and 999 9.9.9"},  # several codes, one the table lacks
    {"question": "How much does the premium plan cost?"},  # no answer in the article
    {"question": "hi there"},  # small talk
    {"question": "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.2.2\n"
                 "Diagnostic-Code: smtp; 552 5.2.2 mailbox full"},  # a pasted report
    {"question": "ok so what now?", "history": [{"role": "user", "content": "What does 552-5.2.2 mean?"},
                                                {"role": "assistant", "content": "552-5.2.2: mailbox full"}]},
    {"question": "can you write something I can text the customer about this?",
     "history": [{"role": "user", "content": "What does 552-5.2.2 mean? customer jo@example.com"}]},
    {"question": "Ünïcödé “quotes” — and an emoji 📧 with 550 5.1.1"},
]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("answer_json"))


@pytest.fixture(scope="module")
def clients(services):
    from app.web.server import create_app

    reference = FastAPI()

    @reference.post("/ask")
    def ask(body: AskRequest) -> Answer:  # FastAPI's own path: a returned model, validated and encoded
        return services.answerer.ask(body.question, body.history)

    with TestClient(create_app(services, FakeFeedbackLog())) as app, TestClient(reference) as ref:
        yield app, ref


@pytest.mark.parametrize("route", ["/api/ask", "/widget/api/ask"])
@pytest.mark.parametrize("body", REQUESTS, ids=[r["question"][:30] for r in REQUESTS])
def test_the_answer_is_the_bytes_fastapi_would_send(clients, route, body):
    app, ref = clients
    got, want = app.post(route, json=body), ref.post("/ask", json=body)
    assert got.status_code == want.status_code == 200
    assert got.content == want.content
    assert got.headers["content-type"] == want.headers["content-type"] == "application/json"
    assert int(got.headers["content-length"]) == len(got.content)
    assert Answer.model_validate_json(got.content).question == body["question"]


def test_the_schema_still_names_the_answer_contract(clients):
    app, _ = clients
    spec = app.get("/openapi.json").json()
    for route in ("/api/ask", "/widget/api/ask"):
        ok = spec["paths"][route]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/Answer"}, route


def test_bad_input_still_gets_its_json_error(clients):
    app, _ = clients
    r = app.post("/api/ask", json={"question": "   "})
    assert 400 <= r.status_code < 500 and "error" in r.json()
