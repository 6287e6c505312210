"""The follow-up's topic found by lookup (Conversation._candidates) is the one a scan of every
section finds: the same first section for any earlier answer, whatever it quotes or links."""

from __future__ import annotations

import random

import pytest

from app.answering.conversation import Conversation
from app.codes.table import CodeTable

from ..fakes import kb_articles


def scan(conv: Conversation, answer: str):
    """The topic's section as _topic found it before the lookup: every section, in order."""
    for a, s, _, sentences in conv._sections:
        url = a.section_url(s)
        if (url != a.url and f"({url})" in answer) or any(x in answer for x in sentences):
            return s.heading
    return None


def answers(conv: Conversation) -> list[str]:
    rng = random.Random(14)
    sentences = [x for _, _, _, xs in conv._sections for x in xs]
    urls = [a.section_url(s) for a, s, _, _ in conv._sections]
    out = ["", "Thanks!", "no link here (none)", "(" + urls[0] + ")", "see [it](" + urls[-1] + ") now"]
    for _ in range(300):
        parts = rng.sample(sentences, rng.randint(0, 2)) + rng.sample(urls, rng.randint(0, 1))
        parts = [f"> {p}" if rng.random() < 0.5 else f"[x]({p})" if p in urls else p for p in parts]
        noise = rng.choice(["", "Hello. ", "word", "550 5.1.1 means "])
        cut = rng.random() < 0.3 and parts
        text = noise + "\n\n".join(parts)
        out.append(text[: max(1, len(text) - rng.randint(1, 15))] if cut else text)  # a quote cut short
    return out


@pytest.fixture(scope="module")
def conversation():
    articles = kb_articles()
    return Conversation(CodeTable.from_articles(articles), articles)


def test_the_lookup_finds_the_scans_section_for_every_answer(conversation):
    found = 0
    for answer in answers(conversation):
        got = conversation._topic(answer)
        assert (got.section.heading if got else None) == scan(conversation, answer), answer
        found += got is not None
    assert found > 150  # most of them quote or link a section: the test compares topics, not Nones


def scan_named(conv: Conversation, words: list[str]):
    """The section _names_section found before the heading lookup: the first whose heading holds two words."""
    from app.answering.cues import stem

    stems = {stem(w) for w in words}
    for a, s, heading, _ in conv._sections:
        if len(set(heading) & stems) >= 2:
            return a, s
    return None


def word_lists(conv: Conversation) -> list[list[str]]:
    from app.answering.cues import pad

    rng = random.Random(15)
    heading_words = sorted({w for _, s, _, _ in conv._sections for w in pad(s.heading).split()})
    other = ["bounce", "reply", "customer", "the", "failed", "mailbox", "zebra", "addresses", "spf", "lists"]
    out = [[], ["bounce"], heading_words[:1], heading_words[:2]]
    for _ in range(300):
        words = rng.sample(heading_words, rng.randint(0, 3)) + rng.sample(other, rng.randint(0, 3))
        rng.shuffle(words)
        out.append(words + words[:1])  # a word said twice counts once
    return out


def test_the_heading_lookup_names_the_scans_section_for_every_message(conversation):
    named = 0
    for words in word_lists(conversation):
        got = conversation._names_section(words)
        want = scan_named(conversation, words)
        assert (got[1].heading if got else None) == (want[1].heading if want else None), words
        assert got is None or got[0] is want[0]
        named += got is not None
    assert named > 50  # many name a section: the test compares sections, not Nones
