"""The language-model door for real: the verified Qwen2.5-Coder-1.5B GGUF in-process through
xllamacpp (``BOUNCEBOT_LLM=local``), and LangChain's ``ChatOpenAI`` against an OpenAI-compatible
server on loopback over the same file (``BOUNCEBOT_LLM=openai``). Short generations only.

`make test` installs the model (`make llm`); these tests skip only where it cannot be installed,
and fail instead when CI is set."""

from __future__ import annotations

import importlib.util
import os
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from app.llm.door import make_chat_model, warm
from app.errors import LLMFailed, ModelNotInstalled
from app.llm.settings import LLMSettings

from ..conftest import KB, run_coroutine
from ..servers import OpenAICompatibleServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings() -> LLMSettings:
    from app.llm.model_file import ensure_model

    settings = LLMSettings.from_env().with_(threads=1, timeout=120.0)
    try:
        missing = [name for name in ("xllamacpp", "langchain_openai") if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelNotInstalled(f"{' and '.join(missing)} not installed.")
        ensure_model(settings.model_cache)
    except ModelNotInstalled as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the LLM tests, but the local model is not installed: {e}")
        pytest.skip(f"the local model cannot be installed here ({e}); `make llm` installs it")
    return settings


@pytest.fixture(scope="module")
def local(settings):
    from app.llm import runtime

    yield make_chat_model(settings.with_(mode="local"), max_tokens=40).load()
    runtime.unload_all()


@pytest.fixture(scope="module")
def grounded() -> list:
    """The 552-5.2.2 row, verbatim from the article, and the question about it."""
    from app.knowledge.articles import load_articles

    row = next(r for a in load_articles(KB) for r in a.rows if r.code == "552-5.2.2")
    return [SystemMessage("Answer from this row of the help-centre article only, in one sentence.\n"
                          "| Error code | What it means | What you can do |\n"
                          f"| {row.code} | {row.meaning} | {row.action} |"),
            HumanMessage("What does 552-5.2.2 mean?")]


def says_the_mailbox_is_full(text: str) -> bool:
    text = text.lower()
    return "mailbox" in text and "full" in text


def test_the_local_model_answers_a_grounded_question(local, grounded):
    answer = local.invoke(grounded)
    assert says_the_mailbox_is_full(answer.content), answer.content
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    assert 0 < answer.usage_metadata["output_tokens"] <= 40


def test_the_local_model_streams_token_by_token(local, grounded):
    chunks = [c.content for c in local.stream(grounded, max_tokens=12) if c.content]
    assert len(chunks) > 1 and "".join(chunks).strip()

    async def collect():
        return [c.content async for c in local.astream(grounded, max_tokens=12) if c.content]

    assert len(run_coroutine(collect())) > 1


def test_the_warmed_prefix_is_reused_so_a_question_pays_for_its_own_tokens(local):
    prefix = [SystemMessage("You answer questions about bounced email replies. This prefix is the "
                            "fixed part of every prompt in this test: its KV cache is computed once.")]
    question = [*prefix, HumanMessage("Say yes.")]
    computed = local.warm(prefix, saved=False)
    assert computed["source"] == "computed" and computed["computed"] > 30
    timings = local.invoke(question, max_tokens=3).response_metadata["timings"]
    assert timings["cache_n"] >= computed["prefix_tokens"] - 8  # all but the warm-up's own end-of-turn tokens
    assert timings["prompt_n"] < 16

    local.invoke([HumanMessage("Say no.")], max_tokens=2)  # the slot now holds another prompt
    restored = warm(local, prefix)  # what a later start-up does: the file the first warm saved
    assert restored["source"] == "saved" and restored["prefix_tokens"] == computed["prefix_tokens"]
    assert restored["seconds"] < computed["seconds"]
    timings = local.invoke(question, max_tokens=3).response_metadata["timings"]
    assert timings["cache_n"] >= computed["prefix_tokens"] - 8 and timings["prompt_n"] < 16


def test_a_timeout_stops_the_answer_and_the_model_goes_on_serving(local, grounded):
    impatient = local.model_copy(update={"timeout": 0.2, "max_tokens": 200})
    start = time.monotonic()
    with pytest.raises(LLMFailed) as e:
        impatient.invoke([HumanMessage("Write a long story about a mailbox.")])
    assert e.value.timed_out and "BOUNCEBOT_LLM_TIMEOUT" in str(e.value)
    assert time.monotonic() - start < 2
    assert local.invoke(grounded, max_tokens=5).content


def test_the_openai_door_answers_through_a_loopback_server(settings, grounded):
    with OpenAICompatibleServer(settings.model_cache) as server:
        model = make_chat_model(settings.with_(mode="openai", url=server.base_url), max_tokens=40)
        warmed = warm(model, grounded[:1])
        answer = model.invoke(grounded)
        assert says_the_mailbox_is_full(answer.content), answer.content
        assert 0 < answer.usage_metadata["output_tokens"] <= 40
        assert answer.usage_metadata["input_token_details"]["cache_read"] >= warmed["prefix_tokens"] - 8
        chunks = [c.content for c in model.stream(grounded, max_tokens=12) if c.content]
        assert len(chunks) > 1
