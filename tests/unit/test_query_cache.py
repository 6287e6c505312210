"""The query-vector cache (app.search.embeddings): hits, its bound, which
texts count as the same, and that it is safe from many threads. No model: the
encoder is replaced by a counting stand-in."""

from __future__ import annotations

import threading

import pytest

from app.config import Settings
from app.errors import BadSetting
from app.search.embeddings import Embedder, QueryCache, cache_key


class CountingEmbedder(Embedder):
    """The real Embedder's cache and embed_query, with a deterministic encoder that counts its calls."""

    def __init__(self, cache_size: int = 4):
        super().__init__("/nonexistent-model-dir", query_cache=cache_size)
        self.encoded: list[str] = []
        self._lock_calls = threading.Lock()  # the stand-in encoder is called from many threads

    def load(self):
        return self

    def _token_counts(self, texts):
        return [len(t) for t in texts]

    def _encode(self, texts, precision=None):
        with self._lock_calls:
            self.encoded.extend(texts)
        import numpy as np

        return np.array([[float(len(t)), float(sum(map(ord, t)) % 97), 1.0] for t in texts])


def test_a_repeated_question_is_embedded_once():
    e = CountingEmbedder()
    first = e.embed_query("How do I get an address off the bounce list?")
    again = e.embed_query("How do I get an address off the bounce list?")
    assert first == again and e.encoded == ["How do I get an address off the bounce list?"]
    assert (e.cache.hits, e.cache.misses) == (1, 1)


def test_callers_get_their_own_list():
    e = CountingEmbedder()
    v = e.embed_query("mailbox full")
    v.append(99.0)  # a caller changing its copy does not change what the cache holds
    assert e.embed_query("mailbox full") == v[:-1]


@pytest.mark.parametrize("a, b", [
    ("mailbox full", "  mailbox full  "),
    ("mailbox full", "mailbox\tfull"),
    ("mailbox full", "mailbox \n full"),
    ("caf\u00e9 bounce", "cafe\u0301 bounce"),  # NFC and NFD of the same text
])
def test_texts_the_model_reads_alike_share_an_entry(a, b):
    assert cache_key(a) == cache_key(b)
    e = CountingEmbedder()
    assert e.embed_query(a) == e.embed_query(b)
    assert len(e.encoded) == 1


@pytest.mark.parametrize("a, b", [
    ("mailbox full", "Mailbox full"),  # case kept: the key is the exact text
    ("550 5.1.1", "550 5.1.2"),
    ("what now?", "what now"),
    ("bounce", "bounce list"),
])
def test_different_texts_are_different_entries(a, b):
    assert cache_key(a) != cache_key(b)
    e = CountingEmbedder()
    e.embed_query(a)
    e.embed_query(b)
    assert e.encoded == [a, b] and len(e.cache) == 2


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    e = CountingEmbedder(cache_size=3)
    for q in ("q1", "q2", "q3"):
        e.embed_query(q)
    e.embed_query("q1")  # q1 used again: q2 is now the oldest
    e.embed_query("q4")
    assert len(e.cache) == 3
    e.encoded.clear()
    for q in ("q1", "q3", "q4"):
        e.embed_query(q)
    assert e.encoded == []  # all still held
    e.embed_query("q2")
    assert e.encoded == ["q2"]  # it had been dropped
    assert len(e.cache) == 3


def test_size_zero_keeps_nothing():
    e = CountingEmbedder(cache_size=0)
    e.embed_query("same")
    e.embed_query("same")
    assert e.encoded == ["same", "same"] and len(e.cache) == 0


def test_many_threads_at_once_stay_within_the_bound_and_agree():
    e = CountingEmbedder(cache_size=8)
    texts = [f"question {i % 12}" for i in range(600)]
    out: dict[str, set] = {}
    guard = threading.Lock()

    def work(chunk):
        for t in chunk:
            v = tuple(e.embed_query(t))
            with guard:
                out.setdefault(t, set()).add(v)

    threads = [threading.Thread(target=work, args=(texts[k::6],)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(e.cache) <= 8
    assert all(len(vs) == 1 for vs in out.values())  # one vector per text, whoever asked
    assert e.cache.hits + e.cache.misses == len(texts)


def test_query_cache_class_alone():
    c = QueryCache(2)
    assert c.get("a") is None
    c.put("a", [1.0, 2.0])
    assert c.get("a") == (1.0, 2.0)
    c.clear()
    assert len(c) == 0 and c.get("a") is None


@pytest.mark.parametrize("env, precision, cache", [
    ({}, "fp32", 256),
    ({"BOUNCEBOT_EMBED_PRECISION": "int8"}, "int8", 256),
    ({"BOUNCEBOT_EMBED_PRECISION": " INT8 "}, "int8", 256),
    ({"BOUNCEBOT_QUERY_CACHE": "0"}, "fp32", 0),
    ({"BOUNCEBOT_QUERY_CACHE": "1000"}, "fp32", 1000),
])
def test_settings(env, precision, cache):
    s = Settings.from_env(env)
    assert (s.embed_precision, s.query_cache) == (precision, cache)
    e = Embedder.from_settings(s)
    assert e.precision == precision and e.cache.size == cache
    assert e.name == ("all-MiniLM-L6-v2" if precision == "fp32" else "all-MiniLM-L6-v2-int8")


@pytest.mark.parametrize("env, named", [
    ({"BOUNCEBOT_EMBED_PRECISION": "int4"}, "BOUNCEBOT_EMBED_PRECISION"),
    ({"BOUNCEBOT_QUERY_CACHE": "-1"}, "BOUNCEBOT_QUERY_CACHE"),
    ({"BOUNCEBOT_QUERY_CACHE": "lots"}, "BOUNCEBOT_QUERY_CACHE"),
])
def test_bad_settings_say_which(env, named):
    with pytest.raises(BadSetting, match=named):
        Settings.from_env(env)


def test_a_searched_question_is_not_embedded_again_as_a_document():
    # the answer's focusing step embeds the question with the passage's sentences (embed_documents)
    e = CountingEmbedder(cache_size=8)
    q = "her mailbox is full, what can I do?"
    v = e.embed_query(q)
    e.encoded.clear()
    out = e.embed_documents([q, "The mailbox is full.", " her mailbox is full,  what can I do?"])
    assert e.encoded == ["The mailbox is full."]  # only the sentence
    assert out[0] == v and out[2] == v and len(out) == 3


def test_documents_are_never_put_in_the_query_cache():
    e = CountingEmbedder(cache_size=8)
    e.embed_documents(["passage one", "passage two"])
    assert len(e.cache) == 0 and e.cache.misses == 0
    e.embed_documents(["passage one"])
    assert e.encoded == ["passage one", "passage two", "passage one"]
