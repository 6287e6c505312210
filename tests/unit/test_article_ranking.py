"""Article-aware ranking (issue 14): among many articles, the passages of the article a question is
about come first (app.search.retrieval.article_order, HybridRetriever.search)."""

from __future__ import annotations

import pytest

from app.search.ranking import article_order
from app.search.retrieval import HybridRetriever


# ------------------------------------------------------------------ article_order, the rule alone

@pytest.mark.parametrize(
    "scores,articles,sections,penalty,want",
    [
        # one article: the fused order, whatever the penalty
        ([0.9, 0.8, 0.7], ["a", "a", "a"], None, 0.1, [0, 1, 2]),
        # penalty 0: the fused order
        ([0.6, 0.55, 0.5], ["b", "a", "a"], None, 0.0, [0, 1, 2]),
        # b's lone passage a little ahead; a answers in two places: a's come first
        ([0.58, 0.55, 0.5], ["b", "a", "a"], None, 0.1, [1, 2, 0]),
        # a tie after the penalty keeps the fused order
        ([0.6, 0.55, 0.5], ["b", "a", "a"], None, 0.1, [1, 0, 2]),
        # b's lone passage far ahead (more than the penalty): it stays first
        ([0.9, 0.55, 0.5], ["b", "a", "a"], None, 0.1, [0, 1, 2]),
        # b has the most evidence: a's passage drops below b's second
        ([0.6, 0.58, 0.55, 0.2], ["b", "a", "b", "a"], None, 0.1, [0, 2, 1, 3]),
        # a's two passages are one place (one section, e.g. two rows of one table): b keeps first
        ([0.58, 0.55, 0.5], ["b", "a", "a"], ["s", "table", "table"], 0.1, [0, 1, 2]),
        # the same two passages in two sections of a: a's come first
        ([0.58, 0.55, 0.5], ["b", "a", "a"], ["s", "table", "intro"], 0.1, [1, 2, 0]),
        # equal evidence: the article met first wins (b's passages lose the penalty)
        ([0.5, 0.5, 0.3, 0.3], ["a", "b", "a", "b"], None, 0.25, [0, 2, 1, 3]),
        ([], [], None, 0.1, []),
    ],
)
def test_the_article_with_the_most_evidence_comes_first(scores, articles, sections, penalty, want):
    assert article_order(scores, articles, support=0.5, penalty=penalty, depth=2, sections=sections) == want


@pytest.mark.parametrize("depth,want", [(1, [0, 1, 2, 3]), (2, [0, 1, 2, 3]), (3, [1, 2, 3, 0]), (9, [1, 2, 3, 0])])
def test_depth_counts_that_many_places_of_each_article(depth, want):
    # b: one strong passage; a: three weaker ones in three sections
    scores, articles = [0.7, 0.5, 0.45, 0.45], ["b", "a", "a", "a"]
    assert article_order(scores, articles, support=0.4, penalty=0.3, depth=depth, sections=["x", "1", "2", "3"]) == want


# ------------------------------------------------------------------ the real retriever over a real Chroma

DOCS = {  # id: (article, section, text)
    "a1": ("Delivery errors", "Mailbox full", "The recipient mailbox is full and the reply bounced."),
    "a2": ("Delivery errors", "Bounce list", "A reply that bounced from a full mailbox is retried later."),
    "a3": ("Delivery errors", "Need more help?", "Contact support for anything else."),
    "a4": ("Delivery errors", "Retries", "Bounces from stuffed mailboxes."),  # near in meaning, no shared word
    "b1": ("Inbox tips", "Replies", "Mailbox full: reply bounced, try again."),
    "b2": ("Inbox tips", "Pinning", "Pin a conversation to the top of the inbox."),
    # another article, sharing no word with the questions: BM25's word statistics need a corpus
    **{f"c{i}": ("Reports", f"Chart {i}", f"Chart {i} shows weekly {w} per agent.")
       for i, w in enumerate(["tickets", "ratings", "tags", "shifts", "macros", "views"])},
}


def _collection(tmp_path, only=None):
    """The docs (of article ``only``, when given; their relative order kept) in a real Chroma."""
    from .test_ranking_at_scale import collection

    return collection(tmp_path, {i: d for i, d in DOCS.items() if not only or d[0] == only})


def _ranked(retriever, question, penalty):
    retriever.article_penalty = penalty
    return [h.id for h in retriever.search(question, k=5).hits]


@pytest.mark.parametrize(
    "question,plain_first,first",
    [
        # b1 shares the most words, but the delivery article answers in two places
        ("mailbox full reply bounced try again", "b1", "a1"),
        ("full mailbox reply bounced, try", "b1", "a1"),
        # a question about the other article's own topic still gets it
        ("how do I pin a conversation to the top of the inbox", "b2", "b2"),
        # the delivery article first either way
        ("mailbox full, reply bounced again", "a1", "a1"),
    ],
)
def test_passages_of_the_article_the_question_is_about_come_first(tmp_path, question, plain_first, first):
    r = _collection(tmp_path)
    plain = _ranked(r, question, 0.0)
    assert plain[0] == plain_first  # what fused scores alone give
    got = _ranked(r, question, 0.1)
    assert got[0] == first
    assert sorted(got) == sorted(plain)  # reordered, nothing lost
    hits = {h.id: h for h in r.search(question, k=5).hits}
    assert all(h.score == pytest.approx(0.7 * h.similarity + 0.3 * h.lexical) for h in hits.values())  # scores as fused


@pytest.mark.parametrize("kinds", [None, ("section",), ("section", "row")])
@pytest.mark.parametrize("dense,found", [(0, False), (12, True)])
def test_the_best_supported_article_s_own_nearest_passages_join(tmp_path, dense, found, kinds):
    # two dense results collection-wide; a4 shares no word with the question (BM25 misses it)
    r = _collection(tmp_path)
    r.candidates = r.max_candidates = 2
    r.article_dense = dense
    r.lexical_rescore = 0  # (that rule would give a2, a word match, its cosine too: tests/unit/test_topic_titles.py)
    hits = {h.id: h for h in r.search("mailbox full reply bounced try again", k=9, kinds=kinds).hits}
    assert list(hits)[0] == "a1"
    assert ("a4" in hits) is found
    assert (hits["a2"].similarity > 0) is found  # without stage two, a2 is scored on its words alone
    if found:
        assert hits["a4"].similarity > 0 and hits["a4"].lexical == 0
        assert hits["a2"].score > hits["a4"].score


def test_a_kind_no_document_has_finds_nothing(tmp_path):
    assert _collection(tmp_path).search("mailbox full reply bounced try again", k=3, kinds=("row",)).hits == []


@pytest.mark.parametrize("question", ["mailbox full reply bounced try again", "contact support", "bounced later"])
def test_one_article_ranks_exactly_as_before(tmp_path, question):
    r = _collection(tmp_path, only="Delivery errors")
    assert _ranked(r, question, 0.1) == _ranked(r, question, 0.0)


@pytest.mark.parametrize(
    "size,want",
    [(5, 5), (40, 12), (400, 12), (1_200, 21), (1_600, 24), (6_000, 40), (60_000, 40)],
)
def test_dense_candidates_grow_with_the_collection(size, want):
    r = HybridRetriever.__new__(HybridRetriever)
    r.candidates = 12
    assert r._candidates(size) == want
