"""The insights page's guards, without a server: the signed session cookie, the throttle on wrong
tokens (a sliding minute per client), and the Origin check of its POSTs."""

from __future__ import annotations

import pytest

from app.web.insights import LoginThrottle, Sessions, _same_origin


class FakeRequest:
    def __init__(self, headers: dict):
        self.headers = headers


def test_the_throttle_allows_five_wrong_tokens_a_minute_per_client():
    t = LoginThrottle(limit=5, window=60)
    for i in range(5):
        assert t.retry_after("a", now=100 + i) == 0
        t.failed("a", now=100 + i)
    assert 1 <= t.retry_after("a", now=105) <= 55  # until the first failure is a minute old
    assert t.retry_after("b", now=105) == 0  # another client is not held up
    assert t.retry_after("a", now=160.5) == 0  # the oldest failure has left the window
    t.failed("a", now=160.5)
    assert t.retry_after("a", now=160.5) > 0  # four still in the window, plus this one
    t.forget("a")
    assert t.retry_after("a", now=160.5) == 0


def test_the_throttle_forgets_the_oldest_clients_beyond_its_size():
    t = LoginThrottle(limit=1, window=60, clients=3)
    for c in "abcd":
        t.failed(c, now=1)
    assert t.retry_after("a", now=2) == 0 and all(t.retry_after(c, now=2) > 0 for c in "bcd")


@pytest.mark.parametrize("cookie", [None, "", "x", "1.2", "a.b.c", "1.2.3.4", "999999999999.nonce.sig"])
def test_malformed_cookies_are_not_sessions(cookie):
    assert not Sessions("token").valid(cookie)


def test_a_cookie_is_bound_to_its_token_and_its_time():
    s = Sessions("token", seconds=100)
    c = s.issue(now=1000)
    assert "token" not in c and s.valid(c, now=1050)
    assert not s.valid(c, now=1100) and not Sessions("token2").valid(c, now=1050)
    issued, nonce, sig = c.split(".")
    assert not s.valid(f"{issued}.{nonce}x.{sig}", now=1050)
    assert s.token_matches("token") and not s.token_matches("token ") and not s.token_matches("")


@pytest.mark.parametrize("headers, ok", [
    ({"host": "bot.example", "origin": "https://bot.example"}, True),
    ({"host": "bot.example:8080", "origin": "http://bot.example:8080"}, True),
    ({"host": "bot.example", "referer": "https://bot.example/insights?since=7d"}, True),
    ({"host": "bot.example", "origin": "https://bot.example.evil.example"}, False),
    ({"host": "bot.example", "origin": "https://evil.example", "referer": "https://bot.example/insights"}, False),
    ({"host": "bot.example", "origin": "null"}, False),
    ({"host": "bot.example"}, False),
    ({"origin": "https://bot.example"}, False),
])
def test_the_origin_check(headers, ok):
    assert _same_origin(FakeRequest(headers)) is ok
