"""The lexical build cuts and numbers each distinct passage once (``app.search.lexical.build``): the
index it writes must be the one ``document_tokens`` gives document by document, whatever the text."""

from __future__ import annotations

import numpy as np
import pytest

from app.search import lexical

# (text, metadata): texts whose tokens could run across the blank line if cutting were not local
CASES = [
    ("Try again later.", {"heading_path": "Article > Section"}),
    ("5.7.1 is a code", {"heading_path": "Codes 550"}),  # a code at the join
    (".1 after a number", {"heading_path": "Heading 5"}),
    ("'s after a word", {"heading_path": "Customer"}),
    ("ΣΑΣ lower-cased", {"heading_path": "ΟΔΟΣ"}),  # final sigma, on both sides
    ("İstanbul office", {"heading_path": "İ"}),  # a capital that lower-cases to two characters
    ("", {"heading_path": "Only a heading"}),
    ("Only a passage", {}),
    ("No metadata", None),
    ("A heading of None", {"heading_path": None}),
    (None, {"heading_path": "A passage of None"}),
    ("the and of", {"heading_path": "is are"}),  # stop words only
]


def _same(docs):
    fast = lexical.build(docs)
    plain = lexical.build(docs, tokenize_doc=lambda t, m: lexical.document_tokens(t, m))
    assert fast[1] == plain[1] and fast[2] == plain[2]  # terms (in order) and the figures
    assert fast[0].keys() == plain[0].keys()
    for k in fast[0]:
        assert np.array_equal(fast[0][k], plain[0][k], equal_nan=fast[0][k].dtype.kind == "f"), k


@pytest.mark.parametrize("text, metadata", CASES)
def test_each_text_gives_document_tokens_terms(text, metadata):
    other = ("later again: 5.7.1 customer", {"heading_path": "Another > Heading"})
    # the text alone, after another, and twice (its ids from the memo the second time)
    _same([("a", text, metadata)])
    _same([("b", *other), ("a", text, metadata), ("c", text, {"heading_path": "Other"}), ("d", text, metadata)])


def test_an_index_built_with_the_memo_is_the_index_built_without_it():
    from ..conftest import KB
    from app.knowledge.articles import load_articles
    from app.knowledge.chunks import chunk_articles

    chunks = chunk_articles(load_articles(KB), "fake")
    docs = [(c.id, c.text, c.metadata) for c in chunks] * 3  # the same passages again, as copies hold them
    _same([(f"{i}-{d[0]}", d[1], {**d[2], "heading_path": f"Copy {i % 2} > {d[2].get('heading_path')}"})
           for i, d in enumerate(docs)])
