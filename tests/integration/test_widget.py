"""The help-centre widget over HTTP against real servers on loopback: the
loader, the panel's CSP, CORS per origin, the widget's rate limit, /demo.
(The browser side is tests/integration/browser/test_widget_browser.py.)"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from ..conftest import ROOT
from ..servers import LiveServer
from ..unit.test_widget_panel import panel_js
from .test_answer import SEED_ROWS

ALLOWED = "https://help.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory):
    from app.web.feedback import FeedbackLog

    return FeedbackLog(tmp_path_factory.mktemp("feedback") / "feedback.sqlite3")


def start(services, feedback_log, **settings) -> LiveServer:
    from app.web.server import create_app

    return LiveServer(create_app(services, feedback_log, settings=services.settings.with_(**settings)))


@pytest.fixture(scope="module")
def server(services, feedback_log):
    """Allows one other site; answers 3 widget questions a minute per client."""
    with start(services, feedback_log, allowed_origins=(ALLOWED, "http://127.0.0.1:9"), widget_rate="3/minute") as s:
        yield s


@pytest.fixture(scope="module")
def default_server(services, feedback_log):
    """BOUNCEBOT_ALLOWED_ORIGINS unset: the server's own origin only."""
    with start(services, feedback_log) as s:
        yield s


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}


# ---------------------------------------------------------------------------- settings


def test_settings_read_the_allowlist_and_the_rate():
    from app.config import Settings, parse_rate
    from app.errors import BadSetting

    s = Settings.from_env({"BOUNCEBOT_ALLOWED_ORIGINS": " https://Help.Example.com/ ,http://127.0.0.1:8000,,",
                           "BOUNCEBOT_WIDGET_RATE": "5/hour"})
    assert s.allowed_origins == ("https://help.example.com", "http://127.0.0.1:8000")
    default_ports = Settings.from_env({"BOUNCEBOT_ALLOWED_ORIGINS": "https://a.example:443,http://b.example:80"})
    assert default_ports.allowed_origins == ("https://a.example", "http://b.example")  # as browsers send them
    assert parse_rate(s.widget_rate) == (5, 3600)
    assert Settings.from_env({}).allowed_origins == ()
    assert parse_rate(Settings.from_env({}).widget_rate) == (20, 60)
    for bad in ("*", "https://help.example.com/path", "help.example.com", "https://a.com; script-src *"):
        with pytest.raises(BadSetting, match="BOUNCEBOT_ALLOWED_ORIGINS"):
            Settings.from_env({"BOUNCEBOT_ALLOWED_ORIGINS": bad})
    for bad in ("20", "0/minute", "20/fortnight", "many/minute"):
        with pytest.raises(BadSetting, match="BOUNCEBOT_WIDGET_RATE"):
            Settings.from_env({"BOUNCEBOT_WIDGET_RATE": bad})


def test_readme_documents_the_settings_and_the_widget():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("BOUNCEBOT_ALLOWED_ORIGINS", "BOUNCEBOT_WIDGET_RATE"):
        assert re.search(rf"^\| `{name}` \|", readme, re.M), name
    for needed in ("/widget.js", "data-accent", "data-position", "data-greeting", "data-title", "/demo",
                   "docs/widget-mobile.png", "docs/widget-desktop.png"):
        assert needed in readme, needed


# ---------------------------------------------------------------------------- the rate limiter alone


def test_token_bucket_refills_and_keeps_clients_apart():
    from app.web.widget import RateLimiter

    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0], max_clients=2)
    assert [limiter.hit("a"), limiter.hit("a")] == [0, 0]
    assert limiter.hit("a") == pytest.approx(30)  # one token every 30 s
    assert limiter.hit("b") == 0  # another client has its own bucket
    now[0] = 29.0
    assert limiter.hit("a") == pytest.approx(1)
    now[0] = 30.0
    assert limiter.hit("a") == 0
    limiter.hit("c")  # a third client: the least recently seen ("b") is forgotten
    assert set(limiter._buckets) == {"a", "c"}
    assert limiter.describe() == "2 per minute"


# ---------------------------------------------------------------------------- served files


def test_widget_js_is_served_as_javascript(http):
    r = http.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "attachShadow" in r.text and "window.Bouncebot" in r.text
    assert "innerHTML" not in r.text and "set-cookie" not in r.headers


def test_panel_files_are_served_with_their_types(http):
    from app.web.widget import PANEL_SCRIPTS

    for name in PANEL_SCRIPTS:  # every script panel.html loads
        r = http.get(f"/widget/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == "text/javascript; charset=utf-8", name
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-content-type-options"] == "nosniff", name
        assert r.text == (ROOT / "app/web/static" / name).read_text(encoding="utf-8"), name
        assert "innerHTML" not in r.text, name  # answers are built with textContent
    assert http.get("/widget/panel.css").headers["content-type"] == "text/css; charset=utf-8"
    assert http.get("/widget/demo.css").headers["content-type"] == "text/css; charset=utf-8"
    r = http.get("/widget/nothing.js")
    assert r.status_code == 404 and "error" in r.json()


def test_panel_may_be_framed_only_by_the_allowlist(http, server):
    r = http.get("/widget")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = directives(r.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'self'", ALLOWED, "http://127.0.0.1:9"]
    assert csp["script-src"] == ["'self'"] and csp["default-src"] == ["'none'"]  # no inline script runs
    assert "x-frame-options" not in r.headers  # the CSP decides


def test_without_an_allowlist_only_the_server_itself_may_frame_the_panel(default_server):
    r = httpx.get(f"{default_server.url}/widget", timeout=30)
    assert directives(r.headers["content-security-policy"])["frame-ancestors"] == ["'self'"]


def served_config(page: str) -> dict:
    blob = re.search(r'<script type="application/json" id="bb-config">(.*?)</script>', page, re.S).group(1)
    assert "<" not in blob and ">" not in blob
    return json.loads(blob)


def test_panel_config_is_data_not_markup(http):
    page = http.get("/widget").text
    config = served_config(page)
    # no "rows", no "support": answers say what they cite; "stream": whether answers stream (LLM mode)
    # "articles": how many the KB holds (more than one: the refusal names the help centre's, not one article)
    assert set(config) == {"article", "articles", "labels", "examples", "stream"}
    assert config["article"] == "Common Email Delivery Errors" and config["articles"] == 1
    for meaning, action in SEED_ROWS.values():  # the panel is not sent the table
        assert meaning not in page and action not in page
    assert "{{" not in page  # every text of the page was filled in


def test_panel_labels_are_the_wording_files(http):
    from app._data import data_file
    from app.answering.render import plain

    wording = data_file("app.answering", "wording.yaml")
    labels = served_config(http.get("/widget").text)["labels"]
    # the sentences and labels shared with the chat and the CLI: the file's own keys, without their Markdown
    assert labels["related_line"] == "Closest in the article's table (different codes, not an exact match): {codes}."
    for key in ("meaning_label", "action_label", "general_action_label", "no_general", "related_line",
                "passages_intro_after_codes", "severity_labels", "basis_labels"):
        assert labels[key] == wording[key], key
    assert labels["labels"] == wording["labels"]  # in_table, not_in_table, table_row...
    assert labels["general_heading"] == "General guidance, not from the article (from {basis_label}):"
    for key in ("not_in_table", "dont_know", "other_article", "passages_intro", "support_intro"):
        assert labels[key] == plain(wording[key]), key
    assert labels["support_intro"] == "For anything the article does not cover, its section {section} says:"
    # the conversation's drafts and hand-offs: their own blocks, without their Markdown
    for block in ("draft", "handoff"):
        assert labels[block] == {k: plain(v) for k, v in wording[block].items()}, block
    assert labels["handoff"]["mailto"] == "Email this request to {to}"
    # the widget's own texts: wording.yaml's widget: block (its loader: part goes to widget.js only)
    own = {k: v for k, v in wording["widget"].items() if k != "loader"}
    assert labels["widget"] == own and own["greeting"] and own["new_chat"]

    def texts(value):
        return [t for v in value.values() for t in texts(v)] if isinstance(value, dict) else [value]

    assert all("*" not in t and "](" not in t for t in texts(labels))
    assert not set(texts(wording["widget"]["loader"])) & set(texts(labels))  # e.g. "Close chat"


def test_panel_js_has_no_wording_of_its_own():
    js = panel_js()  # all the panel's scripts
    code = re.sub(r"/\* .*?\*/|// [^\n]*", "", js, flags=re.S)  # comments are not shown (all start "/* ", "// ")
    string = r'"((?:[^"\\\n]|\\.)*)"'
    literals = re.findall(string, code)
    api = {"Content-Type", "POST", "Retry-After", "Enter", "Escape"}
    assert [w for w in literals if re.search(r"[A-Z]", w) and w not in api] == []  # no sentence, no label
    assert not [w for w in literals if re.search(r"\b(the|a|an|you|your|to|of|is|in)\b", w) and " " in w.strip()]
    bare = re.sub(string, '""', code)
    # No source is recognised by its text and no table is sent: the only rows are the answer's own (codes[].rows).
    assert "rows" not in bare.replace("c.rows", "") and "rowByText" not in bare
    # The answer's Markdown is read in one function only (small talk has nothing else to show; the
    # conversation sent back carries it), and that function is used for nothing else.
    # A stream event's ``answer`` (the whole answer object, LLM mode) is read in one function too.
    reader = re.search(r"function markdownOf\(a\) \{[^\n]*\}", bare)
    event = re.search(r"function answerIn\(e\) \{[^\n]*\}", bare)
    assert reader and re.search(r"\.answer\b", reader.group(0)) and event and "typeof e.answer === \"object\"" in code
    assert not re.search(r"\.answer\b", bare.replace(reader.group(0), "").replace(event.group(0), ""))
    uses = re.findall(r"markdownOf\(([^)]*)\)", bare)
    assert sorted(uses) == ["a", "a", "turns[i].a"]  # its definition, small talk, the history


def test_panel_js_sends_the_conversation_with_each_question():
    js = panel_js()
    assert "JSON.stringify({ question: q, history: history() })" in js
    assert re.search(r"HISTORY_TURNS = 20\b", js)  # the newest 20 turns
    assert 'role: "user"' in js and 'role: "assistant"' in js


def test_labels_follow_an_edited_wording_file(services, monkeypatch):
    """Change the wording and restart: the panel's page, its config and the loader all say the new words."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app._data import data_file
    import app.web.widget as widget

    wording = data_file("app.answering", "wording.yaml")
    wording["related_line"] = "Nearest table rows (not this code): {codes}."
    wording["meaning_label"] = "**Meaning**"
    wording["severity_labels"] = {**wording["severity_labels"], "permanent": "hard bounce"}
    wording["labels"] = {**wording["labels"], "in_table": "in the FAQ's table"}
    wording["widget"] = {**wording["widget"], "send": "Ask <now> & \"here\"", "new_chat": "Start again",
                         "loader": {**wording["widget"]["loader"], "open_chat": "Talk to us: {title}"}}
    monkeypatch.setattr(widget, "_wording", lambda: wording)
    app = FastAPI()
    app.include_router(widget.widget_routes(services))
    with TestClient(app) as client:
        page = client.get("/widget").text
        labels = served_config(page)["labels"]
        assert labels["related_line"] == "Nearest table rows (not this code): {codes}."
        assert labels["meaning_label"] == "Meaning"
        assert labels["severity_labels"]["permanent"] == "hard bounce"
        assert labels["labels"]["in_table"] == "in the FAQ's table"
        assert '<button id="send" type="submit">Ask &lt;now&gt; &amp; &quot;here&quot;</button>' in page  # escaped
        assert '<button id="clear" type="button">Start again</button>' in page
        loader = client.get("/widget.js").text
        assert '"open_chat": "Talk to us: {title}"' in loader and "/*{{LABELS}}*/" not in loader
        assert "Open chat:" not in loader


def test_the_loader_gets_its_labels_when_served(http):
    from app._data import data_file

    loader = http.get("/widget.js").text
    labels = json.loads(re.search(r"var TEXT = (\{.*?\});", loader).group(1))
    assert labels == data_file("app.answering", "wording.yaml")["widget"]["loader"]


# ---------------------------------------------------------------------------- CORS


@pytest.mark.parametrize("path", ["/api/ask", "/widget/api/ask"])
def test_cors_preflight_follows_the_allowlist(http, path):
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = http.options(path, headers={"Origin": ALLOWED, **ask})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in ok.headers  # no cookies
    denied = http.options(path, headers={"Origin": OTHER, **ask})
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers


def test_cors_on_answers_follows_the_allowlist(http):
    ok = http.post("/api/ask", json={"question": "5.2.2"}, headers={"Origin": ALLOWED})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in ok.headers["access-control-expose-headers"].lower()
    other = http.post("/api/ask", json={"question": "5.2.2"}, headers={"Origin": OTHER})
    assert "access-control-allow-origin" not in other.headers  # the browser keeps the answer from that page
    health = http.get("/healthz", headers={"Origin": ALLOWED})
    assert health.headers["access-control-allow-origin"] == ALLOWED


def test_without_an_allowlist_no_other_origin_is_allowed(default_server):
    with httpx.Client(base_url=default_server.url, timeout=30) as c:
        r = c.options("/api/ask", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = c.post("/api/ask", json={"question": "5.2.2"}, headers={"Origin": ALLOWED})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------------------- the widget's API and its limit


def test_widget_ask_returns_the_contract(http, answerer):
    r = http.post("/widget/api/ask", json={"question": "What does 550 5.1.1 mean?"},
                  headers={"X-Forwarded-For": "198.51.100.7"})  # a client of its own (see the limit test)
    assert r.status_code == 200
    from app.answering.contract import Answer

    assert Answer.model_validate(r.json()).to_dict() == r.json()  # the typed contract, nothing more or less
    assert r.json() == answerer.ask("What does 550 5.1.1 mean?").to_dict()  # the same JSON as /api/ask


def test_widget_ask_reads_the_conversation_it_is_sent(http, answerer):
    from app.answering.contract import Turn

    history = [{"role": "user", "content": "What does 550 5.1.1 mean?"},
               {"role": "assistant", "content": "**550-5.1.1**: permanent failure, from the table"}]
    question = "what should I do about it?"
    r = http.post("/widget/api/ask", json={"question": question, "history": history},
                  headers={"X-Forwarded-For": "198.51.100.9"})
    assert r.status_code == 200
    assert r.json() == answerer.ask(question, [Turn(**t) for t in history]).to_dict()  # as /api/ask reads it
    bad = http.post("/widget/api/ask", json={"question": question, "history": [{"role": "system", "content": "x"}]},
                    headers={"X-Forwarded-For": "198.51.100.9"})
    assert bad.status_code == 422 and "error" in bad.json()


def test_widget_ask_is_documented_in_openapi(http):
    paths = http.get("/openapi.json").json()["paths"]
    assert "429" in paths["/widget/api/ask"]["post"]["responses"]
    assert not {"/widget.js", "/widget", "/demo"} & set(paths)  # pages and files, not API


def test_widget_ask_errors_are_json(http):
    r = http.post("/widget/api/ask", json={"question": " "}, headers={"X-Forwarded-For": "198.51.100.8"})
    assert r.status_code == 422 and "empty" in r.json()["error"]


def test_rate_limit_answers_429_with_retry_after_per_client(http):
    client = {"X-Forwarded-For": "203.0.113.5"}  # uvicorn takes the client from it on loopback (its default)
    for _ in range(3):
        assert http.post("/widget/api/ask", json={"question": "552-5.2.2"}, headers=client).status_code == 200
    r = http.post("/widget/api/ask", json={"question": "552-5.2.2"}, headers={**client, "Origin": ALLOWED})
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/json"
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 20  # one question back every 20 s at 3 a minute
    message = r.json()["error"]
    assert "Too many questions" in message and "3 per minute" in message and f"{wait} second" in message
    assert r.headers["access-control-allow-origin"] == ALLOWED  # the page can read why
    # a rejected request takes nothing: still limited, never an answer
    assert http.post("/widget/api/ask", json={"question": "552-5.2.2"}, headers=client).status_code == 429
    # the agents' API is not throttled, and another client still gets answers
    assert all(http.post("/api/ask", json={"question": "552-5.2.2"}, headers=client).status_code == 200
               for _ in range(5))
    other = http.post("/widget/api/ask", json={"question": "552-5.2.2"}, headers={"X-Forwarded-For": "203.0.113.6"})
    assert other.status_code == 200


# ---------------------------------------------------------------------------- the demo page


def test_demo_page_shows_the_article_with_the_script_tag(http, server):
    r = http.get("/demo")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<h1>Common Email Delivery Errors</h1>" in page
    assert '<h2 id="common-delivery-errors">Common delivery errors</h2>' in page
    assert "<td>550-5.1.1</td>" in page and f"<td>{SEED_ROWS['550-5.1.1'][0]}</td>" in page
    tag = re.search(r"<script [^>]*></script>", page).group(0)
    assert f'src="{server.url}/widget.js"' in tag
    for attr in ("data-title=", "data-accent=", "data-position=", "data-greeting=", " async"):
        assert attr in tag
    assert "'unsafe-inline'" not in r.headers["content-security-policy"]


def test_demo_page_escapes_the_article(tmp_path):
    from app.web.widget import demo_page
    from app.knowledge.articles import load_articles

    (tmp_path / "a.md").write_text(
        "---\ntitle: Errors <script>alert(1)</script>\nurl: https://help.example.com/a\n---\n\n"
        "Intro with <img src=x onerror=alert(1)> and [a link](javascript:alert(1)).\n\n"
        "## Codes & \"quotes\"\n\n| Error code | What it means | What you can do |\n| --- | --- | --- |\n"
        "| 550-5.1.1 | Bad <b>address</b> | Fix it |\n", encoding="utf-8")
    page = demo_page(load_articles(tmp_path), 'https://bot.example/widget.js"><script>x</script>')
    assert "<h1>Errors &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript:' not in page and "[a link](javascript:alert(1))" in page  # left as text
    assert "<b>" not in page and "Bad &lt;b&gt;address&lt;/b&gt;" in page
    assert page.count("<script") == 1  # the widget's tag only, its src escaped
    assert 'src="https://bot.example/widget.js&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
