"""The answer contract in default mode (no language model), end to end over
the real index."""

from __future__ import annotations

import pytest

from app.answering.render import quote
from app.errors import EmptyQuestion, QuestionTooLong

from ..unit.test_kb_source import seed_table

pytestmark = pytest.mark.slow

SEED_ROWS = {code: (meaning, action) for code, meaning, action in seed_table()[1]}


def check_contract(d: dict) -> None:
    """``d`` is an answer as it goes over the wire: valid against ``contract.Answer``
    (types, literals, no unknown field), and consistent where types cannot say it."""
    from app.answering.contract import Answer

    a = Answer.model_validate(d)
    assert a.to_dict() == d  # nothing lost or added on the way through the model
    for c in a.codes:
        assert (c.row is not None) == (c.match == "exact")
        assert c.match == "none" or (c.explanation is None and c.related == [])
    for s in a.sources:
        assert s.url.startswith("https://")
        assert (s.kind == "row") == (s.code is not None) == (s.row is not None)
        assert s.row is None or (s.row.code == s.code and (s.row.section, s.row.url) == (s.section, s.url))
    exact_rows = [c.row for c in a.codes if c.match == "exact"]
    if exact_rows:  # the sources are then the rows matched, each once, in order
        assert [s.row for s in a.sources] == [r for i, r in enumerate(exact_rows) if r not in exact_rows[:i]]
    assert a.limits is not None and a.limits.truncated == any(n.kind.endswith("_capped") for n in a.notices)


@pytest.mark.parametrize("code", sorted(SEED_ROWS))
def test_exact_code_answer_quotes_the_row_verbatim(answerer, code):
    d = answerer.ask(f"customer reply bounced with {code}, what now?").to_dict()
    check_contract(d)
    (c,) = d["codes"]
    meaning, action = SEED_ROWS[code]
    assert c["row"] == {"code": code, "meaning": meaning, "action": action, "section": "Common delivery errors",
                        "url": d["sources"][0]["url"]}
    assert meaning in d["answer"] and action in d["answer"]
    assert d["answered"] is True
    assert [s["section"] for s in d["sources"]] == ["Common delivery errors"]


@pytest.mark.parametrize("question", ["what is 550 5.7.26?", "got 450 4.2.2", "error 554", "550 5.1.10 bounce"])
def test_untabled_code_gets_no_meaning(answerer, question):
    d = answerer.ask(question).to_dict()
    check_contract(d)
    assert d["codes"] and all(c["match"] == "none" and c["row"] is None for c in d["codes"])
    assert "not in the article's table" in d["answer"]
    assert "General guidance, not from the article" in d["answer"]  # said in words
    for meaning, action in SEED_ROWS.values():  # no table row is passed off as this code's meaning
        assert meaning not in d["answer"]
    assert not any(s["text"].startswith(tuple(SEED_ROWS)) for s in d["sources"])  # no table row cited


@pytest.mark.parametrize(
    "question,section,fact",
    [
        ("How do I get an address off the bounce list?", "Email address is on a bounce list",
         "make sure the original issue has been fixed"),
        ("the error keeps happening, what should I check?", "Troubleshooting message delivery failures",
         "Check whether the contact email address is correct."),
        ("Does a delivery failure note reopen a closed conversation?", "Introduction",
         "Delivery failure notes do not reopen closed conversations automatically."),
        ("how can we reduce delivery failures?", "Best practices to reduce delivery failures",
         "Set up SPF and DKIM for your sending domain."),
    ],
)
def test_free_form_question_quotes_and_cites(answerer, question, section, fact):
    d = answerer.ask(question).to_dict()
    check_contract(d)
    assert d["answered"] is True and d["codes"] == []
    assert d["sources"][0]["section"] == section
    assert fact in d["answer"]
    assert d["sources"][0]["url"] in d["answer"]  # the citation is in the text


def test_situation_without_code_quotes_the_matching_row(answerer):
    d = answerer.ask("her mailbox is full, what can I do?").to_dict()
    assert d["answered"] is True
    assert SEED_ROWS["552-5.2.2"][1] in d["answer"]


@pytest.mark.parametrize(
    "question",
    ["How much does SparrowDesk cost per seat?", "Who won the football match yesterday?", "What's the weather in Paris?",
     "How do I connect Slack?"],
)
def test_unanswerable_says_so_and_points_to_support(answerer, question):
    d = answerer.ask(question).to_dict()
    check_contract(d)
    assert d["answered"] is False and d["sources"] == [] and d["codes"] == []
    assert d["answer"].startswith("I don't know")
    assert "reach out to" in d["answer"] and "#need-more-help" in d["answer"]


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(answerer, question):
    with pytest.raises(EmptyQuestion):
        answerer.ask(question)


def test_100_kb_paste_is_accepted_and_too_long_is_refused(answerer):
    filler = "Received: from mx.example.com by relay.example.net; Mon, 1 Jan 2024\n"
    paste = filler * (100_000 // len(filler)) + "550 5.1.1 user unknown\n"
    assert 95_000 < len(paste.encode()) <= 102_400
    d = answerer.ask(paste).to_dict()
    assert [c["code"] for c in d["codes"]] == ["550-5.1.1"] and d["codes"][0]["match"] == "exact"
    with pytest.raises(QuestionTooLong) as e:
        answerer.ask("x" * (answerer.max_question_bytes + 1))
    assert "limit" in str(e.value)


def test_html_in_the_question_is_not_echoed(answerer):
    d = answerer.ask("<img src=x onerror=alert(1)> what is 550-5.1.1").to_dict()
    assert "<img" not in d["answer"] and d["codes"][0]["match"] == "exact"


# ------------------------------------------------- the contract's new fields

def test_a_source_says_whether_it_is_a_row_or_a_section(answerer):
    d = answerer.ask("is 5.1.1 permanent?").to_dict()
    check_contract(d)
    assert [(s["kind"], s["code"]) for s in d["sources"]] == [("row", "550-5.1.1")]
    assert d["sources"][0]["row"] == d["codes"][0]["row"]
    d = answerer.ask("her mailbox is full, what can I do?").to_dict()  # a row found by search, no code asked
    check_contract(d)
    (s,) = [s for s in d["sources"] if s["kind"] == "row"]
    assert s["code"] == "552-5.2.2" and (s["row"]["meaning"], s["row"]["action"]) == SEED_ROWS["552-5.2.2"]
    d = answerer.ask("How do I get an address off the bounce list?").to_dict()
    check_contract(d)
    assert {(s["kind"], s["code"], s["row"]) for s in d["sources"]} == {("section", None, None)}


def test_a_refusal_carries_the_support_section_and_any_other_article(answerer):
    d = answerer.ask("How do I connect my custom email address?").to_dict()
    check_contract(d)
    assert d["answered"] is False and d["other_article"] == "Connect your custom email address"
    assert d["support"]["section"] == "Need more help?" and quote(d["support"]["text"]) in d["answer"]
    d = answerer.ask("How much does SparrowDesk cost per seat?").to_dict()
    assert d["other_article"] is None and d["support"]["url"].endswith("#need-more-help")
    answered = answerer.ask("What does 550 5.1.1 mean?").to_dict()
    assert answered["support"] is None and answered["other_article"] is None


def test_limits_and_notices_say_what_a_cap_left_out(services):
    from app.answering.answerer import Answerer
    from app.codes.table import CodeTable

    capped = Answerer(CodeTable(services.table.rows, max_codes=1), lambda: services.answerer.retriever,
                      support=services.answerer.support)
    d = capped.ask("bounced twice: 550 5.1.1, then 552 5.2.2").to_dict()
    check_contract(d)
    assert d["limits"] == {"codes_found": 2, "codes_examined": 1, "recipients_found": d["limits"]["recipients_found"],
                           "recipients_examined": d["limits"]["recipients_examined"], "truncated": True}
    assert [n["kind"] for n in d["notices"]] == ["codes_capped"] and d["notices"][0]["text"] in d["answer"]
    d = services.answerer.ask("bounced twice: 550 5.1.1, then 552 5.2.2").to_dict()
    assert d["limits"]["codes_examined"] == 2 and d["notices"] == []


def test_search_down_is_a_notice_beside_the_codes(services):
    from app.answering.answerer import Answerer
    from app.errors import SearchUnavailable

    class Down:
        def search(self, *args, **kwargs):
            raise SearchUnavailable("the store did not answer within 2 s")

    d = Answerer(services.table, Down, support=services.answerer.support).ask("what is 550 5.7.26?").to_dict()
    check_contract(d)
    (n,) = d["notices"]
    assert n["kind"] == "search_unavailable" and "the store did not answer within 2 s" in n["text"]
    assert n["text"] in d["answer"] and d["codes"][0]["match"] == "none" and d["support"] is not None
