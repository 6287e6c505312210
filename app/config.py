"""Configuration: read once from the environment into one typed object.

Every variable is documented in the README. Nothing else in the package
reads ``os.environ`` for settings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import BouncebotError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class BadSetting(BouncebotError):
    exit_code = 2


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadSetting(f"{name}={raw!r} is not a whole number.") from None


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadSetting(f"{name}={raw!r} is not a number.") from None


def _collection(name: str) -> str:
    # Chroma's rule for collection names
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name):
        raise BadSetting(
            f"BOUNCEBOT_COLLECTION={name!r}: use 3-512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
        )
    return name


@dataclass(frozen=True)
class Settings:
    kb_dir: Path = PROJECT_ROOT / "kb"
    index_dir: Path = PROJECT_ROOT / ".index"
    model_dir: Path = PROJECT_ROOT / ".cache" / "model"
    feedback_db: Path = PROJECT_ROOT / ".data" / "feedback.sqlite3"
    chroma_url: str | None = None
    collection: str = "bouncebot"
    host: str = "127.0.0.1"
    port: int = 7860
    top_k: int = 3
    min_similarity: float = 0.33
    dense_weight: float = 0.7
    off_topic_margin: float = 0.08
    max_question_bytes: int = 200 * 1024
    embed_threads: int = 1

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            kb_dir=Path(env.get("BOUNCEBOT_KB_DIR") or d.kb_dir),
            index_dir=Path(env.get("BOUNCEBOT_INDEX_DIR") or d.index_dir),
            model_dir=Path(env.get("BOUNCEBOT_MODEL_DIR") or d.model_dir),
            feedback_db=Path(env.get("BOUNCEBOT_FEEDBACK_DB") or d.feedback_db),
            chroma_url=env.get("BOUNCEBOT_CHROMA_URL") or None,
            collection=_collection(env.get("BOUNCEBOT_COLLECTION") or d.collection),
            host=env.get("BOUNCEBOT_HOST") or d.host,
            port=_int(env, "BOUNCEBOT_PORT", d.port),
            top_k=_int(env, "BOUNCEBOT_TOP_K", d.top_k),
            min_similarity=_float(env, "BOUNCEBOT_MIN_SIMILARITY", d.min_similarity),
            dense_weight=_float(env, "BOUNCEBOT_DENSE_WEIGHT", d.dense_weight),
            off_topic_margin=_float(env, "BOUNCEBOT_OFF_TOPIC_MARGIN", d.off_topic_margin),
            max_question_bytes=_int(env, "BOUNCEBOT_MAX_QUESTION_BYTES", d.max_question_bytes),
            embed_threads=_int(env, "BOUNCEBOT_EMBED_THREADS", d.embed_threads),
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)
