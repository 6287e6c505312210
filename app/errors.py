"""Errors a user can cause, each with a message that says what to do next.

Hierarchy::

    BouncebotError            base; ``exit_code`` is what the CLI exits with,
    │                         ``http_status`` what the API answers
    ├── BadQuestion           the question is empty, too long or not text (exit 2, 422/413)
    ├── IndexNotReady         the index is missing, stale or unreadable (exit 3, 503)
    ├── MalformedArticle      an article in the KB cannot be parsed (exit 4)
    └── SearchUnavailable     the vector store did not answer in time or failed (exit 5, 503)

The CLI prints ``str(error)`` and exits with ``error.exit_code``; the API
answers ``error.http_status`` with the same message as ``{"error": ...}``.
"""

from __future__ import annotations


class BouncebotError(Exception):
    """Base class for errors whose message is meant for the user."""

    exit_code = 1
    http_status = 400


class BadQuestion(BouncebotError):
    """The question cannot be answered as given (empty, too long)."""

    exit_code = 2
    http_status = 422


class NotText(BadQuestion):
    def __init__(self, field: str = "question") -> None:
        super().__init__(
            f"The {field} contains characters that are not text (lone UTF-16 surrogates such as \\ud800): "
            "send it as valid UTF-8."
        )


class EmptyQuestion(BadQuestion):
    def __init__(self) -> None:
        super().__init__("The question is empty: type a question or paste the bounce message.")


class QuestionTooLong(BadQuestion):
    http_status = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(
            f"The question is {size:,} bytes; the limit is {limit:,} bytes. "
            "Paste only the delivery-failure part of the message."
        )


class IndexNotReady(BouncebotError):
    """The vector index is missing or out of date with the knowledge base."""

    exit_code = 3
    http_status = 503


class MalformedArticle(BouncebotError):
    """An article in the knowledge base cannot be parsed; nothing was indexed."""

    exit_code = 4
    http_status = 500

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        super().__init__(
            f"{path}:{line}: {problem}. Fix the article and run `bouncebot ingest` again; "
            "the existing index was left as it was."
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
