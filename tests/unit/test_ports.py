"""The injected parts' Protocols (``app.answering.ports``) describe the real
implementations: each member a Protocol names exists on its implementation,
a method with the same parameters (names, order, defaults)."""

from __future__ import annotations

import inspect

import pytest

from app.answering import ports


def members(protocol: type) -> dict[str, object]:
    """What a Protocol asks for: its methods and properties, and its annotated attributes."""
    found = {n: v for n, v in vars(protocol).items()
             if (not n.startswith("_") or n == "__len__") and (callable(v) or isinstance(v, property))}
    found.update({n: None for n in vars(protocol).get("__annotations__", {})})
    return found


def implementations():
    from app.search.embeddings import Embedder
    from app.search.retrieval import HybridRetriever
    from app.web.feedback import FeedbackLog

    return [(ports.Embedder, Embedder), (ports.Retriever, HybridRetriever), (ports.FeedbackLog, FeedbackLog)]


INSTANCE_ATTRIBUTES = {"collection", "name"}  # set in __init__ (the embedder's name depends on its precision)


@pytest.mark.parametrize("protocol,cls", implementations(), ids=lambda x: x.__qualname__)
def test_the_implementation_has_what_the_protocol_names(protocol, cls):
    asked = members(protocol)
    assert asked, protocol
    for name, want in asked.items():
        if name in INSTANCE_ATTRIBUTES:
            assert name in inspect.getsource(cls.__init__), f"{cls.__name__}.{name}"
            continue
        assert hasattr(cls, name), f"{cls.__name__} has no {name}"
        got = inspect.getattr_static(cls, name)
        if isinstance(want, property):
            assert isinstance(got, property), f"{cls.__name__}.{name} is not a property"
        elif callable(want):
            w, g = inspect.signature(want).parameters, inspect.signature(got).parameters
            assert [(p.name, p.default) for p in w.values()] == [(p.name, p.default) for p in g.values()], \
                f"{cls.__name__}.{name}{inspect.signature(got)} is not {name}{inspect.signature(want)}"


def test_the_protocols_are_the_issue_s():
    assert set(members(ports.Embedder)) == {"name", "loaded", "load", "embed_query", "embed_documents"}
    assert set(members(ports.Retriever)) == {"search", "__len__", "collection"}
    assert set(members(ports.FeedbackLog)) == {"add", "count", "all", "problem"}
