"""The answer contract in default mode (no language model), end to end over
the real index."""

from __future__ import annotations

import pytest

from app.errors import EmptyQuestion, QuestionTooLong

from ..unit.test_kb_source import seed_table

pytestmark = pytest.mark.slow

SEED_ROWS = {code: (meaning, action) for code, meaning, action in seed_table()[1]}


def check_contract(d: dict) -> None:
    assert set(d) >= {"question", "answer", "answered", "codes", "sources"}
    assert isinstance(d["question"], str) and isinstance(d["answer"], str) and isinstance(d["answered"], bool)
    for c in d["codes"]:
        assert set(c) >= {"text", "code", "match", "row", "severity", "explanation", "related", "reason"}
        assert c["match"] == "none" or (c["explanation"] is None and c["related"] == [])
        assert c["match"] in ("exact", "none")
        assert c["severity"] in ("permanent", "temporary", "success", "unknown")
        assert (c["row"] is not None) == (c["match"] == "exact")
        if c["row"]:
            assert set(c["row"]) == {"code", "meaning", "action"}
    for s in d["sources"]:
        assert set(s) >= {"article", "section", "url", "text", "score"}
        assert isinstance(s["score"], float) and s["url"].startswith("https://")


@pytest.mark.parametrize("code", sorted(SEED_ROWS))
def test_exact_code_answer_quotes_the_row_verbatim(answerer, code):
    d = answerer.ask(f"customer reply bounced with {code}, what now?").to_dict()
    check_contract(d)
    (c,) = d["codes"]
    meaning, action = SEED_ROWS[code]
    assert c["row"] == {"code": code, "meaning": meaning, "action": action}
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
    ["How much does SparrowDesk cost per seat?", "hi, how are you today?", "What's the weather in Paris?",
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
