"""The language-model mode's policy (app/answering/llm/mode.py) with a scripted chat model: the
default answer decides, the model's text is kept only past the guard, every failure falls back
to the default answer, marked. Real services on the fake embedder; no model, no server."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from app.answering.llm.mode import LLMAnswerer
from app.answering.services import build, with_llm
from app.errors import LLMFailed

from ..conftest import ROOT
from ..fakes import FakeEmbedder, fake_services, kb_rows, wording

W = wording()["llm"]
ROW = kb_rows()["552-5.2.2"]  # (meaning, action)
GOOD = "The customer's mailbox is full, so it cannot receive new messages. Try again later or use another channel."


class Scripted(BaseChatModel):
    """Replies in order, word by word: a text, an exception to raise, or ``(seconds, text)`` to stall first."""

    replies: list = []
    prompts: list = []
    options: list = []  # the stop sequences and options each call was given

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _stream(self, messages, stop=None, run_manager=None, **kwargs: Any):
        self.prompts.append(messages)
        self.options.append({"stop": stop, **kwargs})
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        delay, text = reply if isinstance(reply, tuple) else (0.0, reply)
        for piece in re.findall(r"\S+\s*|\s+", text):
            time.sleep(delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        text = "".join(c.text for c in self._stream(messages, stop, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("llm_mode_index"))


@pytest.fixture
def model() -> Scripted:
    return Scripted(replies=[], prompts=[], options=[])


@pytest.fixture
def llm(base, model) -> LLMAnswerer:
    answerer = with_llm(base.settings.with_(llm=base.settings.llm.with_(timeout=1.0)), base.answerer, base.embedder,
                        model)
    return dataclasses.replace(base, answerer=answerer).answerer


def marked(reason: str) -> str:
    return W["fallback"].format(why=W["fallback_reasons"][reason])


def test_a_good_answer_is_kept_above_the_row_verbatim(llm, model, base):
    model.replies = [GOOD]
    answer = llm.ask("What does 552-5.2.2 mean?")
    default = base.answerer.ask("What does 552-5.2.2 mean?")
    assert answer.mode == "llm" and answer.llm.used and answer.llm.fallback is None
    assert answer.llm.generated == GOOD and answer.llm.interventions == []
    assert answer.answer == f"{GOOD}\n\n{default.answer}"  # the row follows, as the default mode shows it
    assert ROW[0] in answer.answer and ROW[1] in answer.answer
    assert answer.codes == default.codes and answer.sources == default.sources
    assert answer.llm.ttft_s is not None and answer.llm.total_s >= answer.llm.ttft_s
    prompt = model.prompts[0][-1].content
    assert "552-5.2.2" in prompt and prompt.endswith("What does 552-5.2.2 mean?")
    assert ROW[0] in prompt and ROW[1] in prompt  # the cited row's two sentences: what the lead must state
    assert model.options[0]["stop"] == ["\n\n"] and model.options[0]["max_tokens"] == 96  # a lead: one paragraph


def test_an_invented_code_falls_back_marked(llm, model, base):
    model.replies = ["The mailbox is full and cannot receive new messages, as 550-5.9.9 also says."]
    answer = llm.ask("What does 552-5.2.2 mean?")
    assert answer.mode == "default" and not answer.llm.used and answer.llm.fallback == "unknown_code"
    assert answer.llm.interventions == ["unknown_code:550-5.9.9"] and "550-5.9.9" in answer.llm.generated
    assert answer.answer == marked("unknown_code") + "\n\n" + base.answerer.ask("What does 552-5.2.2 mean?").answer


def test_an_unsupported_sentence_falls_back(llm, model):
    model.replies = ["The mailbox is full. Open Settings, choose Appearance and pick a new colour for the widget."]
    answer = llm.ask("What does 552-5.2.2 mean?")
    assert answer.llm.fallback == "unsupported_sentence" and answer.mode == "default"
    assert answer.llm.interventions[0].startswith("unsupported:Open Settings")
    assert answer.answer.startswith(marked("unsupported_sentence")) and ROW[0] in answer.answer


@pytest.mark.parametrize("question", ["How do I get an address off the bounce list?",
                                      "does a failure note reopen a closed conversation?",
                                      "her mailbox is full, what can I do?"])
def test_a_refusal_keeps_the_default_answer_marked(llm, model, base, question):
    # Measured on dev: where the default mode answered with passages, the model's refusals were
    # mostly of answerable questions; so a refusal never turns an answer into a refusal (mode.py).
    default = base.answerer.ask(question)
    assert default.answered and default.sources
    model.replies = ["I don't know."]
    answer = llm.ask(question)
    assert answer.llm.fallback == "refused" and answer.llm.interventions == ["refused"] and not answer.llm.used
    assert answer.mode == "default" and answer.answered and answer.sources == default.sources
    assert answer.answer == marked("refused") + "\n\n" + default.answer


def test_a_refusal_with_an_exact_row_keeps_the_row(llm, model):
    model.replies = ["I don't know."]
    answer = llm.ask("What does 552-5.2.2 mean?")
    assert answer.llm.fallback == "refused" and answer.answered and ROW[0] in answer.answer


def test_a_timeout_falls_back_marked(llm, model):
    model.replies = [(0.3, "The mailbox is full and it cannot take any new messages at all now.")]
    start = time.monotonic()
    answer = llm.ask("What does 552-5.2.2 mean?")
    assert time.monotonic() - start < 1.5  # the 1 s timeout, not the model's 4 s
    assert answer.llm.fallback == "timeout" and answer.mode == "default"
    assert answer.answer.startswith(marked("timeout")) and ROW[0] in answer.answer


@pytest.mark.parametrize("error,reason", [(LLMFailed("connection refused"), "server_error"),
                                          (LLMFailed("slow", timed_out=True), "timeout"),
                                          (RuntimeError("500 Internal Server Error"), "server_error")])
def test_a_server_error_falls_back_never_an_error(llm, model, error, reason):
    model.replies = [error]
    answer = llm.ask("What does 552-5.2.2 mean?")
    assert answer.llm.fallback == reason and answer.answer.startswith(marked(reason)) and ROW[0] in answer.answer


def test_an_empty_reply_falls_back(llm, model):
    model.replies = ["   "]
    assert llm.ask("What does 552-5.2.2 mean?").llm.fallback == "empty"


def test_a_draft_is_generated_with_the_same_label_and_row(llm, model, base):
    history = [{"role": "user", "content": "What does 552-5.2.2 mean?"}, {"role": "assistant", "content": "…"}]
    question = "can you write something I can text the customer about this?"
    default = base.answerer.ask(question, history)
    assert default.intent == "draft"
    text = "Hi, we tried to reply to you by email, but your mailbox is full and cannot receive new messages."
    model.replies = [text]
    answer = llm.ask(question, history)
    assert answer.mode == "llm" and answer.draft.text == text and answer.draft.label == default.draft.label
    assert wording()["draft"]["label"] in answer.answer and text in answer.answer and ROW[0] in answer.answer
    assert default.draft.text in model.prompts[0][-1].content  # the template the model rewrites
    assert "What does 552-5.2.2 mean?" in model.prompts[0][-1].content  # the conversation


def test_small_talk_is_generated_and_keeps_the_examples(llm, model):
    model.replies = ["Hi! I'm Bouncebot: I explain why a reply from the Inbox bounced, using the help article."]
    answer = llm.ask("hi")
    assert answer.intent == "small_talk" and answer.mode == "llm" and answer.answer.startswith("Hi! I'm Bouncebot")
    assert wording()["small_talk"]["examples"][0] in answer.answer


def test_a_refusal_of_the_default_mode_does_not_ask_the_model(llm, model):
    answer = llm.ask("what is the price of the pro plan?")
    assert not answer.answered and answer.mode == "default" and model.prompts == []
    assert answer.llm.used is False and answer.llm.fallback is None


def test_the_stream_gives_the_skeleton_then_tokens_then_the_final_answer(llm, model):
    model.replies = [GOOD]
    events = list(llm.stream_ask("What does 552-5.2.2 mean?"))
    assert events[0]["type"] == "answer_skeleton" and events[0]["answer"]["mode"] == "default"
    assert events[0]["answer"]["codes"][0]["row"]["meaning"] == ROW[0]  # the row before the model's first word
    tokens = [e["text"] for e in events[1:-1]]
    assert all(e["type"] == "token" for e in events[1:-1]) and len(tokens) > 3 and "".join(tokens) == GOOD
    assert events[-1]["type"] == "final" and events[-1]["answer"]["mode"] == "llm"
    assert events[-1]["answer"]["llm"]["generated"] == GOOD


def test_a_streamed_fallback_ends_with_the_marked_default(llm, model):
    model.replies = ["550-5.9.9 is what happened here, and the mailbox is full."]
    final = list(llm.stream_ask("What does 552-5.2.2 mean?"))[-1]
    assert final["type"] == "final" and final["answer"]["llm"]["fallback"] == "unknown_code"


def test_the_default_answerer_streams_too(base):
    events = list(base.answerer.stream_ask("What does 552-5.2.2 mean?"))
    assert [e["type"] for e in events] == ["answer_skeleton", "final"] and events[1]["answer"]["llm"] is None


def test_build_makes_the_llm_answerer_once(base, model, tmp_path):
    services = build(base.settings, embedder=FakeEmbedder(), chat_model=model)
    assert isinstance(services.answerer, LLMAnswerer) and services.answerer.model is model
    assert services.answerer.support == base.answerer.support  # the rest is the default answerer's


def test_off_means_off_nothing_of_the_model_is_imported():
    code = ("import sys\nfrom app.config import Settings\nfrom app.answering.services import build\n"
            "from app.web import server\n"
            "assert Settings.from_env({}).llm.mode == 'off'\n"
            "bad = [m for m in sys.modules if m.startswith(('app.llm', 'app.answering.llm', 'xllamacpp', "
            "'langchain_openai', 'langchain_core.language_models'))]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})
    assert done.returncode == 0, done.stderr
