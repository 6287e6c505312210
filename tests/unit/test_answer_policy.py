"""The answer policy, fast: the real answerer over fakes (no model).

Services are the real ones (``build``) over the real KB in a real embedded
Chroma with ``FakeEmbedder``; where a rule depends on exactly what search
returns, a ``FakeRetriever`` (and ``FakeOtherArticles``) says it, or a
question is pinned to a vector at an exact similarity. Assertions are on the
answer contract (``to_dict()``) and on the wording in ``wording.yaml``; table
rows are read from ``kb/``. The same rules over the real model are in
``tests/integration/test_answer.py``.
"""

from __future__ import annotations

import pytest

from app.codes.bounce import MAX_RECIPIENTS
from app.codes.table import MAX_CODES
from app.config import Settings
from app.errors import EmptyQuestion, NotText, QuestionTooLong, SearchUnavailable

from ..fakes import (FakeOtherArticles, FakeRetriever, broken_services, cells, chunk, fake_services, hit,
                     kb_articles, kb_rows, result, services_with, wording)

ROWS = kb_rows()  # {code: (meaning, action)}, verbatim from kb/
W = wording()
(ARTICLE,) = kb_articles()
SUPPORT = next(s for s in ARTICLE.sections if s.heading == "Need more help?")
FLOOR = Settings().min_similarity  # the real default floor
MARGIN = Settings().off_topic_margin
PROBLEM = "the vector store did not answer the search within 2 s"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """The real pipeline on the fake embedder (its own, lower floor)."""
    return fake_services(tmp_path_factory.mktemp("policy_index"))


@pytest.fixture(scope="module")
def at_floor(tmp_path_factory):
    """The same at the real default floor and margin: for questions pinned to exact similarities."""
    return fake_services(tmp_path_factory.mktemp("floor_index"), min_similarity=FLOOR, off_topic_margin=MARGIN)


def ask(services, question: str) -> dict:
    return services.answerer.ask(question).to_dict()


def on(services, answer, other=None, **settings):
    """``services`` whose answerer searches a ``FakeRetriever`` answering ``answer``."""
    retriever = FakeRetriever(answer, embedder=services.embedder)
    return services_with(services, retriever, other, **settings), retriever


def dont_know() -> str:
    return W["dont_know"].format(article=ARTICLE.title)


def assert_support_quoted(d: dict) -> None:
    assert ARTICLE.section_url(SUPPORT) in d["answer"]
    assert SUPPORT.blocks[0].text in d["answer"]


def section_hit(heading: str, similarity: float, score: float | None = None):
    return hit(chunk(heading), similarity, score)


# ------------------------------------------------------------- exact codes

@pytest.mark.parametrize("code", sorted(ROWS))
def test_an_exact_code_gets_its_row_verbatim_and_is_answered(services, code):
    d = ask(services, f"customer reply bounced with {code}, what now?")
    (c,) = d["codes"]
    meaning, action = ROWS[code]
    assert (c["code"], c["match"]) == (code, "exact")
    assert cells(c["row"]) == {"code": code, "meaning": meaning, "action": action}
    assert c["explanation"] is None and c["related"] == []
    assert meaning in d["answer"] and action in d["answer"]
    assert d["answered"] is True
    assert [s["section"] for s in d["sources"]] == ["Common delivery errors"]
    assert meaning in d["sources"][0]["text"] and action in d["sources"][0]["text"]


@pytest.mark.parametrize("text,row", [("550 #5.1.1", "550-5.1.1"), ("5.1.1", "550-5.1.1"),
                                      ('550, "5.7.1"', "550-5.7.1"), ("(#5.2.2)", "552-5.2.2"),
                                      ("421 4.7.28", "421-4.7.28")])
def test_an_exact_code_in_any_pasted_shape_gets_its_row(services, text, row):
    d = ask(services, f"Remote server said {text}")
    (c,) = d["codes"]
    assert c["match"] == "exact" and cells(c["row"]) == {"code": row, "meaning": ROWS[row][0], "action": ROWS[row][1]}
    assert ROWS[row][0] in d["answer"] and d["answered"] is True


def test_each_exact_row_is_cited_once_as_a_table_row(services):
    d = ask(services, "550 5.1.1 and again 550 5.1.1, also 552 5.2.2")
    assert [c["code"] for c in d["codes"]] == ["550-5.1.1", "552-5.2.2"]
    assert [(s["kind"], s["code"], s["section"]) for s in d["sources"]] == [
        ("row", "550-5.1.1", "Common delivery errors"), ("row", "552-5.2.2", "Common delivery errors")]
    assert all(s["url"] == ARTICLE.section_url("Common delivery errors") for s in d["sources"])


def test_an_exact_code_needs_no_search(services):
    s, retriever = on(services, SearchUnavailable(PROBLEM))
    d = ask(s, "What does 550 5.1.1 mean?")
    assert d["answered"] is True and d["codes"][0]["row"]["meaning"] == ROWS["550-5.1.1"][0]
    assert retriever.calls == [] and PROBLEM not in d["answer"]


def test_html_in_the_question_is_not_echoed(services):
    d = ask(services, "<img src=x onerror=alert(1)> what is 550-5.1.1")
    assert "<img" not in d["answer"] and "onerror" not in d["answer"]
    assert d["codes"][0]["match"] == "exact"


# ---------------------------------------------------------- untabled codes

UNTABLED = ["what is 550 5.7.26?", "got 450 4.2.2", "error 554", "550 5.1.10 bounce"]


@pytest.mark.parametrize("question", UNTABLED)
def test_an_untabled_code_gets_no_row_and_labelled_general_guidance(services, question):
    d = ask(services, question)
    assert d["codes"]
    for c in d["codes"]:
        assert c["match"] == "none" and c["row"] is None
        assert W["not_in_table"].format(code=c["code"], severity_label=W["severity_labels"][c["severity"]]) in d["answer"]
        e = c["explanation"]
        assert e is not None, "the registries know every code in these questions"
        assert W["general_heading"].format(basis_label=W["basis_labels"][e["basis"]]) in d["answer"]
        assert e["meaning"] in d["answer"]
        for r in c["related"]:  # the closest rows: their codes, offered as such, never their words
            assert r["code"] in d["answer"] and (r["meaning"], r["action"]) == ROWS[r["code"]]
    for meaning, _ in ROWS.values():  # no table row passed off as this code's meaning
        assert meaning not in d["answer"]
    for s in d["sources"]:  # no table row cited
        assert not s["text"].startswith(tuple(ROWS))


def untabled_with_a_row_found(services):
    """An untabled code whose search finds a table row first, then a section."""
    row = chunk(code="550-5.7.1")
    s, _ = on(services, [hit(row, 0.9), section_hit("Troubleshooting message delivery failures", 0.6)])
    return ask(s, "what is 550 5.7.26?")


def test_an_untabled_code_is_not_given_a_row_even_when_search_finds_one(services):
    d = untabled_with_a_row_found(services)
    assert [x["section"] for x in d["sources"]] == ["Troubleshooting message delivery failures"]
    assert not any(x["text"].startswith(tuple(ROWS)) for x in d["sources"])
    assert ROWS["550-5.7.1"][0] not in d["answer"]
    assert W["passages_intro_after_codes"] in d["answer"]
    assert d["answered"] is True


def test_an_untabled_code_cites_sections_only(services):
    d = untabled_with_a_row_found(services)
    assert [(x["kind"], x["code"]) for x in d["sources"]] == [("section", None)]


def test_an_untabled_code_without_relevant_passages_quotes_support_and_is_not_answered(services):
    s, _ = on(services, result([], best_similarity=0.0))
    d = ask(s, "what is 550 5.7.26?")
    assert d["codes"][0]["match"] == "none" and d["sources"] == []
    assert W["support_intro"].format(section=SUPPORT.heading, url=ARTICLE.section_url(SUPPORT)) in d["answer"]
    assert_support_quoted(d)
    assert d["answered"] is False


# ------------------------------------------------------- free-form questions

@pytest.mark.parametrize(
    "question,section",
    [
        ("How do I get an address off the bounce list?", "Email address is on a bounce list"),
        ("Does a delivery failure note reopen a closed conversation?", "Introduction"),
        ("how can we reduce delivery failures?", "Best practices to reduce delivery failures"),
    ],
)
def test_a_free_form_question_quotes_and_cites_the_article(services, question, section):
    d = ask(services, question)
    assert d["answered"] is True and d["codes"] == []
    top = d["sources"][0]
    assert top["section"] == section and top["article"] == ARTICLE.title
    assert top["url"] == ARTICLE.section_url(section) and top["url"] in d["answer"]
    quoted = top["focused"] or top["text"]  # the sentences that answer; the whole passage stays in text
    for line in quoted.splitlines():
        assert line.strip() in d["answer"] and line.strip() in top["text"]


def test_passages_close_to_the_best_are_quoted_and_weak_ones_left_out(services):
    best = section_hit("Email address is on a bounce list", 0.6)
    close = section_hit("Troubleshooting message delivery failures", 0.55, score=0.58)
    weak_score = section_hit("Best practices to reduce delivery failures", 0.5, score=0.1)
    irrelevant = section_hit("Introduction", 0.05, score=0.59)  # scores well, but not relevant on its own
    s, _ = on(services, [best, irrelevant, close, weak_score], top_k=4)
    d = ask(s, "How do I get an address off the bounce list?")
    assert [x["section"] for x in d["sources"]] == [best.metadata["section"], close.metadata["section"]]
    assert [x["text"] for x in d["sources"]] == [best.text, close.text]
    assert [x["score"] for x in d["sources"]] == [0.6, 0.58]
    assert W["passages_intro"].format(article=ARTICLE.title) in d["answer"]
    for x in d["sources"]:
        assert W["citation"].format(**x) in d["answer"]
    assert weak_score.text.splitlines()[0] not in d["answer"] and irrelevant.text.splitlines()[0] not in d["answer"]


def test_a_row_found_by_search_is_quoted_with_its_words(services):
    row = chunk(code="552-5.2.2")
    s, _ = on(services, [hit(row, 0.7)])
    d = ask(s, "her mailbox is full, what can I do?")
    meaning, action = ROWS["552-5.2.2"]
    assert d["answered"] is True and d["codes"] == []
    assert meaning in d["answer"] and action in d["answer"]
    assert [(x["kind"], x["code"]) for x in d["sources"]] == [("row", "552-5.2.2")]


# ------------------------------------------------------------------- floor

@pytest.mark.parametrize("delta,answered", [(-0.01, False), (0.01, True)])
def test_the_similarity_floor_decides_whether_the_article_answers(services, delta, answered):
    s, _ = on(services, [section_hit("Email address is on a bounce list", FLOOR + delta)], min_similarity=FLOOR)
    d = ask(s, "How do I get an address off the bounce list?")
    assert d["answered"] is answered and d["codes"] == []
    if answered:
        assert d["sources"][0]["section"] == "Email address is on a bounce list"
    else:
        assert d["sources"] == [] and d["answer"].startswith(dont_know())
        assert_support_quoted(d)


@pytest.mark.parametrize("similarity,answered", [(FLOOR - 0.03, False), (FLOOR + 0.03, True)])
def test_the_floor_through_the_real_retrieval(at_floor, similarity, answered):
    target = chunk("Email address is on a bounce list")
    question = f"zqxv wibble {similarity}"  # no word of the KB: only the pinned vector counts
    at_floor.embedder.pin(question, at_floor.embedder.vector_at(target.search_text, similarity))
    d = ask(at_floor, question)
    assert d["answered"] is answered
    if answered:
        assert d["sources"][0]["text"] == target.text
    else:
        assert d["sources"] == [] and d["answer"].startswith(dont_know())


def test_below_the_floor_the_answer_carries_the_support_section(services):
    s, _ = on(services, [section_hit("Introduction", 0.01)], min_similarity=FLOOR)
    d = ask(s, "How much does SparrowDesk cost per seat?")
    assert d["answered"] is False
    assert {k: d["support"][k] for k in ("article", "section", "url")} == {
        "article": ARTICLE.title, "section": SUPPORT.heading, "url": ARTICLE.section_url(SUPPORT)}
    for block in SUPPORT.blocks:
        assert block.text in d["support"]["text"]
    assert d["other_article"] is None


@pytest.mark.parametrize("question", ["What's the weather in Paris?", "Who won the football match yesterday?",
                                      "How much does SparrowDesk cost per seat?"])
def test_a_question_the_article_has_nothing_on_is_not_answered(services, question):
    d = ask(services, question)
    assert d["answered"] is False and d["sources"] == [] and d["codes"] == []
    assert d["answer"].startswith(dont_know())
    assert_support_quoted(d)


# --------------------------------------------------------------- off topic

def test_a_question_closer_to_another_article_is_refused_naming_it(services):
    s, _ = on(services, [section_hit("Troubleshooting message delivery failures", 0.5)],
              FakeOtherArticles("Single Sign-On", 0.5 + MARGIN + 0.05), min_similarity=FLOOR, off_topic_margin=MARGIN)
    d = ask(s, "how do I set up single sign-on?")
    assert d["answered"] is False and d["sources"] == [] and d["codes"] == []
    assert d["answer"].startswith(dont_know())
    assert W["other_article"].format(title="Single Sign-On") in d["answer"]
    assert_support_quoted(d)


def test_the_refusal_names_the_other_article_in_the_contract(services):
    s, _ = on(services, [section_hit("Troubleshooting message delivery failures", 0.5)],
              FakeOtherArticles("Single Sign-On", 0.5 + MARGIN + 0.05), min_similarity=FLOOR, off_topic_margin=MARGIN)
    d = ask(s, "how do I set up single sign-on?")
    assert d["other_article"] == "Single Sign-On" and d["support"]["section"] == SUPPORT.heading


def test_another_article_within_the_margin_does_not_refuse(services):
    s, _ = on(services, [section_hit("Troubleshooting message delivery failures", 0.5)],
              FakeOtherArticles("Single Sign-On", 0.5 + MARGIN - 0.05), min_similarity=FLOOR, off_topic_margin=MARGIN)
    d = ask(s, "the error keeps happening, what should I check?")
    assert d["answered"] is True and "Single Sign-On" not in d["answer"]
    assert d["sources"][0]["section"] == "Troubleshooting message delivery failures"


def test_off_topic_through_the_real_retrieval_and_the_real_titles(at_floor):
    """The other articles' real titles, embedded by the fake: a question near one is refused with it."""
    target = chunk("Email address is on a bounce list")
    question = "zqxv wobble sso"
    at_floor.embedder.pin(question, at_floor.embedder.vector_at(target.search_text, FLOOR + 0.07, toward="Single Sign-On"))
    d = ask(at_floor, question)
    assert d["answered"] is False and d["sources"] == []
    assert W["other_article"].format(title="Single Sign-On") in d["answer"]


# ------------------------------------------------------- search unavailable

@pytest.mark.parametrize("question", UNTABLED)
def test_without_search_codes_are_still_answered_with_a_notice(services, question):
    s, retriever = on(services, SearchUnavailable(PROBLEM))
    d = ask(s, question)
    assert d["codes"] and all(c["match"] == "none" for c in d["codes"])
    assert W["search_unavailable"].format(problem=PROBLEM) in d["answer"]
    assert d["sources"] == [] and retriever.calls


def test_without_search_the_notice_is_in_the_contract(services):
    s, _ = on(services, SearchUnavailable(PROBLEM))
    d = ask(s, "what is 550 5.7.26?")
    assert [n["kind"] for n in d["notices"]] == ["search_unavailable"]
    assert PROBLEM in d["notices"][0]["text"]


@pytest.mark.parametrize("question", ["How do I get an address off the bounce list?", "hey how is your day going"])
def test_without_search_a_question_nothing_else_answers_raises(services, question):
    s, _ = on(services, SearchUnavailable(PROBLEM))
    with pytest.raises(SearchUnavailable) as e:
        ask(s, question)
    assert PROBLEM in str(e.value) and "Search is unavailable" in str(e.value)


def test_a_store_that_refuses_every_call_is_search_unavailable(tmp_path):
    """Through the real build and the real guard: the look-up goes on, the search says why it cannot."""
    s = broken_services(tmp_path)
    with pytest.raises(SearchUnavailable) as e:
        ask(s, "How do I get an address off the bounce list?")
    assert "Connection refused" in str(e.value)
    d = ask(s, "What does 550 5.1.1 mean?")  # needs no store
    assert d["answered"] is True and d["codes"][0]["row"]["code"] == "550-5.1.1"
    d = ask(s, "what is 550 5.7.26?")  # the code's part stands
    assert d["codes"][0]["match"] == "none" and "Connection refused" in d["answer"]


# -------------------------------------------------------------------- caps

def many_codes(n: int) -> str:
    return "Remote server said: " + "; ".join(f"450 4.{i // 10}.{i % 10}" for i in range(n))


def many_recipients(n: int) -> str:
    blocks = "\n".join(
        f"Final-Recipient: rfc822; user{i}@example.org\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
        for i in range(n)
    )
    return ("From: MAILER-DAEMON@mx.example.net\nTo: sender@example.com\n"
            "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: text/plain\n\n"
            f"Delivery failed.\n\nReporting-MTA: dns; mx.example.net\n\n{blocks}")


def test_codes_past_the_cap_are_left_out_and_the_answer_says_so(services):
    found = MAX_CODES + 10
    d = ask(services, many_codes(found))
    assert len(d["codes"]) == MAX_CODES
    assert W["limits_codes"].format(examined=MAX_CODES, found=found) in d["answer"]


def test_recipients_past_the_cap_are_left_out_and_the_answer_says_so(services):
    found = MAX_RECIPIENTS + 5
    d = ask(services, many_recipients(found))
    assert [r["recipient"] for r in d["recipients"]] == [f"user{i}@example.org" for i in range(MAX_RECIPIENTS)]
    assert W["limits_recipients"].format(examined=MAX_RECIPIENTS, found=found) in d["answer"]
    assert d["codes"][0]["row"]["code"] == "550-5.1.1"


def test_the_caps_are_stated_in_the_contract(services):
    found = MAX_CODES + 10
    d = ask(services, many_codes(found))
    assert {k: d["limits"][k] for k in ("codes_found", "codes_examined", "truncated")} == {
        "codes_found": found, "codes_examined": MAX_CODES, "truncated": True}
    assert "codes_capped" in [n["kind"] for n in d["notices"]]
    d = ask(services, many_recipients(MAX_RECIPIENTS + 5))
    assert d["limits"]["recipients_found"] == MAX_RECIPIENTS + 5 and d["limits"]["truncated"] is True
    assert "recipients_capped" in [n["kind"] for n in d["notices"]]
    d = ask(services, "What does 550 5.1.1 mean?")
    assert d["limits"]["truncated"] is False and d["notices"] == []


# -------------------------------------------------------------- bad input

@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_an_empty_question_is_refused(services, question):
    with pytest.raises(EmptyQuestion):
        ask(services, question)


def test_a_question_that_is_not_text_is_refused(services):
    with pytest.raises(NotText):
        ask(services, "\ud800 550 5.1.1")


def test_a_question_over_the_limit_is_refused_and_one_at_it_answered(services):
    limit = services.settings.max_question_bytes
    with pytest.raises(QuestionTooLong) as e:
        ask(services, "x" * (limit + 1))
    assert f"{limit:,}" in str(e.value)
    paste = "550 5.1.1 user unknown\n"
    d = ask(services, paste + "y" * (limit - len(paste)))
    assert d["codes"][0]["match"] == "exact"
