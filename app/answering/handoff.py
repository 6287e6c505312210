"""What a support request asks for, found in the agent's messages.

The article's "Need more help?" section lists what to send: the conversation
link, the customer's email address, the error code or failure message, the
time sent. ``facts`` finds each in the conversation (newest message first);
``fill`` says which fact an item of that list asks for, by the words it names
(``handoff_fill`` in ``data/conversation.yaml``).
"""

from __future__ import annotations

import re

from app.answering.contract import Code
from app.answering.cues import CUES, has, pad
from app.knowledge.articles import Article

_URL = re.compile(r"https?://[^\s<>()\"'\]]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_TIMES = [re.compile(p, re.I) for p in CUES["times"]]
_QUOTED = re.compile(r"""["“”«»`]([^"“”«»`\n]{3,200})["“”«»`]|(?<!\w)['‘’]([^'‘’\n]{3,200})['‘’](?!\w)""")


def facts(texts: list[str], codes: list[Code], analyse, articles: list[Article]) -> dict:
    """What the agent's messages hold that a support request asks for (newest first). ``analyse``
    is the code table's (cached) look-up; links into ``articles`` are no conversation link."""
    facts: dict = {}
    article_urls: tuple[str, ...] | None = None  # made on the first link (a help centre's thousands of URLs)
    for text in reversed(texts):
        links = [u.rstrip(".,;:!?") for u in _URL.findall(text)]
        if links and article_urls is None:
            article_urls = tuple(a.url.split("#")[0].rstrip("/") for a in articles)
        links = [u for u in links if not u.startswith(article_urls)]  # the help article is no conversation
        if "link" not in facts and links:
            facts["link"] = links[0]
        if "email" not in facts:
            named = [r.recipient for r in analyse(text).recipients if r.recipient]
            found = named or [e for e in _EMAIL.findall(text)
                              if not re.match(r"(mailer-daemon|postmaster)@", e, re.I)]
            if found:
                facts["email"] = found[0]
        if "time" not in facts:
            for pattern in _TIMES:
                if (m := pattern.search(text)) and m.group().strip():
                    facts["time"] = re.sub(r"^(?:at|around)\s+", "", m.group().strip(), flags=re.I)
                    break
    if codes:
        facts["code"] = ", ".join(dict.fromkeys(c.code for c in codes))
    elif (message := _failure_message(texts)) is not None:
        facts["code"] = message
    return facts

def _failure_message(texts: list[str]) -> str | None:
    """Without a code, the failure message the agent quoted or described (newest first): a quoted
    text, else the message that names the failure, in the agent's words; None when none does."""
    limit = CUES["failure_message_chars"]
    for text in reversed(texts):
        padded = pad(text)
        if not has(padded, CUES["failure_words"]):
            continue
        quoted = [q.strip() for m in _QUOTED.finditer(text) if (q := m.group(1) or m.group(2)).strip()]
        if quoted:
            return quoted[0][:limit]
        if has(padded, CUES["handoff"]) or has(padded, CUES["handoff_alone"]) or has(padded, CUES["not_helped"]):
            continue  # asking for support, or saying it still fails: not the failure itself
        line = " ".join(text.split())
        return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " …"
    return None


def fill(name: str, facts: dict) -> str | None:
    """The value for one of the article's 'Need more help?' items, by the words it names."""
    lowered = name.lower()
    for kind, words in CUES["handoff_fill"].items():  # the first kind the item names decides
        if any(w in lowered for w in words):
            return facts.get(kind)
    return None
