"""Hybrid retrieval against a real Chroma holding the real KB."""

from __future__ import annotations

import pytest

from app.search.retrieval import HybridRetriever, tokenize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retriever(services):
    return services.answerer.retriever


def test_tokenize_keeps_codes_whole():
    assert tokenize("Got 550-5.1.1 (#5.7.1) from the recipient’s server") == [
        "got", "550", "5.1.1", "5.7.1", "recipient’s", "server",
    ]


@pytest.mark.parametrize(
    "query,section",
    [
        ("how do I get an address removed from the suppression list?", "Email address is on a bounce list"),
        ("what are the troubleshooting steps if the error continues", "Troubleshooting message delivery failures"),
        ("how can I improve deliverability", "Best practices to reduce delivery failures"),
        ("does a failure note reopen a closed conversation", "Introduction"),
    ],
)
def test_questions_find_their_section_first(retriever, query, section):
    result = retriever.search(query, k=3)
    assert result.hits[0].metadata["section"] == section
    assert result.best_similarity > 0.3


def test_lexical_catches_exact_tokens(retriever):
    result = retriever.search("5.7.1", k=3)
    top = result.hits[0]
    assert top.metadata.get("code") == "550-5.7.1"
    assert top.lexical > 0 and all(h.lexical < top.lexical for h in result.hits[1:])
    dense_only = HybridRetriever(retriever.collection, retriever.embedder, dense_weight=1.0).search("5.7.1", k=1)
    assert dense_only.hits[0].metadata.get("code") != "550-5.7.1"  # what the embedding alone misses


def test_dense_finds_paraphrases_without_shared_words(retriever):
    result = retriever.search("inbox over quota", k=3)
    assert "552-5.2.2" in [h.metadata.get("code") for h in result.hits]


def test_kinds_filter(retriever):
    result = retriever.search("mailbox full", k=5, kinds=("section",))
    assert result.hits and all(h.metadata["kind"] == "section" for h in result.hits)


def test_other_help_centre_articles_are_recognised(services, retriever):
    from app.search.retrieval import OtherArticles

    other = OtherArticles(["Export Conversations as CSV", "How does SparrowDesk pricing work?"], retriever.embedder)
    result = retriever.search("how do I export all conversations to CSV", k=3)
    title, similarity = other.closest(result.vector)
    assert title == "Export Conversations as CSV" and similarity > result.best_similarity


def test_unrelated_question_scores_low(retriever):
    assert retriever.search("what is the capital of France", k=3).best_similarity < 0.2


def test_scores_are_fused_and_sorted(retriever):
    hits = retriever.search("bounce list removal", k=5).hits
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert h.score == pytest.approx(retriever.dense_weight * h.similarity + (1 - retriever.dense_weight) * h.lexical)


def test_empty_collection(make_settings, embedder):
    from app.search.chroma import COSINE, make_client

    settings = make_settings()
    col = make_client(settings).get_or_create_collection("empty", configuration=COSINE, embedding_function=None)
    r = HybridRetriever(col, embedder)
    assert len(r) == 0 and r.search("anything").hits == []
