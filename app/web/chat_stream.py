"""The chat's language-model turn: the answer's rows and sources first, the model's text as it comes, then the final answer.

``ChatUI.respond`` hands a turn here when its answerer writes text token by token (the
language-model mode's ``stream_ask``: ``answer_skeleton``, ``token``..., ``final``). The default
mode's answerer never comes here: its answers stream in blocks as before.

- The skeleton (the default answer, decided before the model starts) gives the code cards and the
  sources at once; the message shows the model's text so far, marked as being written, above the
  skeleton's Markdown.
- Tokens are shown in batches, at most one update every ``FLUSH_SECONDS`` unless ``FLUSH_TOKENS``
  have arrived: the chat re-renders the whole conversation on every update.
- The model's text is untrusted: it is shown as inert text (``inert``), in the draft and in the
  final answer alike, so no HTML, link, image or emphasis can come out of it.
- The final answer replaces the draft: the model's text kept by the guard, or the default answer
  with its fallback mark (from ``render.fallback_mark``).
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

from app.answering.contract import Answer

FLUSH_SECONDS = 0.08  # a batch of tokens is shown at most this often...
FLUSH_TOKENS = 8  # ...unless this many have arrived since the last update


def streams_tokens(answerer) -> bool:
    """Whether ``answerer`` writes its text token by token: its own ``stream_ask``, not the default mode's."""
    from app.answering.answerer import Answerer

    own = getattr(type(answerer), "stream_ask", None)
    return own is not None and own is not Answerer.stream_ask


def inert(text: str) -> str:
    """The model's text as Markdown that renders as exactly that text, line by line (``markdown_text``)."""
    from app.web.chat import markdown_text

    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(markdown_text(line) if line.strip() else "" for line in lines)


def shown_markdown(answer: Answer) -> str:
    """The final answer's Markdown with the model's text (its lead or opening) made inert."""
    r, text = answer.llm, answer.answer
    if answer.mode == "llm" and r is not None and r.generated and text.startswith(r.generated):
        return inert(r.generated) + text[len(r.generated):]
    return text


def draft_markdown(tokens: str, skeleton: Answer, writing: str) -> str:
    """The message while the model writes: its text so far (inert), the mark, then the skeleton's answer."""
    so_far = inert(tokens.strip())
    return f"{so_far} *{writing}*\n\n{skeleton.answer}" if so_far else f"*{writing}*\n\n{skeleton.answer}"


def batched(events: Iterator[dict], clock: Callable[[], float] = time.monotonic,
            seconds: float = FLUSH_SECONDS, tokens: int = FLUSH_TOKENS) -> Iterator[tuple[str, object]]:
    """``stream_ask``'s events as what the chat shows: ("skeleton", Answer), ("text", the model's
    text so far) once per batch of tokens, ("final", Answer). The text not yet shown when the
    final answer comes is not shown as a draft: the final answer replaces it."""
    text, pending, last = "", 0, clock()
    for event in events:
        kind = event.get("type")
        if kind == "token":
            text += str(event.get("text") or "")
            pending, now = pending + 1, clock()
            if pending >= tokens or now - last >= seconds:
                pending, last = 0, now
                yield "text", text
        elif kind in ("answer_skeleton", "final"):
            last = clock()
            yield ("skeleton" if kind == "answer_skeleton" else "final"), Answer.model_validate(event["answer"])
