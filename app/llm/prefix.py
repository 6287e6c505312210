"""The fixed part of the prompt: the instructions and the whole article, processed once (``warm``).

Every prompt that starts with these messages, token for token, reuses their KV cache; what
changes per question (passages, history, the question) must come after them.
"""

from __future__ import annotations

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


def prefix_messages(kb_dir: Path, instructions: str = INSTRUCTIONS) -> list[BaseMessage]:
    """One system message: the instructions, then every article under ``kb_dir``."""
    articles = "\n\n".join(article_text(a) for a in load_articles(Path(kb_dir)))
    return [SystemMessage(f"{instructions}\n\n--- The article ---\n\n{articles}")]
