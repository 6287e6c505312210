"""Among many articles on one topic (issue 14): the rules that keep a topic word in many articles'
titles from outranking the article whose passages answer.

- a query word that the heading paths of several articles hold counts, where it stands in a heading,
  for one over that many (``ranking.heading_shared_bm25``): a title heads every passage of its article;
- the article of the best single passage is judged on its own nearest passages too (``article_heard``),
  not only on those of its passages that made the collection-wide candidates;
- the candidates hold ``article_pool`` distinct texts, however many copies of one text lead the fused
  order (``ranking.distinct_rows``), and copies of one text in many articles are many articles;
- the best word matches that the dense search did not return get their cosine (``lexical_rescore``):
  the vector index's graph misses some passages unlike the rest among thousands of near-copies.

Pure functions table-driven; the retriever over a real Chroma in a temp dir with ``FakeEmbedder``."""

from __future__ import annotations

import pytest

from app.search.lexical import K1, in_memory
from app.search.ranking import distinct_rows, heading_shared_bm25
from app.search.text import tokenize

from .test_ranking_at_scale import collection, real


def term(f: float, idf: float = 1.0, norm: float = 1.0) -> float:
    """One word's Okapi BM25 part at frequency ``f``."""
    return idf * f * (K1 + 1) / (f + norm)


# ------------------------------------------------------------------ the rule alone

@pytest.mark.parametrize("query,heads,bodies,articles,want", [
    # one article: a heading's word counts whole
    (["spam"], [["spam"]], [["open"]], ["a"], [term(1)]),
    # the heading paths of two articles hold it: half each, where it stands in a heading
    (["spam"], [["spam"], ["spam"]], [["open"], ["open"]], ["a", "b"], [term(0.5), term(0.5)]),
    # four articles' titles: a quarter each; the passage that says it itself keeps it whole
    (["spam"], [["spam"]] * 4 + [["errors"]], [["open"]] * 4 + [["spam"]], ["a", "b", "c", "d", "e"],
     [term(0.25)] * 4 + [term(1)]),
    # in its passage's words and a shared heading: whole plus the heading's share
    (["spam"], [["spam"], ["spam"]], [["spam"], ["open"]], ["a", "b"], [term(1.5), term(0.5)]),
    # two passages of one article under one title: one article holds it, whole
    (["spam"], [["spam"], ["spam"]], [["open"], ["save"]], ["a", "a"], [term(1), term(1)]),
    # a word the index does not know counts for nothing; a word asked twice counts twice
    (["zzz"], [["zzz"]], [["zzz"]], ["a"], [0.0]),
    (["spam", "spam"], [["x"]], [["spam"]], ["a"], [2 * term(1)]),
    # no word of the question anywhere
    (["spam"], [["x"], ["y"]], [["z"], ["w"]], ["a", "b"], [0.0, 0.0]),
])
def test_a_word_several_articles_headings_hold_is_shared_out(query, heads, bodies, articles, want):
    idf = {w: 1.0 for w in ["spam", "open", "save", "errors", "x", "y", "z", "w"]}
    got = heading_shared_bm25(query, heads, bodies, articles, idf, [1.0] * len(heads), K1)
    assert got == pytest.approx(want)


@pytest.mark.parametrize("question", ["mailbox full, my reply bounced", "bounce list address removes",
                                      "contact support about the bounce message", "delivery errors retried"])
def test_with_one_article_it_is_the_index_s_own_bm25(question):
    docs = [(i, text, {"heading_path": f"Delivery errors > {sec}"}) for i, (sec, text) in _real_sections().items()]
    index = in_memory(docs)
    words = tokenize(question)
    idf = {q: float(index.idf[index.terms[q]]) for q in words if q in index.terms}
    rows = index.rows_of([d[0] for d in docs])
    got = heading_shared_bm25(words, [tokenize(d[2]["heading_path"]) for d in docs], [tokenize(d[1]) for d in docs],
                              ["delivery-errors.md"] * len(docs), idf, [float(index.norm[r]) for r in rows], K1)
    assert got == pytest.approx(list(index.scores(words)[rows]))


def _real_sections() -> dict:
    from .test_ranking_at_scale import REAL

    return REAL


# ------------------------------------------------------------------ the real retriever over a real Chroma

def spam_titles(n: int) -> dict:
    """n articles whose titles (and so every passage's heading path) name the question's topic, with
    passages that say nothing about it, as a topic's how-to articles in a big help centre often do."""
    docs = {}
    for i in range(n):
        art = f"Spam filter blocking {i}"
        docs[f"s{i}a"] = (art, "Who can do this", f"You need the admin role {i} for these settings.")
        docs[f"s{i}b"] = (art, "Set it up", f"Open the settings page {i} and click save.")
    return docs


ANSWER = ("Safe senders", "A spam filter blocking your replies: ask the customer to add your support address "
          "to their safe senders.")
QUESTIONS = ["spam filter blocking replies", "their spam filter keeps blocking our replies"]


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("n", [4, 10])
def test_a_topic_in_many_titles_does_not_outrank_the_passage_that_answers(tmp_path, question, n):
    r = collection(tmp_path, real(r5=("Delivery errors", *ANSWER), **spam_titles(n)))
    r.heading_shared = 0
    plain = r.search(question, k=3).hits
    r.heading_shared = 1
    got = r.search(question, k=3).hits
    assert plain[0].id != "r5"  # the titles' words in every heading win without the rule
    assert got[0].id == "r5"
    assert {h.id for h in got} - {"r5"} <= {h.id for h in r.search(question, k=40).hits}  # nothing new found


@pytest.mark.parametrize("question", ["spam filter blocking: who can set it up",
                                      "spam filter blocking settings admin role"])
def test_a_question_about_the_titles_topic_still_gets_one_of_those_articles(tmp_path, question):
    # no passage says it itself: the titles' words, shared out, still rank their articles first
    r = collection(tmp_path, real(**spam_titles(6)))
    assert r.search(question, k=3).hits[0].id.startswith("s")


@pytest.mark.parametrize("question", ["mailbox full, my reply bounced", "how do I get an address off the bounce list"])
def test_one_article_ranks_as_before_whatever_the_rules(tmp_path, question):
    r = collection(tmp_path, real())
    want = [(h.id, h.score) for h in r.search(question, k=4).hits]
    r.heading_shared = r.article_heard = 0
    assert [(h.id, h.score) for h in r.search(question, k=4).hits] == want


HEARD = {  # a1 is the best single passage; b1 and b2 (two places) make Inbox tips the best-supported article
    "a1": ("Delivery errors", "Mailbox full", "Mailbox full: the reply bounced."),
    "a2": ("Delivery errors", "Retries", "Bounced replies are sent again when the mailbox clears."),
    "b1": ("Inbox tips", "Bounces", "Mailbox full: the reply bounced today."),
    "b2": ("Inbox tips", "Views", "Mailbox full: the reply bounced again."),
}


@pytest.mark.parametrize("heard", [0, 1])
def test_the_best_passage_s_article_is_judged_on_its_own_nearest_passages_too(tmp_path, heard):
    from .test_ranking_at_scale import others

    r = collection(tmp_path, HEARD | others(6, shared_table=False))
    r.candidates = r.max_candidates = r.article_pool = 3  # a2 sits below the candidates' cut
    r.article_heard = heard
    r.lexical_rescore = 0  # (a2 shares a word: that rule alone would give it its cosine)
    hits = {h.id: h for h in r.search("mailbox full, the reply bounced", k=5).hits}
    assert list(hits)[0] == "a1"
    assert (hits["a2"].similarity > 0) is bool(heard)  # without the rule, a2 is scored on its words alone


@pytest.mark.parametrize("keys,articles,width,scan,want,held", [
    # no copies: the first ``width``
    (["x", "y", "z"], ["a", "b", "c"], 2, 99, [0, 1], {"x": 1, "y": 1, "z": 1}),  # every row read is counted
    # five copies of x lead: one of them, then the next distinct texts
    (["x"] * 5 + ["y", "z"], list("abcdefg"), 2, 99, [0, 5], {"x": 5, "y": 1}),
    (["x"] * 5 + ["y", "z"], list("abcdefg"), 3, 99, [0, 5, 6], {"x": 5, "y": 1, "z": 1}),
    # read no deeper than ``scan``: what lies below is not looked at
    (["x"] * 5 + ["y", "z"], list("abcdefg"), 3, 4, [0], {"x": 4}),
    # one article's two copies of a text: one place, one holder
    (["x", "x", "y"], ["a", "a", "b"], 3, 99, [0, 2], {"x": 1, "y": 1}),
    ([], [], 3, 99, [], {}),
])
def test_the_pool_holds_distinct_texts_however_many_copies_lead(keys, articles, width, scan, want, held):
    holders: dict = {}
    got = distinct_rows(list(range(len(keys))), width, lambda rows: [keys[r] for r in rows],
                        lambda rows: [articles[r] for r in rows], holders, scan)
    assert got == want
    assert {k: len(holders.get(k, ())) for k in held} == held


def test_copies_of_one_text_in_many_articles_are_many_articles(tmp_path):
    from .test_ranking_at_scale import TABLE, others

    r = collection(tmp_path, real(**others(8, shared_table=True)))
    r.dense_overfetch = 3  # three nearest asked for: three copies of the row, one text
    q = r.embedder.embed_query("over its storage quota for now, wait a few hours then send again")
    dense, holders, spread = r._dense(q, 1, len(r))
    assert [r.documents.fetch([i])[i][0] for i in dense] == [TABLE]
    assert spread  # ranked article by article, not as a KB of one article


RESCORE = {  # x2 and r1 match the question's words; x2 is the nearer, r1 (long) the farther
    "r1": ("Delivery errors", "Suppression", "Suppression: once the mailbox works again and the customer confirms "
           "the address, support can unsuppress it for future replies from the team."),
    "x1": ("Inbox tips", "Lists", "How do I check an address once the mailbox works? Open the address page."),
    "x2": ("Contacts", "Lists", "How do I add an address once the mailbox works? Open the contact page."),
}


class Misses:
    """A collection whose nearest-neighbour search misses ``missed`` (as a vector index's graph can)."""

    def __init__(self, collection, missed: set[str]):
        self._c, self._missed = collection, missed

    def __getattr__(self, name):
        return getattr(self._c, name)

    def query(self, query_embeddings, n_results=10, include=("distances",), **kw):
        res = self._c.query(query_embeddings=query_embeddings, n_results=n_results + len(self._missed),
                            include=include, **kw)
        keep = [j for j, i in enumerate(res["ids"][0]) if i not in self._missed][:n_results]
        return {k: ([[v[0][j] for j in keep]] if isinstance(v, list) and v and isinstance(v[0], list) else v)
                for k, v in res.items()}


def two_dense_results(tmp_path):
    """A retriever over RESCORE's passages among six other articles whose dense search returns two."""
    from .test_ranking_at_scale import others

    r = collection(tmp_path, RESCORE | others(6, shared_table=False))
    r.candidates = r.max_candidates = 2
    r.dense_overfetch = 1
    return r


@pytest.mark.parametrize("rescore", [0, 20])
def test_word_matches_the_vector_index_missed_get_their_cosine(tmp_path, rescore):
    import numpy as np

    r = two_dense_results(tmp_path)
    r.lexical_rescore = rescore
    question = "how do I unsuppress an address once the mailbox works"
    want = r.embedder.embed_query(question)
    exact = r._dense(want, 3, len(r))[0]
    assert list(exact)[:2] == ["x1", "r1"] and "x2" in exact  # x2: third, below the two results' cut
    r.collection = Misses(r.collection, {"r1"})  # the vector index misses r1: x1 and x2 come back
    assert list(r._dense(want, 2, len(r))[0]) == ["x1", "x2"]
    hits = {h.id: h for h in r.search(question, k=4).hits}
    assert hits["r1"].lexical > 0
    stored = r.collection.get(ids=["r1"], include=["embeddings"])["embeddings"][0]
    # r1's exact cosine when rescored (it is above the dense results' last); 0 as the search left it, without
    assert hits["r1"].similarity == (pytest.approx(float(np.dot(stored, want)), abs=1e-5) if rescore else 0)


@pytest.mark.parametrize("floor", [1, 0])
def test_a_word_match_farther_than_the_dense_results_is_rescored_without_the_floor(tmp_path, floor):
    r = two_dense_results(tmp_path)
    r.rescore_floor = floor
    hits = {h.id: h for h in r.search("how do I unsuppress an address once the mailbox works", k=4).hits}
    assert hits["x2"].lexical > 0
    # with the floor: 0, as an exact search (two results) would not have returned it; without: its cosine
    assert (hits["x2"].similarity == 0) is bool(floor)
