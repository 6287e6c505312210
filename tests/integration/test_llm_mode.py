"""The language-model mode for real: the verified local GGUF in-process (``BOUNCEBOT_LLM=local``)
and an OpenAI-compatible server on loopback over the same file (``openai``), on the real
services. Few, short generations; the guard either keeps the model's text or falls back
honestly, and the table's row is verbatim either way.

`make test` installs the model (`make llm`); these tests skip only where it cannot be installed,
and fail instead when CI is set."""

from __future__ import annotations

import pytest

from app.answering.services import with_llm
from app.answering.llm.guard import code_allowed
from app.answering.llm.prompt import exact_codes
from app.codes.find import find_codes

from ..servers import OpenAICompatibleServer
from .test_llm_door import settings as door_settings  # noqa: F401  (the door's check that the model is installed)

pytestmark = pytest.mark.slow
QUESTION = "What does 552-5.2.2 mean?"


@pytest.fixture(scope="module")
def llm_settings(services, door_settings):
    """The services' settings with the local model on (skipped, or failed under CI, when it is not installed)."""
    return services.settings.with_(llm=door_settings.with_(mode="local", threads=1, timeout=60.0))


@pytest.fixture(scope="module")
def local(services, llm_settings):
    """The services' answerer in llm mode, as build() makes it: the model made and its prefix warmed."""
    from app.llm import runtime

    yield with_llm(llm_settings, services.answerer, services.embedder)
    runtime.unload_all()


def consistent(answer, default) -> None:
    """The row is verbatim and the codes are the default mode's; mode and llm agree with each other."""
    assert answer.codes == default.codes
    for c in default.codes:
        if c.row:
            assert c.row.meaning in answer.answer and c.row.action in answer.answer
    r = answer.llm
    assert r is not None and r.model
    if answer.mode == "llm":
        assert r.used and r.fallback is None and r.generated and answer.answer.startswith(r.generated)
        assert all(code_allowed(f, exact_codes(answer)) for f in find_codes(r.generated))  # no false exact claim
    else:
        assert not r.used and r.fallback in (None, "timeout", "server_error", "unknown_code",
                                             "unsupported_sentence", "refused", "empty")


def test_a_code_question_is_answered_in_llm_mode_with_the_row_verbatim(local, services):
    events = list(local.stream_ask(QUESTION))
    assert events[0]["type"] == "answer_skeleton" and events[-1]["type"] == "final"
    assert any(e["type"] == "token" for e in events)
    answer = local.ask(QUESTION)
    consistent(answer, services.answerer.ask(QUESTION))
    assert answer.llm.ttft_s is not None and answer.llm.total_s < 60


def test_an_off_topic_question_ends_refused(local):
    answer = local.ask("How do I change the colour of the chat widget?")
    assert not answer.answered and "I don't know" in answer.answer
    assert answer.mode == "default" and not answer.llm.used


def test_the_openai_door_answers_through_the_same_guard(services, llm_settings):
    with OpenAICompatibleServer(llm_settings.llm.model_cache) as server:
        settings = llm_settings.with_(llm=llm_settings.llm.with_(mode="openai", url=server.base_url))
        answerer = with_llm(settings, services.answerer, services.embedder)
        answer = answerer.ask(QUESTION)
        consistent(answer, services.answerer.ask(QUESTION))
        assert answer.llm.fallback not in ("server_error", "timeout"), answer.llm
