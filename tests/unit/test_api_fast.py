"""The JSON API, fast: the whole app (``app.web.server.create_app``: API,
widget, chat, middleware) in-process through FastAPI's ``TestClient``, over
services on the fake embedder and a fake feedback log. No model, no server
process; the same routes over the real model and a real server are in
``tests/integration/test_api.py``."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.errors import SearchUnavailable

from ..fakes import FakeFeedbackLog, FakeRetriever, cells, fake_services, kb_chunks, kb_rows, services_with, wording

ROWS = kb_rows()
PROBLEM = "the vector store did not answer the search within 2 s"
QUESTION_LIMIT = 8 * 1024  # small limits: the 413s need small bodies only
BODY_LIMIT = 32 * 1024
CONTRACT = {"question", "answer", "answered", "codes", "sources", "recipients", "limits", "notices", "support",
            "other_article"}
CODE_FIELDS = {"text", "code", "match", "row", "severity", "explanation", "related", "reason"}
SOURCE_FIELDS = {"kind", "code", "article", "section", "url", "text", "score"}


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("api_index"), max_question_bytes=QUESTION_LIMIT,
                         max_body_bytes=BODY_LIMIT)


@pytest.fixture(scope="module")
def feedback():
    return FakeFeedbackLog()


def client_for(services, feedback_log) -> TestClient:
    from app.web.server import create_app

    # raise_server_exceptions=False: a 500 is answered as a client sees it, not re-raised in the test
    return TestClient(create_app(services, feedback_log), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def http(services, feedback):
    with client_for(services, feedback) as c:
        yield c


@pytest.fixture(scope="module")
def http_without_search(services):
    """The same app whose search is down: the retriever raises ``SearchUnavailable``."""
    retriever = FakeRetriever(SearchUnavailable(PROBLEM))
    with client_for(services_with(services, retriever), FakeFeedbackLog()) as c:
        c.retriever = retriever
        yield c


# --------------------------------------------------------------- /api/ask

def test_ask_returns_the_same_json_as_ask_json(http, services):
    r = http.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    d = r.json()
    assert d == services.answerer.ask("What does 550 5.1.1 mean?").to_dict()
    assert d["question"] == "What does 550 5.1.1 mean?" and d["answered"] is True
    meaning, action = ROWS["550-5.1.1"]
    assert cells(d["codes"][0]["row"]) == {"code": "550-5.1.1", "meaning": meaning, "action": action}


@pytest.mark.parametrize("question", ["What does 550 5.1.1 mean?", "what is 550 5.7.26?",
                                      "How do I get an address off the bounce list?", "What's the weather in Paris?"])
def test_ask_answers_every_field_of_the_contract(http, question):
    d = http.post("/api/ask", json={"question": question}).json()
    assert set(d) >= CONTRACT
    assert isinstance(d["answer"], str) and isinstance(d["answered"], bool)
    for c in d["codes"]:
        assert set(c) >= CODE_FIELDS and c["match"] in ("exact", "none")
        assert (c["row"] is not None) == (c["match"] == "exact")
    for s in d["sources"]:
        assert set(s) >= SOURCE_FIELDS and s["kind"] in ("row", "section")
        assert (s["code"] is not None) == (s["kind"] == "row") and s["url"].startswith("https://")
    assert set(d["limits"]) >= {"codes_found", "codes_examined", "recipients_found", "recipients_examined",
                                "truncated"}
    assert isinstance(d["notices"], list)
    if not d["answered"]:
        assert set(d["support"]) >= {"article", "section", "url", "text"}


def test_ask_answers_a_question_the_article_has_nothing_on_with_answered_false(http):
    d = http.post("/api/ask", json={"question": "What's the weather in Paris?"}).json()
    assert d["answered"] is False and d["sources"] == [] and d["codes"] == []
    assert d["answer"].startswith("I don't know")


BAD_QUESTIONS = [  # (body, status, a word the error must contain); also run over real HTTP in integration/
    ({"question": ""}, 422, "empty"),
    ({"question": "   \n"}, 422, "empty"),
    ({}, 422, "question"),
    ({"question": 42}, 422, "question"),
    ({"question": None}, 422, "question"),
]


@pytest.mark.parametrize("body,status,phrase", [*BAD_QUESTIONS, ({"question": "x" * (QUESTION_LIMIT + 1)}, 413, "limit")])
def test_bad_questions_get_json_errors(http, body, status, phrase):
    r = http.post("/api/ask", json=body)
    assert r.status_code == status and r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"} and phrase in r.json()["error"]


def test_a_question_at_the_limit_is_answered(http):
    paste = "550 5.1.1 user unknown\n"
    r = http.post("/api/ask", json={"question": paste + "y" * (QUESTION_LIMIT - len(paste))})
    assert r.status_code == 200 and r.json()["codes"][0]["match"] == "exact"


def test_a_body_over_the_limit_is_refused_before_it_is_read(http):
    r = http.post("/api/ask", content=json.dumps({"question": "z" * BODY_LIMIT}).encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json() and f"{BODY_LIMIT:,}" in r.json()["error"]


@pytest.mark.parametrize("raw", [b'{"question": "\\ud800 550 5.1.1"}', b'{"question": "550 5.1.1 \\udfff"}'])
def test_a_lone_surrogate_is_422_not_a_crash(http, raw):
    r = http.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not text" in r.json()["error"]


@pytest.mark.parametrize("raw", [b'{"question": "550', b"question=550", b"[1, 2]", b""])
def test_a_malformed_body_is_422_and_the_api_keeps_answering(http, raw):
    r = http.post("/api/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    assert http.post("/api/ask", json={"question": "5.2.2"}).status_code == 200


def test_an_unexpected_error_is_a_500_in_the_same_shape_without_internals(services):
    broken = services_with(services, FakeRetriever(RuntimeError("secret internals /srv/db")))
    with client_for(broken, FakeFeedbackLog()) as c:
        r = c.post("/api/ask", json={"question": "How do I get an address off the bounce list?"})
    assert r.status_code == 500 and set(r.json()) == {"error"}
    assert "secret" not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text


# -------------------------------------------------------- search unavailable

def test_without_search_a_question_that_needs_it_is_503(http_without_search):
    r = http_without_search.post("/api/ask", json={"question": "How do I get an address off the bounce list?"})
    assert r.status_code == 503 and "Search is unavailable" in r.json()["error"]


def test_without_search_codes_are_still_answered(http_without_search):
    r = http_without_search.post("/api/ask", json={"question": "What does 550 5.1.1 mean?"})
    assert r.status_code == 200 and r.json()["codes"][0]["row"]["code"] == "550-5.1.1"
    r = http_without_search.post("/api/ask", json={"question": "what is 550 5.7.26?"})
    assert r.status_code == 200 and r.json()["codes"][0]["match"] == "none"
    assert wording()["search_unavailable"].format(problem=PROBLEM) in r.json()["answer"]


def test_without_search_the_lookup_never_touches_the_store(http_without_search):
    before = len(http_without_search.retriever.calls)
    r = http_without_search.get("/api/lookup", params={"q": "550 5.7.1 and 421 4.7.0"})
    assert r.status_code == 200 and len(http_without_search.retriever.calls) == before


# ------------------------------------------------------------ /api/lookup

def test_lookup_gives_the_codes_against_the_table(http):
    r = http.get("/api/lookup", params={"q": "Remote server: 550 #5.7.1 and 421 4.7.0"})
    assert r.status_code == 200
    d = r.json()
    assert d["text"] == "Remote server: 550 #5.7.1 and 421 4.7.0"
    assert [(c["code"], c["match"]) for c in d["codes"]] == [("550-5.7.1", "exact"), ("421-4.7.0", "none")]
    assert d["codes"][0]["row"]["meaning"] == ROWS["550-5.7.1"][0] and d["codes"][1]["row"] is None
    assert set(d) >= {"text", "codes", "recipients", "limits"} and d["limits"]["truncated"] is False


def test_lookup_needs_no_model(tmp_path):
    """A lookup on services whose embedder was never used leaves it unloaded."""
    from ..fakes import FakeEmbedder, fake_settings
    from app.answering.services import build

    embedder = FakeEmbedder()
    s = build(fake_settings(tmp_path), embedder=embedder)
    with client_for(s, FakeFeedbackLog()) as c:
        assert c.get("/api/lookup", params={"q": "550 5.1.1"}).json()["codes"][0]["match"] == "exact"
    assert embedder.loaded is False and embedder.queries == []


@pytest.mark.parametrize("params,status", [({}, 422), ({"q": " "}, 422), ({"q": "x" * (QUESTION_LIMIT + 1)}, 413)])
def test_lookup_without_text_or_over_the_limit(http, params, status):
    r = http.get("/api/lookup", params=params)
    assert r.status_code == status and "error" in r.json()


# ----------------------------------------------------------- /api/feedback

def test_feedback_is_stored_with_what_the_agent_saw(http, feedback):
    answer = http.post("/api/ask", json={"question": "how much does a seat cost?"}).json()
    before = feedback.count()
    r = http.post("/api/feedback", json={"rating": "down", "comment": "should mention billing",
                                         "question": answer["question"], "answer": answer["answer"],
                                         "answered": answer["answered"], "codes": answer["codes"],
                                         "sources": answer["sources"]})
    assert r.status_code == 201 and r.json()["id"] == feedback.count() == before + 1
    saved = feedback.all("down")[-1]
    assert (saved.question, saved.comment, saved.answered) == ("how much does a seat cost?", "should mention billing",
                                                              False)


@pytest.mark.parametrize("body", [{"rating": "meh", "question": "q"}, {"question": "q"}, {"rating": "up"}])
def test_malformed_feedback_is_422(http, body):
    r = http.post("/api/feedback", json=body)
    assert r.status_code == 422 and "error" in r.json()


def test_feedback_that_cannot_be_written_is_refused_not_lost(services):
    from app.web import feedback as fb

    log = FakeFeedbackLog(fail_with=fb.FeedbackUnavailable("The feedback database was deleted or replaced."))
    with client_for(services, log) as c:
        r = c.post("/api/feedback", json={"rating": "up", "question": "550 5.1.1", "answer": "a"})
        assert r.status_code == 503 and "deleted" in r.json()["error"] and log.count() == 0
        h = c.get("/healthz").json()
    assert h["feedback_problem"] and "deleted" in h["feedback_problem"]


# ---------------------------------------------------------------- /healthz

def test_healthz_reports_the_index_model_table_and_feedback(http, services, feedback):
    http.post("/api/ask", json={"question": "How do I get an address off the bounce list?"})  # index open
    h = http.get("/healthz").json()
    assert h["status"] == "ok" and h["store"]["state"] == "ok"
    assert h["index"]["documents"] == len(kb_chunks()) and h["index"]["where"] == str(services.settings.index_dir)
    assert h["model_loaded"] is True and h["table_rows"] == len(ROWS)
    assert h["feedback"] == feedback.count() and h["feedback_problem"] is None


def test_healthz_counts_the_table_rows_of_the_version_being_served(services):
    """After a live re-index (``LiveAnswerer.swap``) /healthz counts the new version's rows, not start-up's."""
    import dataclasses

    from app.answering.live import LiveAnswerer
    from app.codes.table import CodeTable

    live = LiveAnswerer(services.answerer)
    served = dataclasses.replace(services, answerer=live)
    with client_for(served, FakeFeedbackLog()) as c:
        assert c.get("/healthz").json()["table_rows"] == len(ROWS)
        smaller = services_with(services, FakeRetriever([])).answerer
        object.__setattr__(smaller, "table", CodeTable(services.table.rows[:3]))
        live.swap(smaller)
        assert c.get("/healthz").json()["table_rows"] == 3


def test_healthz_is_degraded_while_search_is_down(tmp_path):
    from ..fakes import broken_services

    with client_for(broken_services(tmp_path), FakeFeedbackLog()) as c:
        assert c.post("/api/ask", json={"question": "How do I get an address off the bounce list?"}).status_code == 503
        h = c.get("/healthz").json()
    assert h["status"] == "degraded" and h["store"]["state"] == "unavailable"
    assert "Connection refused" in h["store"]["problem"] and h["index"]["documents"] is None


def test_openapi_lists_the_routes_and_docs_are_local(http):
    spec = http.get("/openapi.json").json()
    assert {"/api/ask", "/api/lookup", "/api/feedback", "/healthz"} <= set(spec["paths"])
    docs = http.get("/docs")
    assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()


def test_openapi_shows_the_verdict_and_the_message_kind(http):
    """Issue 12: a recipient's action and verdict (a typed Verdict), and what a pasted message is."""
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    verdict = schemas["Verdict"]
    assert list(verdict["properties"]) == ["reason", "hard", "retry", "suppress", "evidence", "basis"]
    assert all(p.get("description") for p in verdict["properties"].values())
    assert verdict["properties"]["retry"]["enum"] == ["no", "after_fix", "later", "wait"]
    recipient = schemas["Recipient"]["properties"]
    assert list(recipient) == ["recipient", "status", "reply_code", "diagnostic", "decisive", "action", "verdict"]
    assert recipient["action"]["enum"] == ["failed", "delayed", "delivered", "relayed", "expanded"]
    assert {"$ref": "#/components/schemas/Verdict"} in recipient["verdict"]["anyOf"]
    assert recipient["verdict"]["description"] and recipient["action"]["description"]
    for model in ("Answer", "Lookup"):
        kind = schemas[model]["properties"]["message_kind"]
        after = ["mode", "llm"] if model == "Answer" else []  # issue 13's fields come after it
        assert list(schemas[model]["properties"])[-1 - len(after):] == ["message_kind", *after]
        assert "not_report" in kind["description"]


def test_the_api_sends_the_kind_of_a_pasted_message(http):
    from .test_lookup import DSN

    d = http.post("/api/ask", json={"question": DSN}).json()
    assert d["message_kind"] == "failure" and set(d["recipients"][0]) >= {"action", "verdict"}
    assert http.get("/api/lookup", params={"q": DSN}).json()["message_kind"] == "failure"
    assert http.get("/api/lookup", params={"q": "how do I get off the bounce list?"}).json()["message_kind"] is None


def test_the_widget_api_answers_the_same_contract(http):
    q = {"question": "What does 552 5.2.2 mean?"}
    assert http.post("/widget/api/ask", json=q).json() == http.post("/api/ask", json=q).json()


# ------------------------------------------------------------------ the answer as a stream of events (NDJSON)

def events_of(r) -> list[dict]:
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.mark.parametrize("path", ["/api/ask/stream", "/widget/api/ask/stream"])
def test_the_default_mode_streams_the_skeleton_then_the_final_answer(http, path):
    q = {"question": "What does 550 5.1.1 mean?"}
    events = events_of(http.post(path, json=q))
    assert [e["type"] for e in events] == ["answer_skeleton", "final"]
    assert events[-1]["answer"] == http.post("/api/ask", json=q).json()


@pytest.mark.parametrize("path", ["/api/ask/stream", "/widget/api/ask/stream"])
@pytest.mark.parametrize("body,status,phrase", [*BAD_QUESTIONS, ({"question": "x" * (QUESTION_LIMIT + 1)}, 413, "limit")])
def test_a_bad_question_to_the_stream_is_a_json_error(http, path, body, status, phrase):
    r = http.post(path, json=body)
    assert r.status_code == status and r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"} and phrase in r.json()["error"]


def test_a_body_over_the_limit_is_refused_by_the_stream_too(http):
    r = http.post("/widget/api/ask/stream", content=json.dumps({"question": "z" * BODY_LIMIT}).encode(),
                  headers={"content-type": "application/json"})
    assert r.status_code == 413 and f"{BODY_LIMIT:,}" in r.json()["error"]


def test_the_llm_mode_streams_its_tokens_between_skeleton_and_final(services):
    import dataclasses

    from .test_chat_fast import Scripted

    scripted = dataclasses.replace(services, answerer=Scripted(services.answerer, ["The address ", "is invalid."]))
    with client_for(scripted, FakeFeedbackLog()) as c:
        events = events_of(c.post("/widget/api/ask/stream", json={"question": "What does 550 5.1.1 mean?"}))
    assert [e["type"] for e in events] == ["answer_skeleton", "token", "token", "final"]
    assert events[0]["answer"]["codes"][0]["row"]["code"] == "550-5.1.1"
    final = events[-1]["answer"]
    assert final["mode"] == "llm" and final["answer"].startswith("The address is invalid.")


def test_a_failure_after_the_stream_started_ends_it_with_an_error_event(services):
    import dataclasses

    class Broken:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def stream_ask(self, question, history=None):
            yield {"type": "answer_skeleton", "answer": self.inner.ask(question, history).to_dict()}
            raise RuntimeError("the model's server went away")

    with client_for(dataclasses.replace(services, answerer=Broken(services.answerer)), FakeFeedbackLog()) as c:
        events = events_of(c.post("/api/ask/stream", json={"question": "What does 550 5.1.1 mean?"}))
    assert [e["type"] for e in events] == ["answer_skeleton", "error"] and "went away" not in events[-1]["error"]
