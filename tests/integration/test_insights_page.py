"""``/insights`` through the whole app (``create_app`` in-process, ``TestClient``): off without the
token, the login form, a wrong token (401, then 429), the Origin check, the session cookie, the page
with every chart and table filled from a seeded log (a real SQLite log in a temp dir, written by
``evals.insights_seed``), the CSV exports and eval cases behind the cookie, and the token never
seen in any URL or response. Services on the fake embedder (the page's grouping uses it too);
charts are real matplotlib. Prints how long a page takes."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from app.insights import TABLES, Period, compute
from app.storage.conversations import SqliteConversationLog
from app.web.insights import COOKIE, MAX_FAILURES, Sessions
from evals.insights_seed import seed

from ..fakes import FakeFeedbackLog, fake_services

TOKEN = "tok-Insights-7f3a9c1e5b2d48e6a0f1"
ORIGIN = {"origin": "http://testserver"}
CHARTS = ("per_channel", "rates", "ratings")


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("insights_index"))


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    log = SqliteConversationLog(tmp_path_factory.mktemp("insights_log") / "feedback.sqlite3")
    seed(log, 300)
    yield log
    log.close()


def client(services, log, token: str | None = TOKEN) -> TestClient:
    from app.web.server import create_app

    settings = services.settings.with_(insights_token=token)
    return TestClient(create_app(services, FakeFeedbackLog(), settings=settings, conversations=log),
                      raise_server_exceptions=False, follow_redirects=False)


@pytest.fixture(scope="module")
def app_client(services, log):
    with client(services, log) as c:
        yield c


def login(c: TestClient, token: str = TOKEN, headers: dict | None = ORIGIN, since: str = "30d"):
    return c.post("/insights/login", data={"token": token, "since": since}, headers=headers)


@pytest.fixture
def logged_in(app_client):
    app_client.cookies.clear()
    app_client.app.state.insights_throttle.forget("testclient")
    r = login(app_client)
    assert r.status_code == 303, r.text
    return app_client


def no_token_in(r) -> None:
    assert TOKEN not in str(r.url) and TOKEN not in r.text
    assert all(TOKEN not in v for v in r.headers.values())


@pytest.mark.parametrize("method, path", [("GET", "/insights"), ("POST", "/insights/login"),
                                          ("GET", "/insights/export/slowest.csv"),
                                          ("GET", "/insights/eval-case/1.jsonl")])
def test_off_without_the_token(services, log, method, path):
    with client(services, log, token=None) as c:
        r = c.request(method, path, headers=ORIGIN)
    assert r.status_code == 404
    assert "BOUNCEBOT_INSIGHTS_TOKEN" in r.json()["error"]


def test_the_login_form_posts_the_token_and_never_puts_it_in_a_url(app_client):
    app_client.cookies.clear()
    r = app_client.get("/insights")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    form = re.search(r'<form method="post" action="/insights/login"[^>]*>(.*?)</form>', r.text, re.S)
    assert form and 'type="password"' in form.group(1) and 'name="token"' in form.group(1)
    assert "<script" not in r.text and "style=" not in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "style-src 'self'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert COOKIE not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("token", ["", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN])
def test_a_wrong_token_is_401_without_saying_what_was_wrong(app_client, token):
    app_client.cookies.clear()
    app_client.app.state.insights_throttle.forget("testclient")
    r = login(app_client, token)
    assert r.status_code == 401
    assert "not accepted" in r.text and "set-cookie" not in r.headers
    assert "length" not in r.text.lower() and "prefix" not in r.text.lower()
    no_token_in(r)
    assert app_client.get("/insights/export/slowest.csv").status_code == 401


def test_five_wrong_tokens_a_minute_then_429_even_for_the_right_one(app_client):
    app_client.cookies.clear()
    app_client.app.state.insights_throttle.forget("testclient")
    assert [login(app_client, f"guess-{i}").status_code for i in range(MAX_FAILURES)] == [401] * MAX_FAILURES
    r = login(app_client)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "Wait a minute" in r.text
    assert COOKIE not in r.headers.get("set-cookie", "")
    app_client.app.state.insights_throttle.forget("testclient")
    assert login(app_client).status_code == 303


@pytest.mark.parametrize("headers", [None, {"origin": "https://evil.example"}, {"origin": "null"},
                                     {"referer": "https://evil.example/insights"},
                                     {"origin": "http://testserver.evil.example"}])
def test_a_login_from_another_origin_is_refused(app_client, headers):
    app_client.cookies.clear()
    r = login(app_client, headers=headers)
    assert r.status_code == 403 and "Origin" in r.text and COOKIE not in r.headers.get("set-cookie", "")


def test_a_referer_from_this_host_stands_in_for_a_missing_origin(app_client):
    app_client.cookies.clear()
    app_client.app.state.insights_throttle.forget("testclient")
    assert login(app_client, headers={"referer": "http://testserver/insights"}).status_code == 303


def test_the_session_cookie_is_httponly_strict_signed_and_not_the_token(app_client):
    app_client.cookies.clear()
    app_client.app.state.insights_throttle.forget("testclient")
    r = login(app_client, since="7d")
    assert r.status_code == 303 and r.headers["location"] == "/insights?since=7d"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/insights" in cookie and "Secure" not in cookie  # http here; Secure over https
    no_token_in(r)
    value = r.cookies[COOKIE]
    assert Sessions(TOKEN).valid(value) and not Sessions(TOKEN + "-changed").valid(value)
    issued, nonce, sig = value.split(".")
    for forged in (f"{int(issued) + 60}.{nonce}.{sig}", f"{issued}.{nonce}.{'0' * len(sig)}", "x", ""):
        app_client.cookies.set(COOKIE, forged)
        assert "name=\"token\"" in app_client.get("/insights").text  # the login form again
        assert app_client.get("/insights/export/slowest.csv").status_code == 401


def test_sessions_expire_and_a_changed_token_logs_everyone_out():
    s = Sessions(TOKEN, seconds=3600)
    cookie = s.issue(now=1_000_000)
    assert s.valid(cookie, now=1_000_000 + 3599) and not s.valid(cookie, now=1_000_000 + 3600)
    assert not s.valid(cookie, now=1_000_000 - 10)
    assert not Sessions("another token").valid(cookie, now=1_000_001)


def _charts(html: str) -> dict[str, bytes]:
    out = {}
    for name, data in re.findall(r'<figure class="chart" data-chart="(\w+)">(?:(?!</figure>).)*?'
                                 r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html, re.S):
        out[name] = base64.b64decode(data)
    return out


def _rows(html: str, table: str) -> list[str]:
    body = re.search(rf'<table data-table="{table}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def expected(log, services, since: str = "30d"):
    """What the page must show: ``compute`` with the app's own embedder (the fake here) for the grouping."""
    return compute(log, Period.parse(since), services.embedder.embed_documents)


def test_the_page_shows_every_chart_and_table_from_the_log(logged_in, log, services):
    t0 = time.perf_counter()
    r = logged_in.get("/insights?since=30d")
    took = time.perf_counter() - t0
    assert r.status_code == 200
    t0 = time.perf_counter()
    again = logged_in.get("/insights?since=30d")
    took_again = time.perf_counter() - t0
    assert again.status_code == 200
    no_token_in(r)
    ins = expected(log, services)
    assert ins.grouping == "embeddings"
    print(f"\n/insights over {ins.totals['questions']} logged messages (30 days): {took:.2f} s; "
          f"loaded again: {took_again:.2f} s")
    charts = _charts(r.text)
    assert set(charts) == set(CHARTS)
    for svg in charts.values():
        assert svg.startswith(b"<?xml") and b"<svg" in svg and b"<path" in svg and b"<script" not in svg
    assert f'{ins.totals["questions"]} questions over 31 days' in r.text
    assert f"{ins.totals['answered_rate'] * 100:.0f}%" in r.text
    for table in TABLES:
        rows = _rows(r.text, table)
        assert len(rows) == len(getattr(ins, table)) > 0, table
        assert 'class="empty"' not in "".join(rows)
        assert f'href="/insights/export/{table}.csv?since=30d"' in r.text
    assert ins.codes_missing[0]["code"] in _rows(r.text, "codes_missing")[0]
    assert _rows(r.text, "refused_groups")[0].count('class="button eval-case"') == 1
    assert all('class="button eval-case"' in row for row in _rows(r.text, "thumbs_down"))
    assert "<script" not in r.text and " style=" not in r.text
    assert not re.search(r"<[^>]+\son\w+=", r.text)  # no event handler attributes
    assert 'aria-current="page">Last 30 days' in r.text


@pytest.mark.parametrize("since, status", [("7d", 200), ("90d", 200), ("2026-11-01..2026-11-30", 200),
                                           ("forever", 400), ("0d", 400), ("2026-11-30..2026-11-01", 400)])
def test_the_period_chooser(logged_in, since, status):
    r = logged_in.get("/insights", params={"since": since})
    assert r.status_code == status
    if status == 400:
        assert "write 7d" in r.text


@pytest.mark.parametrize("table", TABLES)
def test_each_table_exports_as_csv_behind_the_cookie(logged_in, log, services, table):
    r = logged_in.get(f"/insights/export/{table}.csv?since=30d")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="bouncebot-insights-{table}-30d.csv"'
    assert r.headers["cache-control"] == "no-store"
    no_token_in(r)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    want = list(csv.reader(io.StringIO(expected(log, services).csv(table))))
    assert rows == want and len(rows) > 1
    logged_in.cookies.clear()
    r = logged_in.get(f"/insights/export/{table}.csv?since=30d")
    assert r.status_code == 401 and "Log in at /insights" in r.json()["error"]


@pytest.mark.parametrize("path, status", [
    ("/insights/export/nope.csv", 404), ("/insights/export/slowest.csv?since=x", 400),
    ("/insights/eval-case/abc.jsonl", 400), ("/insights/eval-case/999999.jsonl", 404),
    ("/insights/eval-case/.jsonl", 400), ("/insights/eval-case/" + ",".join(["1"] * 101) + ".jsonl", 400)])
def test_bad_exports_say_what_to_do(logged_in, path, status):
    r = logged_in.get(path)
    assert r.status_code == status and r.json()["error"]


def test_make_an_eval_case_downloads_the_feedback_export_line(logged_in, log):
    from app.insights import eval_case

    page = logged_in.get("/insights?since=30d").text
    ids = [int(i) for i in re.findall(r'href="/insights/eval-case/(\d+)\.jsonl" download data-id', page)]
    down = {e.id for e in log.entries(0) if e.rating == "down"}
    refused = {e.id for e in log.entries(0) if e.refused}
    assert ids and set(ids) <= down | refused and down <= set(ids)
    r = logged_in.get(f"/insights/eval-case/{ids[0]}.jsonl")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-disposition"] == f'attachment; filename="bouncebot-eval-case-log-{ids[0]:05d}.jsonl"'
    assert json.loads(r.text) == eval_case(log.get(ids[0]))
    assert r.text.strip() in html.unescape(page)  # shown on the page to copy, too
    both = logged_in.get(f"/insights/eval-case/{ids[0]},{ids[1]}.jsonl")
    assert [json.loads(line)["id"] for line in both.text.splitlines()] == [f"log-{ids[0]:05d}", f"log-{ids[1]:05d}"]
    logged_in.cookies.clear()
    assert logged_in.get(f"/insights/eval-case/{ids[0]}.jsonl").status_code == 401


def test_logout_needs_the_origin_and_clears_the_cookie(logged_in):
    assert logged_in.post("/insights/logout").status_code == 403
    r = logged_in.post("/insights/logout", headers=ORIGIN)
    assert r.status_code == 303 and f'{COOKIE}=""' in r.headers["set-cookie"]
    logged_in.cookies.clear()
    assert 'name="token"' in logged_in.get("/insights").text


def test_with_the_log_off_the_page_says_so(services):
    with client(services, None) as c:
        login(c)
        r = c.get("/insights")
    assert r.status_code == 200 and "BOUNCEBOT_CONVERSATION_LOG=off" in r.text
    assert set(_charts(r.text)) == set(CHARTS)


HOSTILE = ['<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '"><svg onload=alert(1)>',
           "=HYPERLINK(\"http://evil.example\",\"click\")"]


def test_logged_texts_are_shown_escaped_and_exported_defused(services, tmp_path):
    from app.storage.conversations import LogEntry

    log = SqliteConversationLog(tmp_path / "feedback.sqlite3")
    try:
        for i, text in enumerate(HOSTILE):
            e = LogEntry.of({"question": text, "answer": f"I don't know. {text}", "answered": False}, "api", 10 + i)
            log.rate(log.record(e), "down", text)
        with client(services, log) as c:
            login(c)
            page = c.get("/insights?since=7d").text
            exported = c.get("/insights/export/thumbs_down.csv?since=7d").content.decode("utf-8-sig")
    finally:
        log.close()
    for text in HOSTILE[:3]:
        assert text not in page and html.escape(text, quote=True) in page
    assert not re.search(r"<[^>]+\son\w+=", page) and "<script>" not in page
    rows = list(csv.reader(io.StringIO(exported)))
    assert len(rows) == 1 + len(HOSTILE)
    assert all(not cell.startswith("=") for row in rows for cell in row)


def test_the_seeded_personal_data_never_reaches_the_page(logged_in):
    page = logged_in.get("/insights?since=30d").text
    for personal in ("maria.lopez@example.com", "jonas.berg@example.org", "+44 20 7946 0958", "Maria Lopez"):
        assert personal not in page
    assert "[email]" in page


def test_a_get_of_the_login_route_goes_to_the_form(app_client):
    r = app_client.get("/insights/login")
    assert r.status_code == 303 and r.headers["location"] == "/insights"


def test_a_long_table_shows_its_first_rows_and_the_csv_has_all(logged_in, log, services, monkeypatch):
    import app.web.insights_page as page_module

    monkeypatch.setattr(page_module, "MAX_ROWS", 5)
    ins = expected(log, services)
    page = logged_in.get("/insights?since=30d").text
    for table in ("refused_groups", "thumbs_down", "slowest", "per_day"):
        assert len(_rows(page, table)) == 5
        assert f"Showing the first 5 of {len(getattr(ins, table)):,} rows" in page
    assert len(re.findall(r'class="button eval-case"', page)) == 10  # the rows shown only
    exported = logged_in.get("/insights/export/thumbs_down.csv?since=30d").content.decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(exported)))) == len(ins.thumbs_down) + 1


def test_over_https_the_cookie_is_secure(services, log):
    with client(services, log) as c:
        c.base_url = "https://testserver"
        r = c.post("/insights/login", data={"token": TOKEN}, headers={"origin": "https://testserver"})
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_a_log_that_cannot_be_read_is_a_503_saying_so(services, tmp_path):
    broken = SqliteConversationLog(tmp_path / "feedback.sqlite3")
    broken.close()  # every read now fails inside the log
    with client(services, broken) as c:
        login(c)
        page = c.get("/insights")
        exported = c.get("/insights/export/slowest.csv")
    assert page.status_code == 503 and "BOUNCEBOT_FEEDBACK_DB" in page.text and "<script" not in page.text
    assert exported.status_code == 503 and "BOUNCEBOT_FEEDBACK_DB" in exported.json()["error"]
