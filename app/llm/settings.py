"""The language-model settings, read once from the environment (to be merged into ``app.config``).

==========================  =========  ========================================================
variable                    default    meaning
==========================  =========  ========================================================
``BOUNCEBOT_LLM``           ``off``    ``off`` | ``local`` (the verified GGUF in-process) | ``openai``
``BOUNCEBOT_LLM_URL``       (none)     an OpenAI-compatible base URL, such as http://127.0.0.1:8080/v1;
                                       required for ``openai``
``BOUNCEBOT_LLM_MODEL``     the GGUF   the model name sent to that server (``openai`` only)
``BOUNCEBOT_LLM_API_KEY``   (none)     its API key; a placeholder is sent when unset (local servers)
``BOUNCEBOT_LLM_TIMEOUT``   ``30``     seconds one answer may take before it counts as failed
``BOUNCEBOT_LLM_THREADS``   ``1``      CPU threads of the local model (2 runs with
                                       ``OMP_WAIT_POLICY=PASSIVE``, set before the library loads)
``BOUNCEBOT_MODEL_CACHE``   ~/.cache/  the folder the joined, verified GGUF is kept in
                            bouncebot/
                            models
==========================  =========  ========================================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.config import _positive
from app.errors import BadSetting

MODES = ("off", "local", "openai")
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # the alias the loopback server answers to
WARM_TIMEOUT = 600.0  # seconds for the prompt's fixed prefix (about a minute on 2 busy cores), not an answer's
_URL = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?", re.IGNORECASE)


def default_model_cache() -> Path:
    return Path.home() / ".cache" / "bouncebot" / "models"


def _mode(raw: str | None) -> str:
    mode = (raw or "off").strip().lower()
    if mode not in MODES:
        raise BadSetting(f"BOUNCEBOT_LLM={raw!r}: use off, local or openai.")
    return mode


def _url(raw: str | None, mode: str) -> str | None:
    url = (raw or "").strip() or None
    if url is None:
        if mode == "openai":
            raise BadSetting("BOUNCEBOT_LLM=openai needs BOUNCEBOT_LLM_URL, an OpenAI-compatible base URL "
                             "such as http://127.0.0.1:8080/v1.")
        return None
    if not _URL.fullmatch(url):
        raise BadSetting(f"BOUNCEBOT_LLM_URL={raw!r} is not a URL like http://127.0.0.1:8080/v1.")
    return url.rstrip("/")


def _threads(env: dict) -> int:
    threads = _positive(env, "BOUNCEBOT_LLM_THREADS", 1, int)
    if threads > (os.cpu_count() or 1) * 2:
        raise BadSetting(f"BOUNCEBOT_LLM_THREADS={env['BOUNCEBOT_LLM_THREADS']!r} is more than twice this "
                         f"machine's {os.cpu_count()} cores; use 1 or 2.")
    return threads


@dataclass(frozen=True)
class LLMSettings:
    mode: str = "off"
    url: str | None = None
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    threads: int = 1
    model_cache: Path = field(default_factory=default_model_cache)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @classmethod
    def from_env(cls, env: dict | None = None) -> "LLMSettings":
        env = dict(os.environ if env is None else env)
        d = cls()
        mode = _mode(env.get("BOUNCEBOT_LLM"))
        cache = (env.get("BOUNCEBOT_MODEL_CACHE") or "").strip()
        return cls(
            mode=mode,
            url=_url(env.get("BOUNCEBOT_LLM_URL"), mode),
            model=(env.get("BOUNCEBOT_LLM_MODEL") or "").strip() or d.model,
            api_key=env.get("BOUNCEBOT_LLM_API_KEY") or None,
            timeout=_positive(env, "BOUNCEBOT_LLM_TIMEOUT", d.timeout),
            threads=_threads(env),
            model_cache=Path(cache).expanduser() if cache else d.model_cache,
        )

    def with_(self, **changes) -> "LLMSettings":
        return replace(self, **changes)
