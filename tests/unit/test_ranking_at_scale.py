"""Ranking and refusal among many articles (issue 14): the rules that keep the answering article's
figures where a KB of that article alone has them.

- a passage several articles hold word for word (a shared code table, a footer) is evidence for
  none of them in particular, and its copies do not crowd other passages out of the candidates;
- the answering article's passages are ranked as a KB of that article alone ranks them;
- the refusal checks compare the answering article's own best cosine, not the collection's.

Real Chroma in a temp dir, the deterministic ``FakeEmbedder``; the rules alone are pure functions."""

from __future__ import annotations

import pytest

from app.search.alone import refill
from app.search.ranking import article_order, distinct, passage_key, shared_by
from app.search.retrieval import HybridRetriever, SearchResult
from tests.fakes import FakeEmbedder, FakeOtherArticles, chunk, fake_services, hit, result, services_with


# ------------------------------------------------------------------ the rules alone

@pytest.mark.parametrize("a,b,same", [
    ("550-5.1.1: The address does not exist.", "550-5.1.1: the address  does not exist", True),
    ("Need more help?\n\nContact support.", "need more help contact support", True),
    ("Mailbox full.", "Mailbox is full.", False),
])
def test_passages_are_the_same_words_whatever_their_case_spacing_and_punctuation(a, b, same):
    assert (passage_key(a) == passage_key(b)) is same


@pytest.mark.parametrize("keys,articles,known,want", [
    (["x", "y"], ["a", "b"], None, [1, 1]),
    (["x", "x", "y"], ["a", "b", "b"], None, [2, 2, 1]),
    (["x", "x"], ["a", "a"], None, [1, 1]),  # one article's two copies: still its own
    (["x"], ["a"], {"x": {"b", "c"}}, [3]),  # copies seen further down the dense list count
    (["x"], ["a"], {"x": {"a"}}, [1]),
])
def test_shared_by_counts_the_articles_holding_the_same_words(keys, articles, known, want):
    assert shared_by(keys, articles, known) == want


@pytest.mark.parametrize("texts,articles,n,kept,held", [
    (["x", "y", "z"], ["a", "b", "c"], 2, ["0", "1"], {"x": 1, "y": 1, "z": 1}),
    (["x", "x", "x", "y"], ["a", "b", "c", "a"], 2, ["0", "3"], {"x": 3, "y": 1}),  # one copy, the best
    (["X.", "x", "y"], ["a", "b", "b"], 3, ["0", "2"], {"x": 2, "y": 1}),  # same words, other punctuation
    (["x", "x"], ["a", "a"], 2, ["0"], {"x": 1}),
])
def test_distinct_keeps_one_copy_of_each_text_and_counts_its_articles(texts, articles, n, kept, held):
    ids = [str(j) for j in range(len(texts))]
    dense, holders = distinct(ids, [1.0 - j / 10 for j in range(len(texts))], articles, texts, n)
    assert list(dense) == kept and {k: len(v) for k, v in holders.items()} == held


@pytest.mark.parametrize(
    "scores,articles,sections,shares,want",
    [
        # b's two places are word for word in four articles each: a, with its own words, comes first
        ([0.58, 0.56, 0.5, 0.45], ["b", "b", "a", "a"], ["t", "u", "s", "r"], [4, 4, 1, 1], [2, 0, 1, 3]),
        # the same without shares: b has the most evidence
        ([0.6, 0.58, 0.5, 0.45], ["b", "b", "a", "a"], ["t", "u", "s", "r"], None, [0, 1, 2, 3]),
        # every passage one article's own: as without shares
        ([0.6, 0.58, 0.5, 0.45], ["b", "b", "a", "a"], ["t", "u", "s", "r"], [1, 1, 1, 1], [0, 1, 2, 3]),
        # one shared place of b's, one of its own: b's own words still outweigh a's
        ([0.6, 0.58, 0.3, 0.2], ["b", "b", "a", "a"], ["t", "u", "s", "r"], [5, 1, 1, 1], [0, 1, 2, 3]),
        # one article: the fused order, whatever is shared
        ([0.6, 0.5], ["a", "a"], None, [9, 9], [0, 1]),
    ],
)
def test_words_several_articles_hold_are_evidence_for_none_of_them(scores, articles, sections, shares, want):
    assert article_order(scores, articles, 0.5, 0.1, 2, sections, shares) == want


@pytest.mark.parametrize("order,articles,ranked,want", [
    ([0, 1, 2], ["a", "b", "a"], [2, 0], [2, 1, 0]),  # a's places refilled in a's own order
    ([0, 1, 2], ["a", "b", "a"], [0, 2], [0, 1, 2]),
    ([1, 0, 2, 3], ["a", "b", "a", "a"], [3, 0, 2], [1, 3, 0, 2]),  # b's place stays
    ([0, 1], ["a", "b", "a"], [2, 0], [2, 1, 0]),  # a passage the order lacked follows at the end
])
def test_refill_keeps_other_articles_places(order, articles, ranked, want):
    assert refill(order, articles, "a", ranked) == want


# ------------------------------------------------------------------ the real retriever over a real Chroma

REAL = {  # the article the questions are about (id: section, text)
    "r1": ("Mailbox full", "The recipient mailbox is full and the reply bounced back to the inbox."),
    "r2": ("Bounce list", "An address on the bounce list gets no replies until an agent removes it."),
    "r3": ("Retries", "Replies that bounced are retried later; a full mailbox often clears."),
    "r4": ("Need more help?", "Contact support with the bounce message and the address."),
}
TABLE = "452-4.2.2: The mailbox is over its storage quota for now. Wait a few hours, then send again."
OTHER_TOPICS = ["tickets", "ratings", "tags", "shifts", "macros", "views", "forms", "widgets"]


def others(n: int, shared_table: bool) -> dict:
    """n articles about other things, each with one section of its own and, when asked, the same
    code-table row word for word (as generic code tables are, across a help centre)."""
    docs = {}
    for i in range(n):
        topic = OTHER_TOPICS[i % len(OTHER_TOPICS)]
        docs[f"o{i}s"] = (f"Other {i}", "Steps", f"Open the {topic} page and choose weekly {topic} number {i}.")
        if shared_table:
            docs[f"o{i}t"] = (f"Other {i}", "Codes you may see", TABLE)
    return docs


def collection(tmp_path, docs: dict, name: str = "articles"):
    import chromadb

    from app.knowledge.chunks import search_text
    from app.search.chroma import COSINE

    emb = FakeEmbedder()
    col = chromadb.PersistentClient(str(tmp_path)).create_collection(name, configuration=COSINE,
                                                                      embedding_function=None)
    ids, texts, metas = [], [], []
    for n, (i, (art, sec, text)) in enumerate(docs.items()):
        ids.append(i)
        texts.append(text)
        metas.append({"article": art, "article_path": art.lower().replace(" ", "-") + ".md", "section": sec,
                      "heading_path": f"{art} > {sec}", "kind": "section", "order": n, "url": "https://example.test/"})
    col.add(ids=ids, documents=texts, metadatas=metas,
            embeddings=emb.embed_documents([search_text(t, m) for t, m in zip(texts, metas)]))
    return HybridRetriever(col, emb, multilingual=None)


def real(**extra) -> dict:
    return {i: ("Delivery errors", s, t) for i, (s, t) in REAL.items()} | extra


@pytest.mark.parametrize("question", [
    "mailbox full, my reply bounced",
    "how do I get an address off the bounce list",
    "will a bounced reply be retried later",
    "who do I contact about a bounce message",
])
@pytest.mark.parametrize("n", [3, 12])
def test_the_answering_article_ranks_its_passages_as_it_alone_does(tmp_path, question, n):
    alone = collection(tmp_path / "alone", real())
    many = collection(tmp_path / "many", real(**others(n, shared_table=False)))
    want = [(h.id, round(h.score, 6)) for h in alone.search(question, k=4).hits]
    got = [(h.id, round(h.score, 6)) for h in many.search(question, k=8).hits if h.id.startswith("r")]
    assert got[: len(want)] == want  # same passages, same order, same scores as the article alone


@pytest.mark.parametrize("question", ["quota wait a few hours send again full mailbox",
                                      "over its storage quota for now, wait a few hours then send again"])
@pytest.mark.parametrize("shared_out", [1, 0])
def test_a_row_many_articles_hold_is_quoted_once(tmp_path, question, shared_out):
    # the same code-table row in eight articles: one copy is quoted, the other places go to other passages
    r = collection(tmp_path, real(**others(8, shared_table=True)))
    r.article_shared = shared_out
    hits = r.search(question, k=4).hits
    assert hits[0].text == TABLE
    copies = sum(h.text == TABLE for h in hits)
    assert copies == 1 if shared_out else copies == 4


def test_copies_do_not_crowd_the_other_passages_out_of_the_candidates(tmp_path):
    r = collection(tmp_path, real(**others(8, shared_table=True)))
    r.dense_overfetch = 4  # 3 x 4 nearest asked for: the 8 copies and 4 other passages
    q = r.embedder.embed_query("over its storage quota for now, wait a few hours then send again")
    dense, holders, spread = r._dense(q, 3, len(r))  # three dense candidates: the copies would fill them
    texts = [r.documents.fetch([i])[i][0] for i in dense]
    assert len(texts) == len(set(texts)) == 3 and TABLE in texts and spread
    table = next(i for i in dense if r.documents.fetch([i])[i][0] == TABLE)
    key = r._keys([table], r.documents.fetch([table]))[0]  # passage_key, or its hash from the lexical index
    assert len(holders[key]) >= 2  # the copies seen are counted
    r.article_shared = 0  # the rule off: the copies take the places
    dense, _, _ = r._dense(q, 3, len(r))
    assert [r.documents.fetch([i])[i][0] for i in dense] == [TABLE] * 3


@pytest.mark.parametrize("question", ["mailbox full, my reply bounced", "open the tickets page"])
def test_the_answering_similarity_is_the_first_hit_s_article_s_own(tmp_path, question):
    r = collection(tmp_path, real(**others(6, shared_table=False)))
    res = r.search(question, k=3)
    own = res.hits[0].metadata["article"]
    sims = [h.similarity for h in r.search(question, k=40).hits if h.metadata["article"] == own]
    assert res.answering_similarity == pytest.approx(max(sims))
    assert res.answering_similarity <= res.best_similarity + 1e-9


def test_one_article_answers_with_the_collection_s_best_similarity(tmp_path):
    res = collection(tmp_path, real()).search("mailbox full, my reply bounced", k=3)
    assert res.answer_similarity is None and res.answering_similarity == res.best_similarity


# ------------------------------------------------------------------ the answerer's refusal checks

@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("scale_policy_index"), min_similarity=0.33, off_topic_margin=0.08)


def searched(hits, best, answering):
    return SearchResult(list(hits), best, (1.0, 0.0), answering)


@pytest.mark.parametrize("best,answering,other,answered,other_article", [
    # another article's near passage (best 0.9) does not make a weak answering article answer
    (0.9, 0.2, 0.0, False, None),
    (0.9, 0.5, 0.0, True, None),
    # one article (answering None): the collection's best decides, as before
    (0.5, None, 0.0, True, None),
    (0.2, None, 0.0, False, None),
    # the off-topic check compares the title with the answering article's cosine, not the best
    (0.9, 0.5, 0.7, False, "Pricing"),
    (0.9, 0.65, 0.7, True, None),
])
def test_refusals_read_the_answering_article_s_similarity(services, best, answering, other, answered, other_article):
    section = chunk("Email address is on a bounce list")
    sim = answering if answering is not None else best
    s = services_with(services, _Fixed(searched([hit(section, sim)], best, answering)),
                      FakeOtherArticles("Pricing", other), min_similarity=0.33, off_topic_margin=0.08)
    a = s.answerer.ask("how do I get an address off the bounce list?").to_dict()
    assert a["answered"] is answered and a["other_article"] == other_article


class _Fixed:
    def __init__(self, res):
        self.res, self.embedder = res, FakeEmbedder()

    def search(self, query, k=3, kinds=None):
        return self.res


def test_fakes_results_without_an_answering_similarity_still_work():
    assert result([], best_similarity=0.4).answering_similarity == 0.4
