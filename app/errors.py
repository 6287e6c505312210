"""Errors a user can cause, each with a message that says what to do next.

Hierarchy::

    BouncebotError            base; ``exit_code`` is what the CLI exits with
    ├── BadQuestion           the question is empty or too long (exit 2)
    ├── IndexNotReady         the index is missing or stale (exit 3)
    └── MalformedArticle      an article in the KB cannot be parsed (exit 4)

The CLI prints ``str(error)`` and exits with ``error.exit_code``; the API
answers 4xx with the same message.
"""

from __future__ import annotations


class BouncebotError(Exception):
    """Base class for errors whose message is meant for the user."""

    exit_code = 1


class BadQuestion(BouncebotError):
    """The question cannot be answered as given (empty, too long)."""

    exit_code = 2


class EmptyQuestion(BadQuestion):
    def __init__(self) -> None:
        super().__init__("The question is empty: type a question or paste the bounce message.")


class QuestionTooLong(BadQuestion):
    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(
            f"The question is {size:,} bytes; the limit is {limit:,} bytes. "
            "Paste only the delivery-failure part of the message."
        )


class IndexNotReady(BouncebotError):
    """The vector index is missing or out of date with the knowledge base."""

    exit_code = 3


class MalformedArticle(BouncebotError):
    """An article in the knowledge base cannot be parsed; nothing was indexed."""

    exit_code = 4

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path, self.line, self.problem = path, line, problem
        super().__init__(
            f"{path}:{line}: {problem}. Fix the article and run `bouncebot ingest` again; "
            "the existing index was left as it was."
        )
