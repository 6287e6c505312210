"""The one chat-model door: ``make_chat_model(settings)`` is a LangChain ``BaseChatModel``, or ``None`` when off.

- ``off``    ``None``; nothing of the model's stack is imported.
- ``local``  ``LocalChatModel`` over the verified GGUF in-process (joined and verified first
             when the parts are installed but the file is not there yet); it generates with
             ``BOUNCEBOT_LLM_THREADS`` and processes prompts with at least ``runtime.BATCH_THREADS``.
- ``openai`` ``langchain_openai.ChatOpenAI`` against ``BOUNCEBOT_LLM_URL`` (Ollama, vLLM,
             llama.cpp's server, ``python -m app.llm.serve``, or a hosted API).

Both are made with the same options (``max_tokens``, ``temperature``, ...), so the same
prompts, guard and tests serve both. Neither retries: a failure or a timeout is the
caller's to fall back from. ``warm(model, prefix)`` processes the fixed part of the prompt
once, at start-up, for either.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from app.errors import ModelUnavailable
from .settings import WARM_TIMEOUT, LLMSettings

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessage

DEFAULTS = {"max_tokens": 256, "temperature": 0.0}
NO_KEY = "not-needed"  # local OpenAI-compatible servers want some key and check none


def make_chat_model(settings: LLMSettings, **options: Any) -> "BaseChatModel | None":
    if settings.mode == "off":
        return None
    options = {**DEFAULTS, **options}
    if settings.mode == "local":
        from .local import LocalChatModel
        from .model_file import ensure_model
        from .runtime import BATCH_THREADS

        path = ensure_model(settings.model_cache).path
        options.setdefault("batch_threads", max(settings.threads, BATCH_THREADS))
        return LocalChatModel(model_path=str(path), threads=settings.threads, timeout=settings.timeout, **options)
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ModelUnavailable("BOUNCEBOT_LLM=openai needs langchain-openai: run `make llm` "
                               "(it installs the `llm` extra).") from None
    return ChatOpenAI(base_url=settings.url, model=settings.model, api_key=settings.api_key or NO_KEY,
                      timeout=settings.timeout, max_retries=0, **options)


def warm(model: "BaseChatModel", prefix_messages: "list[BaseMessage]") -> dict:
    """Have the prompt's fixed prefix processed once, so that later prompts starting with it reuse its KV cache.

    The local model keeps it in its slot and on disk (``LocalChatModel.warm``); an OpenAI-compatible
    server that caches prompts (llama.cpp's and xllamacpp's do by default, vLLM with prefix caching)
    keeps it after one short request. Either may take up to ``WARM_TIMEOUT``, not the answers' timeout.
    Returns ``prefix_tokens``, ``computed``, ``source``, ``seconds``.
    """
    if hasattr(model, "warm"):
        return model.warm(prefix_messages)
    from langchain_core.messages import HumanMessage

    start = time.monotonic()
    usage = model.invoke([*prefix_messages, HumanMessage("")], max_tokens=1, timeout=WARM_TIMEOUT).usage_metadata or {}
    tokens, cached = usage.get("input_tokens", 0), (usage.get("input_token_details") or {}).get("cache_read", 0)
    return {"prefix_tokens": tokens, "computed": tokens - cached, "source": "server",
            "seconds": time.monotonic() - start}
