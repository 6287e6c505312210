"""The language-model mode's guard (app/answering/llm/guard.py), on its own: codes, refusals,
sentence support. The fake embedder stands in for the model (hashed bags of words)."""

from __future__ import annotations

import pytest

from app.answering.llm.guard import Guard, code_allowed, sentences
from app.codes.find import find_codes

from ..fakes import FakeEmbedder

ROW = ["The recipient’s mailbox is full and cannot receive new messages.",
       "Try again later or contact the customer through another channel."]


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard(FakeEmbedder().embed_documents)


def test_a_supported_answer_passes(guard):
    v = guard.check("The customer's mailbox is full, so it cannot receive new messages. "
                    "Try again later, or contact the customer through another channel.", ["552-5.2.2"], ROW)
    assert v.ok and v.interventions == [] and len(v.scores) == 2


@pytest.mark.parametrize("text,allowed", [
    ("552-5.2.2 means the mailbox is full.", ["552-5.2.2"]),
    ("Code 5.2.2 means the mailbox is full.", ["552-5.2.2"]),  # a part of the exact code
    ("A 552 reply means the mailbox is full.", ["552-5.2.2"]),
])
def test_the_exact_codes_and_their_parts_may_be_named(guard, text, allowed):
    assert [code_allowed(f, allowed) for f in find_codes(text)] == [True]


def test_an_invented_code_falls_back_and_is_named(guard):
    v = guard.check("The mailbox is full and cannot receive new messages; 550-5.9.9 says the same.",
                    ["552-5.2.2"], ROW)
    assert v.fallback == "unknown_code" and v.interventions == ["unknown_code:550-5.9.9"]


def test_an_untabled_code_may_not_be_named_even_from_the_question(guard):
    assert guard.check("550 5.7.26 means the sender failed authentication.", [], ROW).fallback == "unknown_code"


def test_an_unsupported_sentence_falls_back(guard):
    text = ("The mailbox is full and cannot receive new messages. "
            "Open Settings, choose Appearance and pick a new colour for the chat widget.")
    v = guard.check(text, ["552-5.2.2"], ROW)
    assert v.fallback == "unsupported_sentence"
    assert v.interventions == ["unsupported:Open Settings, choose Appearance and pick a new colour for t"]


def test_short_sentences_make_no_claim(guard):
    assert guard.check("Hi Anna,\n\nThe mailbox is full and cannot receive new messages.\n\nThanks!",
                       [], ROW).ok


@pytest.mark.parametrize("text", ["I don't know.", "I do not know: the article does not say.",
                                  "I'm not sure about that.", "The article does not mention pricing."])
def test_a_refusal_is_recognised(guard, text):
    assert guard.check(text, [], ROW).fallback == "refused"


def test_nothing_is_empty(guard):
    v = guard.check("  \n", [], ROW)
    assert v.fallback == "empty" and v.interventions == ["empty"]


def test_without_an_embedder_word_overlap_alone_decides():
    bare = Guard(None)
    assert bare.check("The recipient's mailbox is full and cannot receive new messages.", [], ROW).ok
    assert bare.check("Upgrade to the Pro plan for faster delivery today.", [], ROW).fallback == "unsupported_sentence"


def test_sentences_lose_list_markers_and_emphasis():
    assert sentences("**Try again later.** Then:\n- contact the customer\n2. wait") == [
        "Try again later.", "Then:", "contact the customer", "wait"]
