"""The language-model mode: the default answer first, the model's connective text on top, guarded.

``LLMAnswerer`` wraps the default ``Answerer`` (every other attribute is the wrapped one's):

1. the default answerer decides the answer exactly as without a model (codes, rows, passages,
   refusals, conversation intents): that answer is the fallback and the source of truth;
2. ``prompt.task_for`` says what, if anything, the model writes for it: a short answer above the
   rows and passages, a draft for the customer, a small-talk reply. Rows and passages are never
   the model's: the program keeps them as decided, verbatim, below the model's text;
3. the model's text streams, within ``timeout`` seconds in all, then the guard checks it
   (``guard.Guard``). Kept: ``mode: llm``. Anything else (a failed check, a timeout, a server
   error, and a model that says it cannot answer) shows the default answer, marked, with
   ``llm.fallback`` saying why (``refused`` for "I don't know").

The refusal rule: the model is only asked where the default mode answered, with passages (the
default mode's own refusals are never second-guessed: the model is not asked). There a model's
"I don't know" keeps the default answer, marked ``refused``, and never turns it into a refusal:
on the dev split the model's refusals fell mostly on questions whose expected answer is an
answer, so refusing them lost answered questions and won almost no correct refusals (the
counts are in the README's "Language-model mode"). ``answered`` is therefore always the
default mode's, and so is the accuracy of answering versus refusing.

``ask`` returns the final ``Answer``; ``stream_ask`` yields ``answer_skeleton`` (the default answer,
as soon as it is decided), a ``token`` per piece of text, then ``final`` (after the guard).

Follow-ups are not rewritten by the model before retrieval: the default mode's conversation
reading already carries codes and topics, and a rewrite was not measured to help (README).
"""

from __future__ import annotations

import threading
import time
from queue import Empty, SimpleQueue
from typing import Iterator

from app.answering import render
from app.answering.contract import Answer, LLMReport
from app.answering.llm.guard import Guard
from app.answering.llm.prompt import Task, task_for
from app.errors import LLMFailed

_DONE = object()


class ModelFailed(Exception):
    def __init__(self, reason: str, problem: str = ""):
        self.reason, self.problem = reason, problem
        super().__init__(f"{reason}: {problem}")


def _reason(error: BaseException) -> str:
    """``timeout`` for a timeout of any client (LLMFailed, openai, httpx), else ``server_error``."""
    if isinstance(error, LLMFailed):
        return "timeout" if error.timed_out else "server_error"
    names = [c.__name__.lower() for c in type(error).__mro__]
    return "timeout" if any("timeout" in n for n in names) else "server_error"


def stream_text(model, messages: list, timeout: float, **options) -> Iterator[str]:
    """The model's text piece by piece, all of it within ``timeout`` seconds, or ``ModelFailed``.

    The model streams on a worker thread, so a server that hangs before its first token still
    times out here; the worker stops at its next token once the caller has gone."""
    queue: SimpleQueue = SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in model.stream(messages, **options):
                if stop.is_set():
                    break
                if isinstance(chunk.content, str) and chunk.content:
                    queue.put(chunk.content)
        except BaseException as e:  # handed to the caller, whatever it is
            queue.put(e)
        queue.put(_DONE)

    threading.Thread(target=work, name="bouncebot-llm-answer", daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                item = queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise ModelFailed("timeout", f"no whole answer within {timeout:g} s (BOUNCEBOT_LLM_TIMEOUT)") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise ModelFailed(_reason(item), str(item)) from item
            yield item
    finally:
        stop.set()


class LLMAnswerer:
    """The default ``Answerer`` with a guarded language model writing the connective text."""

    def __init__(self, inner, model, guard: Guard, prefix: list, *, timeout: float, name: str,
                 in_prefix: frozenset[str] | None = None):
        self.inner, self.model, self.guard, self.prefix = inner, model, guard, list(prefix)
        self.in_prefix = in_prefix  # titles of the articles the prefix holds (None: every article)
        self.timeout, self.name = timeout, name

    def __getattr__(self, name):  # retriever, support, table, check, bounded, ...: the default answerer's
        return getattr(self.inner, name)

    def ask(self, question: str, history=None) -> Answer:
        """The final answer (the model's text kept, or the default answer marked as a fallback)."""
        for kind, value in self.events(question, history):
            if kind == "final":
                return value
        raise AssertionError("events() ends with a final answer")

    def stream_ask(self, question: str, history=None) -> Iterator[dict]:
        """``{"type": "answer_skeleton", "answer"}``, ``{"type": "token", "text"}``..., ``{"type": "final", "answer"}``."""
        for kind, value in self.events(question, history):
            yield {"type": kind, "text": value} if kind == "token" else {"type": kind, "answer": value.to_dict()}

    def events(self, question: str, history=None) -> Iterator[tuple[str, object]]:
        base = self.inner.ask(question, history)  # raises as the default mode does (bad input, no search)
        yield "answer_skeleton", base
        task = task_for(base, self.inner.bounded(history), self.in_prefix)
        if task is None:
            yield "final", self._final(base, LLMReport(model=self.name, used=False))
            return
        from langchain_core.messages import HumanMessage

        start, first, pieces = time.monotonic(), None, []
        try:
            options = {"max_tokens": task.max_tokens, **({"stop": task.stop} if task.stop else {})}
            for piece in stream_text(self.model, [*self.prefix, HumanMessage(task.text)], self.timeout, **options):
                first = time.monotonic() - start if first is None else first
                pieces.append(piece)
                yield "token", piece
        except ModelFailed as e:
            report = LLMReport(model=self.name, used=False, fallback=e.reason, interventions=[e.reason],
                               generated="".join(pieces) or None, ttft_s=first, total_s=time.monotonic() - start)
            yield "final", self._fallback(base, report)
            return
        report = LLMReport(model=self.name, used=False, generated="".join(pieces).strip() or None,
                           ttft_s=first, total_s=time.monotonic() - start)
        yield "final", self._guarded(base, task, report)

    def _guarded(self, base: Answer, task: Task, report: LLMReport) -> Answer:
        verdict = self.guard.check(report.generated or "", task.codes, task.reference)
        report.interventions, report.fallback = verdict.interventions, verdict.fallback
        if not verdict.ok:  # a refusal too: the default answer stands, marked (the refusal rule above)
            return self._fallback(base, report)
        report.used = True
        shown = base.model_copy(deep=True, update={"mode": "llm", "llm": report})
        text = report.generated
        if task.kind == "draft":
            shown.draft.text = text
            shown.answer = render.markdown(shown)
        elif task.kind == "small_talk":
            shown.answer = render.small_talk_text(None, opening=text)
        else:
            shown.answer = render.with_lead(text, base.answer)
        return shown

    def _fallback(self, base: Answer, report: LLMReport) -> Answer:
        shown = self._final(base, report)
        shown.answer = render.fallback_mark(report.fallback, base.answer)
        return shown

    @staticmethod
    def _final(answer: Answer, report: LLMReport) -> Answer:
        return answer.model_copy(deep=True, update={"mode": "default", "llm": report})
