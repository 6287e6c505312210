"""The text side of retrieval, without a model: language detection, spelling
fixes against the knowledge base's words, and the article's synonyms."""

from __future__ import annotations

import pytest

from app.search.retrieval import QueryVector, Spelling, Synonyms, _distance, e5_on_minilm_scale, language, tokenize


@pytest.mark.parametrize(
    "text,lang",
    [
        ("how do I get an address off the bounce list?", "en"),
        ("what is 550-5.1.1", "en"),
        ("thanks!!", "en"),
        ("¿Cómo saco una dirección de la lista de rebotes?", "es"),
        ("Wie entferne ich eine Adresse von der Bounce-Liste?", "de"),
        ("comment retirer une adresse de la liste de rebonds ?", "fr"),
        ("o endereço de email do cliente não existe mais", "pt"),
        ("un errore di consegna riapre una conversazione chiusa?", "it"),
        ("customer says the reply came back, what do I do with the note in the conversation", "en"),
    ],
)
def test_language(text, lang):
    assert language(text) == lang


@pytest.mark.parametrize("a,b,d", [("bounse", "bounce", 1), ("mesage", "message", 1), ("adress", "address", 1),
                                   ("form", "from", 1), ("troublshooting", "troubleshooting", 1),
                                   ("delivry", "delivery", 1), ("abc", "xyz", 3)])
def test_distance(a, b, d):
    assert _distance(a, b, 3) == d


KB = [tokenize("Email address is on a bounce list. Troubleshooting message delivery failures. "
               "Check whether the contact email address is correct. Best practices to reduce delivery failures.")]


@pytest.mark.parametrize(
    "text,fixed",
    [
        ("bonce list removal", "bounce list removal"),
        ("troublshooting a failed mesage", "troubleshooting a failed message"),
        ("Wrong ADRESS on 550-5.1.1", "Wrong address on 550-5.1.1"),
        ("slack colour", "slack colour"),  # real words stay as typed
        ("bounces and messages", "bounces and messages"),  # inflections of known words stay
        ("the ful box", "the ful box"),  # too short to guess
    ],
)
def test_spelling_fixes_only_unknown_words(text, fixed):
    spelling = Spelling(KB, known=frozenset({"slack", "colour", "wrong", "and", "the", "box"}))
    assert spelling.fix(text) == fixed


def test_synonyms_add_the_articles_words_once():
    s = Synonyms.load()
    assert s.expand("what does the suppression list do?") == "what does the suppression list do? (bounce list)"
    assert s.expand("how can our team cut down on bounces?").endswith("(reduce delivery failures)")
    assert s.expand("the reply bounced, how do I merge two conversations") == (
        "the reply bounced, how do I merge two conversations")  # a bounce alone is not expanded
    assert s.expand("bounce list removal") == "bounce list removal"


def test_multilingual_scale_and_vector_space():
    from app.search import retrieval

    assert e5_on_minilm_scale(retrieval.E5_FLOOR) == pytest.approx(retrieval.REFERENCE_FLOOR)
    assert e5_on_minilm_scale(retrieval.E5_FLOOR + 0.05) == pytest.approx(0.33 + 0.05 * retrieval.E5_SCALE)
    v = QueryVector([0.1, 0.2], "multilingual")
    assert v.space == "multilingual" and list(v) == [0.1, 0.2] and QueryVector([1.0]).space == "minilm"
