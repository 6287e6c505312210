"""Focused answers (app/answering/focus.py): the sentences and list items of a passage that
answer the question, verbatim, in the article's order, within a word budget.

Table-driven over the article's own passages (as the index cuts them): each section, a few
questions, the sentence that must lead the answer."""

from __future__ import annotations

import re

import pytest

from app.answering.focus import MAX_WORDS, focus, focus_many, units
from app.knowledge.articles import load_articles
from app.knowledge.chunks import chunk_articles

from ..conftest import KB


def _passages() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in chunk_articles(load_articles(KB), "any"):
        if c.metadata.get("kind") != "row":
            out.setdefault(c.metadata["section"], []).append(c.text)
    return out


PASSAGES = _passages()
INTRO, BOUNCE, STEPS, BEST, HELP = ("Introduction", "Email address is on a bounce list",
                                    "Troubleshooting message delivery failures",
                                    "Best practices to reduce delivery failures", "Need more help?")
STEP_ITEMS = ["1. Check whether the contact email address is correct.",
              "2. Confirm that the conversation is still active.",
              "3. Make sure your support email is connected and verified.",
              "4. Check whether your sending domain authentication is set up correctly.",
              "5. Try contacting the customer through another available channel."]
BOUNCE_CHECKS = ["- The email address is valid.", "- The mailbox is no longer full.",
                 "- The customer’s mail server is accepting messages.",
                 "- Your sending domain is authenticated correctly."]

# (section, which of its passages, question, what the focused text must contain, what it must not)
CASES = [
    (INTRO, 0, "where do these delivery errors even come from, is it our fault?",
     ["In most cases, these errors come from the customer’s email provider."], []),
    (INTRO, 0, "what does the failure note in the conversation actually tell me",
     ["SparrowDesk shows a delivery failure note inside the conversation.",
      "The note helps your team understand which email address could not receive the reply"], []),
    (INTRO, 0, "why was my reply rejected by the customer's mailbox?",
     ["This usually happens because the recipient’s email address, mailbox, or email provider rejected the message."],
     []),
    (INTRO, 1, "does a delivery failure reopen a closed convo?",
     ["Delivery failure notes do not reopen closed conversations automatically."], ["You can try sending"]),
    (INTRO, 1, "a reply I sent didn't go through, what are my options?",
     ["You can try sending the reply again later, contact the customer through another email address, "
      "or use another available channel."], []),
    (BOUNCE, 0, "how do I get an address off the bounce list?",
     ["Before requesting removal from a bounce list, make sure the original issue has been fixed. For example:",
      *BOUNCE_CHECKS], []),
    (BOUNCE, 0, "what needs to be fixed before I request bounce list removal",
     ["make sure the original issue has been fixed", *BOUNCE_CHECKS], []),
    (BOUNCE, 0, "why was this customer's address added to a suppression list",
     ["If an email address repeatedly fails with a permanent delivery error, it may be added to a bounce or "
      "suppression list."], ["- The email address is valid."]),
    (BOUNCE, 0, "why does a suppression list matter, is it about our sender reputation?",
     ["helps protect your email sending reputation"], []),
    (BOUNCE, 1, "the address is valid again, who can help us?",
     ["If you believe the address is valid and the issue has been resolved, contact SparrowDesk support for help."],
     []),
    (STEPS, 0, "a reply I sent didn't go through, what are my options?",
     ["first try sending the message again.", "If the error continues:", *STEP_ITEMS], []),
    (STEPS, 0, "reply failed, I resent it and it failed again. now what?",
     ["If the error continues:", *STEP_ITEMS], []),
    (STEPS, 0, "could the smtp connection on our support mailbox be why replies fail to send? what should i check on",
     ["3. Make sure your support email is connected and verified."], []),
    (BEST, 0, "tips to stop so many replies bouncing?",
     ["To improve email deliverability from SparrowDesk:", "- Use a verified support email address.",
      "- Ask customers to whitelist your support email if messages are being blocked."], []),
    (BEST, 0, "do we need SPF and DKIM?",
     ["To improve email deliverability from SparrowDesk:", "- Set up SPF and DKIM for your sending domain."], []),
    (HELP, 0, "what should I include when I email sparrowdesk support about a bounce",
     ["reach out to [email\xa0protected] with:", "- The conversation link", "- The time the message was sent"], []),
]


def pieces(text: str) -> list[str]:
    """Sentences and list lines, as a reader sees them."""
    out = []
    for line in text.split("\n"):
        out += [p for p in re.split(r"(?<=[.!?:])\s+(?=[\"“(\[]?[A-Z0-9])", line.strip()) if p]
    return out


def assert_verbatim_subsequence(focused: str, passage: str) -> None:
    """Each sentence or list line of ``focused`` is in ``passage`` as it is, whole (it ends where a
    sentence, a line or the passage ends), after the one before it."""
    at = 0
    for piece in pieces(focused):
        found = passage.find(piece, at)
        assert found >= 0, f"not in the passage (after {at}), or out of order: {piece!r}"
        end = found + len(piece)
        assert end == len(passage) or passage[end] in " \n" and (piece[-1] in ".!?:" or passage[end] == "\n"), \
            f"cut mid-sentence: {piece!r}"
        at = end


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("section,index,question,needed,unwanted", CASES,
                         ids=[f"{c[0][:12]}[{c[1]}]: {c[2][:40]}" for c in CASES])
def test_the_focused_text_is_the_articles_words_that_answer(section, index, question, needed, unwanted):
    passage = PASSAGES[section][index]
    focused = focus(question, passage)
    assert_verbatim_subsequence(focused, passage)
    assert words(focused) <= MAX_WORDS
    for text in needed:
        assert text in focused, f"{text!r} missing from:\n{focused}"
    for text in unwanted:
        assert text not in focused, f"{text!r} should not lead:\n{focused}"


def test_every_section_gets_something_verbatim_for_any_question():
    for section, passages in PASSAGES.items():
        for passage in passages:
            for question in ("help", "what does 550 mean", "¿qué pasos sigo?", "reply failed", ""):
                focused = focus(question, passage)
                assert focused.strip(), (section, question)
                assert_verbatim_subsequence(focused, passage)
                assert words(focused) <= MAX_WORDS


def test_it_focuses_the_long_introduction():
    whole = "\n\n".join(PASSAGES[INTRO])
    assert words(whole) > 120
    focused = focus("where do these delivery errors even come from, is it our fault?", whole)
    assert words(focused) < words(whole) / 3
    assert "In most cases, these errors come from the customer’s email provider." in focused


def test_a_list_of_steps_is_kept_whole_with_its_lead_in():
    passage = PASSAGES[STEPS][0]
    focused = focus("a reply I sent didn't go through, what are my options?", passage)
    assert "If the error continues:\n\n" + "\n".join(STEP_ITEMS) in focused  # the list as the article has it


def test_a_list_over_the_budget_keeps_its_lead_in_and_the_first_items_that_fit():
    passage = PASSAGES[STEPS][0]
    focused = focus("what are the steps if the error continues?", passage, max_words=30)
    assert focused.startswith("If the error continues:") or "If the error continues:" in focused
    assert STEP_ITEMS[0] in focused and STEP_ITEMS[-1] not in focused
    assert words(focused) <= 30
    assert_verbatim_subsequence(focused, passage)


def test_one_sentence_longer_than_the_budget_comes_whole():
    long_sentence = "Delivery " + " ".join(["failures"] * 150) + " happen."
    passage = f"{long_sentence} Another short sentence about nothing."
    focused = focus("why do delivery failures happen", passage, max_words=20)
    assert focused == long_sentence


def test_a_sentence_that_leans_back_brings_the_one_before():
    passage = PASSAGES[BOUNCE][0]
    focused = focus("what protects our sending reputation?", passage)
    assert "This prevents future emails" in focused
    assert "it may be added to a bounce or suppression list. This prevents" in focused


def test_a_table_is_never_cut():
    table = "| Error code | What it means |\n| --- | --- |\n| 550 | A general delivery failure. |"
    passage = f"Here are the codes.\n\n{table}\n\nSomething else entirely."
    focused = focus("what does a general delivery failure mean", passage)
    assert table in focused


def test_nothing_in_common_gives_the_passages_lead():
    passage = PASSAGES[INTRO][0]
    focused = focus("zzz qqq", passage)
    assert passage.startswith(focused.split("\n\n")[0])
    assert words(focused) <= MAX_WORDS


def test_an_injected_embedding_decides_where_words_do_not():
    """No word of the question is in the passage: the embedding function picks the sentence."""
    passage = "Alpha sentence here. Bravo sentence here. Charlie sentence here."
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return [[1.0, 0.0] if ("Bravo" in t or t == "question") else [0.0, 1.0] for t in texts]

    assert focus("question", passage, embed=embed) == "Bravo sentence here."
    assert calls == [["question", "Alpha sentence here.", "Bravo sentence here.", "Charlie sentence here."]]
    assert focus("question", passage).startswith("Alpha sentence here.")  # without one: the lead


def test_focus_many_shares_the_budget_and_never_cuts_a_later_list():
    question = "a reply I sent didn't go through, what are my options?"
    texts = [PASSAGES[INTRO][0], PASSAGES[INTRO][1], PASSAGES[STEPS][0]]
    out = focus_many(question, texts)
    assert len(out) == 3 and all(o.strip() for o in out)
    for o, t in zip(out, texts):
        assert_verbatim_subsequence(o, t)
    assert sum(map(words, out)) < sum(map(words, texts))
    assert "You can try sending the reply again later" in out[1]
    assert "\n".join(STEP_ITEMS) in out[2]


def test_units_are_the_passages_own_text():
    for passages in PASSAGES.values():
        for passage in passages:
            us, kinds = units(passage)
            assert us and len(kinds) == len(re.split(r"\n\s*\n", passage.strip()))
            for u in us:
                assert u.text in passage


@pytest.mark.parametrize("passage", ["Only people with the Team lead role see this option.",
                                     "- Open Settings and click Save."])
def test_a_passage_of_one_unit_is_not_embedded(passage):
    # nothing to choose between: the embedding could not change what is quoted (at 10,000 articles
    # such passages were embedded on every first meeting, milliseconds each)
    calls = []

    def embed(texts):
        calls.append(texts)
        return [[1.0, 0.0]] * len(texts)

    assert focus("who can change this option", passage, embed=embed) == focus("who can change this option", passage)
    assert calls == []
