"""The language-model settings, read once from the environment (kept in ``app.config`` as ``Settings.llm``).

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

from app.config import LLM_MODES as MODES, DEFAULT_MODEL, WARM_TIMEOUT, LLMSettings, default_model_cache

__all__ = ["DEFAULT_MODEL", "MODES", "WARM_TIMEOUT", "LLMSettings", "default_model_cache"]
