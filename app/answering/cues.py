"""The words of an agent's message, as the conversation rules read them.

Messages are compared as padded lower-case word strings (``pad``), so a cue
phrase matches on word boundaries; the cue phrases themselves are data
(``data/conversation.yaml``, ``data/smalltalk.yaml``). Typing slips on the cue
words are undone before they are matched (``words_near``).
"""

from __future__ import annotations

import re

from app._data import data_file

CUES = data_file("app.answering", "conversation.yaml")
SMALL_TALK = data_file("app.answering", "smalltalk.yaml")
_WORD = re.compile(r"\d+(?:\.\d+)+|[^\W_]+(?:'[^\W_]+)?")


def pad(text: str) -> str:
    """Lower-case words joined by single spaces, with a space either side (phrases match on word boundaries)."""
    return " " + " ".join(_WORD.findall(text.lower().replace("’", "'"))) + " "


def has(padded: str, phrases) -> bool:
    return any(f" {p} " in padded for p in phrases)


def strip(padded: str, phrases) -> str:
    for p in sorted(phrases, key=len, reverse=True):
        while f" {p} " in padded:
            padded = padded.replace(f" {p} ", " ")
    return padded


_CUE_WORDS = frozenset(p for key in ("refer_back", "continue_start", "next_step") for p in CUES[key] if " " not in p)
STOP = frozenset(CUES["stop_words"]) | _CUE_WORDS | frozenset(CUES["ordinals"])
# The cue words agents mistype: a word one typing slip away from one of them ("waht", "shoud") is
# read as it ("what", "should") before the cues are matched.
_TYPO_TARGETS = sorted({str(w) for w in CUES["typo_words"] if len(str(w)) >= 4})


def one_slip(a: str, b: str) -> bool:
    """True when ``a`` is ``b`` with one letter dropped, added, changed, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def words_near(padded: str, keep) -> str:
    """``padded`` with each word neither known (``keep``) nor a cue word, but one slip away from a
    cue word or stop word, read as that word (the first in alphabetical order when several are)."""
    out = []
    for w in padded.split():
        if len(w) >= 3 and w.isalpha() and w not in STOP and w not in keep(w):
            near = [t for t in _TYPO_TARGETS if (t[0] == w[0] or t[:2] == w[1::-1]) and one_slip(w, t)]
            if near:
                w = near[0]
        out.append(w)
    return " " + " ".join(out) + " "


def draft_asked(padded: str) -> bool:
    """A text for the customer asked for: a draft phrase, or a verb of writing followed closely by a
    kind of message; never with the words of another request (a channel's setup, a poem)."""
    if has(padded, CUES["not_draft"]):
        return False
    if has(padded, CUES["draft"]):
        return True
    words = padded.split()
    verbs, kinds, reach = set(CUES["draft_verbs"]), set(CUES["draft_messages"]), CUES["draft_reach"]
    return any(w in verbs and any(x in kinds for x in words[i + 1:i + 1 + reach]) for i, w in enumerate(words))


def stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ure", "ures"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word
