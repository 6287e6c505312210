"""The fakes the fast tests stand on: deterministic, the real interface, and
no model behind them."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import pytest

from app.errors import SearchUnavailable
from app.search.embeddings import Embedder

from ..conftest import ROOT
from ..fakes import (FakeEmbedder, FakeFeedbackLog, FakeOtherArticles, FakeRetriever, chunk, cosine, fake_services,
                     hit, kb_chunks, result)


def test_importing_the_fakes_and_building_services_on_them_loads_no_model():
    """In a process of its own: the whole suite may have loaded the model already."""
    code = (
        "import sys, tempfile\n"
        "from tests.fakes import FakeEmbedder, FakeRetriever, fake_services, services_with\n"
        "s = fake_services(tempfile.mkdtemp())\n"
        "d = s.answerer.ask('How do I get an address off the bounce list?').to_dict()\n"
        "s.answerer.ask('What does 550 5.1.1 mean?')\n"
        "services_with(s, FakeRetriever()).answerer.ask('what is 550 5.7.26?')\n"
        "assert d['answered'], d\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'transformers', 'sentence_transformers', "
        "'tokenizers') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"imported with the fakes: {out.stdout.strip()}"


def test_the_fake_embedder_has_the_real_interface():
    for name in ("name", "load", "loaded", "embed_query", "embed_documents"):
        assert hasattr(FakeEmbedder, name), name
    real = inspect.signature(Embedder.embed_documents).parameters
    fake = inspect.signature(FakeEmbedder.embed_documents).parameters
    assert list(fake) == list(real) and fake["progress"].default is False
    e = FakeEmbedder()
    assert e.loaded is False and e.load() is e and e.loaded is True
    assert e.embed_documents([]) == []


@pytest.mark.parametrize("port,fake", [("Embedder", FakeEmbedder), ("Retriever", FakeRetriever),
                                       ("FeedbackLog", FakeFeedbackLog)])
def test_each_fake_offers_what_its_port_names(port, fake):
    """``app.answering.ports``: the same members, methods with the same parameters and defaults."""
    from app.answering import ports

    protocol = getattr(ports, port)
    asked = {n: v for n, v in vars(protocol).items()
             if (not n.startswith("_") or n == "__len__") and (callable(v) or isinstance(v, property))}
    attributes = set(vars(protocol).get("__annotations__", {}))
    instance = fake()
    for name in attributes:
        assert hasattr(instance, name), f"{fake.__name__}.{name}"
    for name, want in asked.items():
        got = inspect.getattr_static(fake, name)
        if isinstance(want, property):
            assert isinstance(got, property), f"{fake.__name__}.{name} is not a property"
        else:
            w, g = inspect.signature(want).parameters, inspect.signature(got).parameters
            assert [(p.name, p.default) for p in w.values()] == [(p.name, p.default) for p in g.values()], name


def test_vectors_are_deterministic_normalised_and_similar_for_similar_texts():
    a, b = FakeEmbedder(), FakeEmbedder()
    texts = ["The recipient's mailbox is full", "mailbox full, what now?", "What's the weather in Paris?", ""]
    va, vb = a.embed_documents(texts), b.embed_documents(texts, progress=True)
    assert va == vb and a.embed_query(texts[0]) == va[0]
    assert all(len(v) == a.dimension and math.isclose(math.fsum(x * x for x in v), 1.0) for v in va)
    assert cosine(va[0], va[1]) > 0.5 > abs(cosine(va[0], va[2]))
    assert a.documents == 8 - 4 and a.queries == [texts[0]]


def test_a_pinned_question_sits_at_an_exact_similarity():
    e = FakeEmbedder()
    target = "Email address is on a bounce list"
    e.pin("zzz", e.vector_at(target, 0.42))
    assert math.isclose(cosine(e.embed_query("zzz"), e.vector(target)), 0.42, abs_tol=1e-9)
    for other in ("Need more help?", "The mailbox is full"):  # the rest of it is orthogonal to every text
        assert math.isclose(cosine(e.embed_query("zzz"), e.vector(other)),
                            0.42 * cosine(e.vector(target), e.vector(other)), abs_tol=1e-9)
    toward = e.vector_at(target, 0.3, toward="Single Sign-On")
    assert math.isclose(cosine(toward, e.vector(target)), 0.3, abs_tol=1e-9)
    assert cosine(toward, e.vector("Single Sign-On")) > 0.9
    e.unpin("zzz")
    assert e.embed_query("zzz") == list(e.vector("zzz"))


def test_services_on_fakes_are_the_real_pipeline_over_the_real_kb(tmp_path):
    s = fake_services(tmp_path)
    assert len(s.answerer.retriever) == len(kb_chunks())
    assert s.embedder.loaded and s.embedder.documents > 0
    d = s.answerer.ask("How do I get an address off the bounce list?").to_dict()
    assert d["answered"] and d["sources"][0]["section"] == "Email address is on a bounce list"


def test_the_fake_retriever_answers_what_it_is_told_and_keeps_the_calls():
    row, section = chunk(code="552-5.2.2"), chunk("Need more help?")
    r = FakeRetriever([hit(row, 0.7), hit(section, 0.5)])
    got = r.search("q", k=3, kinds=("section",))
    assert [h.id for h in got.hits] == [section.id] and got.best_similarity == 0.5 and len(got.vector) == r.embedder.dimension
    assert r.search("q", k=1).best_similarity == 0.7
    assert r.calls == [("q", 3, ("section",)), ("q", 1, None)]
    assert FakeRetriever(result([], best_similarity=0.9)).search("q").best_similarity == 0.9
    with pytest.raises(SearchUnavailable):
        FakeRetriever(SearchUnavailable("down")).search("q")
    assert FakeOtherArticles("Single Sign-On", 0.6).closest(got.vector) == ("Single Sign-On", 0.6)


def test_the_fake_feedback_log_keeps_posts_and_can_fail():
    log = FakeFeedbackLog()
    assert log.add("down", "q", "a", "c", False, [1], []) == 1 and log.count() == 1 and log.problem() is None
    assert log.all("down")[0].comment == "c" and log.all("up") == []
    broken = FakeFeedbackLog(fail_with=RuntimeError("disk gone"))
    with pytest.raises(RuntimeError):
        broken.add("up", "q", "a")
    assert broken.count() == 0 and broken.problem() == "disk gone"
