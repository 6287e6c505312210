"""The fixed part of the prompt: the instructions and the whole article, processed once (``warm``).

Every prompt that starts with these messages, token for token, reuses their KV cache; what
changes per question (passages, history, the question) must come after them.

A help centre of many articles does not fit the model's context: the prefix holds the articles
that fit within ``PREFIX_TOKENS`` (those with the most error-table rows first: the bounce article
is what the instructions are about), and ``Prefix.articles`` names them, so the per-question
message quotes the cited passages of any other article instead of naming them
(``app.answering.llm.prompt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import BaseMessage, SystemMessage

from app.knowledge.articles import INTRO, Article, load_articles

INSTRUCTIONS = (
    "You are Bouncebot. You help support agents understand why an email reply from the help desk's Inbox "
    "bounced. Answer only from the help-centre article below, in two or three short sentences. Never write "
    "an error code that is not in the question or in the article, and never guess what a code means. If the "
    "article does not answer the question, reply exactly: I don't know."
)


def article_text(article: Article) -> str:
    """The article as Markdown: title, link, then each section's blocks as written (tables included)."""
    out = [f"# {article.title}", article.subtitle, f"Link: {article.url}"]
    for section in article.sections:
        if section.heading != INTRO:
            out.append(f"## {section.heading}")
        out += [block.text for block in section.blocks]
    return "\n\n".join(x for x in out if x)


PREFIX_TOKENS = 2400  # of the 4,096-token context: the rest is the per-question message and the answer
CHARS_PER_TOKEN = 3  # an over-estimate of tokens for English prose and tables (Qwen's tokenizer: ~4 chars)


@dataclass(frozen=True)
class Prefix:
    messages: list[BaseMessage]
    articles: frozenset[str]  # titles of the articles the prefix holds whole


def _tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def build_prefix(articles: list[Article], instructions: str = INSTRUCTIONS, budget: int = PREFIX_TOKENS) -> Prefix:
    """One system message: the instructions, then the articles that fit ``budget`` tokens, those with
    the most error-table rows first (then in KB order)."""
    left, kept = budget - _tokens(instructions), []
    for a in sorted(articles, key=lambda a: -len(a.rows)):  # stable: KB order among equals
        text = article_text(a)
        if _tokens(text) <= left:
            kept.append((a, text))
            left -= _tokens(text)
    order = {id(a): i for i, a in enumerate(articles)}
    kept.sort(key=lambda pair: order[id(pair[0])])
    body = "\n\n".join(text for _, text in kept)
    return Prefix([SystemMessage(f"{instructions}\n\n--- The article ---\n\n{body}")],
                  frozenset(a.title for a, _ in kept))


def prefix_messages(kb_dir: Path, instructions: str = INSTRUCTIONS) -> list[BaseMessage]:
    """The prefix's messages for the articles under ``kb_dir`` (``build_prefix``)."""
    return build_prefix(load_articles(Path(kb_dir)), instructions).messages
