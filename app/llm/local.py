"""``LocalChatModel``: a LangChain chat model over the in-process model (``app.llm.runtime``).

- **Streaming**: xllamacpp calls back once per server-sent chunk from inside
  ``handle_chat_completions(..., callback)``, which blocks; it runs on a worker thread
  that hands each chunk to ``_stream`` (a queue) or ``_astream`` (the event loop), so a
  token reaches the caller as soon as it is decoded. When the caller stops reading, or
  the timeout passes, the callback returns ``True`` at the next token and the server stops.
  ``_generate`` is the same stream, gathered.
- **Prefix cache**: every request asks for ``cache_prompt``; the slot keeps the KV cache of
  its last prompt and reuses the longest common token prefix of the next one (and a prompt
  that evicted it brings it back from the host-memory prompt cache). ``warm()`` processes
  the fixed prefix (instructions + the article) once, at start-up, so a question pays only
  for its own tokens; it saves that KV cache beside the model, and a later process restores
  it in milliseconds instead of computing it again (about a minute on 2 cores). Context
  shifting is off, so ``n_keep`` plays no part: a request longer than the context is
  refused (``LLMFailed``), never silently cut.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, AsyncIterator, Callable, Iterator

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from app.errors import LLMFailed
from .model_file import QWEN_CODER_1_5B
from .runtime import N_CTX, Runtime, runtime
from .settings import WARM_TIMEOUT

log = logging.getLogger(__name__)
_DONE = object()
SAVED_PREFIXES = 4  # KV files kept in <model cache>/kv/, newest first (~30 MB for the whole article)


def _chunk_item(item: Any) -> dict | None:
    """A server chunk as it came, ``None`` at the end; an error or exception raises ``LLMFailed``."""
    if item is _DONE:
        return None
    if isinstance(item, BaseException):
        raise LLMFailed(str(item)) from item
    if "error" in item or "choices" not in item:
        err = item.get("error", item)
        raise LLMFailed(err.get("message", str(err)) if isinstance(err, dict) else str(err))
    return item


def _to_chunk(item: dict) -> ChatGenerationChunk | None:
    """LangChain's chunk for one server chunk: its text, and on the last one the finish reason and usage."""
    choice = item["choices"][0] if item["choices"] else {}
    text = (choice.get("delta") or {}).get("content") or ""
    timings, reason = item.get("timings"), choice.get("finish_reason")
    if not text and not timings and not reason:
        return None
    meta, usage = {}, None
    if reason or timings:
        meta = {"finish_reason": reason, "model_name": item.get("model"), "timings": timings}
    if timings:
        prompt = timings.get("cache_n", 0) + timings.get("prompt_n", 0)
        usage = {"input_tokens": prompt, "output_tokens": timings.get("predicted_n", 0),
                 "total_tokens": prompt + timings.get("predicted_n", 0),
                 "input_token_details": {"cache_read": timings.get("cache_n", 0)}}
    return ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=meta, usage_metadata=usage),
                               generation_info=meta or None)


class _Run:
    """One streamed request on a worker thread: each chunk goes to ``put``; ``stop()`` ends it at the next token."""

    def __init__(self, server, request: dict, put: Callable[[Any], None], timeout: float):
        self._stopped, self.timeout = threading.Event(), timeout
        self.deadline = time.monotonic() + timeout

        def on_chunk(chunk) -> bool:
            put(chunk)
            return self._stopped.is_set()

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as e:  # a bad request raises in the caller's thread: hand it over
                put(e)
            put(_DONE)

        threading.Thread(target=work, name="bouncebot-llm", daemon=True).start()

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def timed_out(self) -> LLMFailed:
        return LLMFailed(f"no full answer within {self.timeout:g} s (BOUNCEBOT_LLM_TIMEOUT)", timed_out=True)

    def stop(self) -> None:
        self._stopped.set()


class LocalChatModel(BaseChatModel):
    """Qwen2.5-Coder-1.5B-Instruct (the verified GGUF) in this process, through xllamacpp."""

    model_path: str
    threads: int = 1
    batch_threads: int | None = None  # prompt processing's threads (None: ``threads``)
    n_ctx: int = N_CTX
    max_tokens: int = 256
    temperature: float = 0.0
    timeout: float = 30.0  # seconds for a whole answer; then LLMFailed(timed_out=True)
    stop: list[str] | None = None

    @property
    def _llm_type(self) -> str:
        return "bouncebot-local-xllamacpp"

    @property
    def _identifying_params(self) -> dict:
        return {"model_path": self.model_path, "threads": self.threads, "batch_threads": self.batch_threads,
                "n_ctx": self.n_ctx,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    @property
    def runtime(self) -> Runtime:
        return runtime(Path(self.model_path), self.threads, self.n_ctx, self.batch_threads)

    def load(self) -> "LocalChatModel":
        """Load the model now (at start-up) rather than on the first question."""
        self.runtime
        return self

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs) -> dict:
        request = {"messages": convert_to_openai_messages(messages), "max_tokens": self.max_tokens,
                   "temperature": self.temperature, "cache_prompt": True}
        if stop or self.stop:
            request["stop"] = stop or self.stop
        return {**request, **kwargs, "stream": True}

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        queue: SimpleQueue = SimpleQueue()
        run = _Run(self.runtime.server, self._request(messages, stop, **kwargs), queue.put, self.timeout)
        try:
            while True:
                try:
                    item = _chunk_item(queue.get(timeout=run.left()))
                except Empty:
                    raise run.timed_out() from None
                if item is None:
                    return
                if (chunk := _to_chunk(item)) is not None:
                    if run_manager and chunk.text:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            run.stop()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        server = await loop.run_in_executor(None, lambda: self.runtime.server)  # a first load must not block the loop
        run = _Run(server, self._request(messages, stop, **kwargs),
                   lambda item: loop.call_soon_threadsafe(queue.put_nowait, item), self.timeout)
        try:
            while True:
                try:
                    item = _chunk_item(await asyncio.wait_for(queue.get(), run.left()))
                except asyncio.TimeoutError:
                    raise run.timed_out() from None
                if item is None:
                    return
                if (chunk := _to_chunk(item)) is not None:
                    if run_manager and chunk.text:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            run.stop()

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        whole: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            whole = chunk if whole is None else whole + chunk
        if whole is None:
            raise LLMFailed("the server ended the answer without a word")
        return ChatResult(generations=[ChatGeneration(message=whole.message, generation_info=whole.generation_info)])

    def warm(self, prefix_messages: list[BaseMessage], *, saved: bool = True, timeout: float = WARM_TIMEOUT) -> dict:
        """Have the KV cache of the fixed prefix ready, so every later prompt starting with it reuses it.

        Restored from the file an earlier ``warm`` saved (``saved=False`` ignores it), or computed now
        (within ``timeout`` seconds, not the answers' timeout) and saved. Returns ``prefix_tokens``
        (in the slot now), ``computed`` (processed now), ``source`` (``"saved"`` or ``"computed"``)
        and ``seconds``.
        """
        rt, start = self.runtime, time.monotonic()
        name = self._prefix_file(rt, prefix_messages)
        if saved and rt.slot_dir and (rt.slot_dir / name).is_file():
            try:
                restored = rt.slot_action("restore", name)["n_restored"]
                return self._warmed(rt, restored, 0, "saved", start)
            except (LLMFailed, KeyError) as e:
                log.warning("could not restore the saved prefix %s (%s): computing it again", name, e)
                (rt.slot_dir / name).unlink(missing_ok=True)
        patient = self.model_copy(update={"timeout": timeout})
        chunks = list(patient._stream([*prefix_messages, HumanMessage("")], max_tokens=1))
        timings = (chunks[-1].message.response_metadata.get("timings") if chunks else None) or {}
        if rt.slot_dir:
            try:
                rt.slot_action("save", name)
                for old in sorted(rt.slot_dir.glob("prefix-*.bin"), key=lambda p: p.stat().st_mtime)[:-SAVED_PREFIXES]:
                    old.unlink(missing_ok=True)
            except (LLMFailed, OSError) as e:
                log.warning("could not save the prefix's KV cache (%s); the next start computes it again", e)
        return self._warmed(rt, timings.get("cache_n", 0) + timings.get("prompt_n", 0), timings.get("prompt_n", 0),
                            "computed", start)

    def _prefix_file(self, rt: Runtime, prefix_messages: list[BaseMessage]) -> str:
        """The saved KV cache's name: the prefix, the model, the runtime's version and the context size."""
        key = json.dumps([QWEN_CODER_1_5B.sha256, rt.version, self.n_ctx, convert_to_openai_messages(prefix_messages)])
        return f"prefix-{hashlib.sha256(key.encode()).hexdigest()[:32]}.bin"

    @staticmethod
    def _warmed(rt: Runtime, tokens: int, computed: int, source: str, start: float) -> dict:
        rt.prefix_tokens = tokens
        return {"prefix_tokens": tokens, "computed": computed, "source": source, "seconds": time.monotonic() - start}
