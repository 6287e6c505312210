"""Focused answers: the sentences and list items of a passage that answer the question.

``focus(question, passage)`` returns part of ``passage``, verbatim: whole sentences and
whole list items of the article, in the article's order, never rewritten and never cut
mid-sentence, within ``max_words`` (one sentence longer than that is returned alone).
The whole passage stays what the source cites; this is what the answer quotes first.

How the parts are chosen (general signals, no rules about this article):

- The passage is cut into units: sentences of its paragraphs, items of its lists, and
  blocks that are never cut (tables, headings).
- A list is kept whole, with its lead-in line (a paragraph ending in ``:`` just before
  it): its items answer together (steps, checks, what to include). A question asking
  what to do ("what are my options?", "now what?") favours a list that matches. Only a
  list longer than the budget is trimmed: its lead-in and the first items that fit.
- A sentence that leans on the one before it ("This prevents...", "For example, ...",
  a short lead-in like "If the error continues:") brings that one along.
- Units are scored by lexical overlap with the question (``app.search.retrieval.tokenize``,
  lightly stemmed, weighted by how rare a word is in the passage) and, when an ``embed``
  function is given (``embed(list[str]) -> vectors``, e.g. the index's embedder's
  ``embed_documents``), by cosine similarity to the question. The best group always
  leads; others follow when they score at least ``KEEP_SHARE`` of it and fit the budget,
  and so does the sentence right after a quoted one when it matches too.
- Nothing matches at all: the passage's leading units, as far as the budget goes.

Table rows are not passed here: a row is quoted whole, always.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from app.knowledge.units import cut
from app.search.text import tokenize

__all__ = ["focus", "focus_many", "units", "MAX_WORDS", "KEEP_SHARE"]

MAX_WORDS = 120
KEEP_SHARE = 0.55  # a further group is quoted when it scores at least this share of the best one
NEXT_SHARE = 0.2  # the sentence after a quoted one goes with it when it scores at least this share of the best
EMBED_WEIGHT = 0.3  # share of the dense similarity in a unit's score, when an embedder is given
LIST_BONUS = 0.35  # a what-to-do question that lands on a list: the list is the answer

# A sentence that cannot stand alone: it points back at the one before it.
_LEANS_BACK = re.compile(r"^(?:this|these|that|those|it|they|such|for example|for instance|also|otherwise|then|"
                         r"in (?:this|that|that) case|when this|if so|if not)\b", re.I)
_LEAD_IN_LEANS = 6  # a lead-in of at most this many words ("If the error continues:") leans back too
# A question that asks what to do is answered by a whole list of steps.
_WHAT_TO_DO = re.compile(r"\b(?:options?|steps?|tips?|checks?|check on|try|fix|troubleshoot\w*|include|"
                         r"what (?:now|next|else)|now what|what (?:should|can|do|must) (?:i|we|you)|"
                         r"how (?:do|can|should|would) (?:i|we|you))\b", re.I)


@dataclass
class Unit:
    text: str
    block: int  # index of the paragraph, list or table it belongs to
    kind: str  # "sentence", "item", "lead-in" or "whole"
    group: int = -1
    leans_on: int | None = None  # index of the unit it needs before it
    passage: int = 0  # which of the passages given (focus_many)
    words: int = 0
    score: float = 0.0


@dataclass
class _Group:
    members: list[int] = field(default_factory=list)
    is_list: bool = False


# ------------------------------------------------------------------ cutting a passage into units

def units(passage: str) -> tuple[list[Unit], list[str]]:
    """The passage's units (``app.knowledge.units``) and each block's kind ("paragraph", "list", "whole")."""
    cuts, kinds = cut(passage)
    out = [Unit(text, block, kind) for text, block, kind in cuts]
    for u in out:
        u.words = len(u.text.split())
    return out, kinds


def _groups(us: list[Unit], kinds: list[str]) -> list[_Group]:
    """Lists with their lead-in; every other unit alone. Sets each unit's group and what it leans on."""
    groups: list[_Group] = []
    for i, u in enumerate(us):
        previous = us[i - 1] if i else None
        if u.kind == "item" and previous is not None and previous.block in (u.block, u.block - 1) and \
                previous.group >= 0 and groups[previous.group].is_list and \
                (previous.kind in ("item", "lead-in") or previous.text.endswith(":")):
            u.group = previous.group
        elif u.kind == "item" and previous is not None and previous.block == u.block - 1 and \
                previous.text.endswith(":"):
            previous.kind = "lead-in"  # the paragraph's last sentence introduces this list
            groups[previous.group].is_list = True
            u.group = previous.group
        else:
            groups.append(_Group(is_list=u.kind in ("item", "lead-in")))
            u.group = len(groups) - 1
        groups[u.group].members.append(i)
        if i and u.kind in ("sentence", "lead-in") and (
                _LEANS_BACK.match(u.text) or (u.text.endswith(":") and u.words <= _LEAD_IN_LEANS)):
            u.leans_on = i - 1
    # A lead-in that leans back ("For example:", "If the error continues:") takes the sentence it
    # leans on into its list: "make sure the issue has been fixed. For example: - ..." is one answer.
    for g in groups:
        first = us[g.members[0]]
        if g.is_list and first.kind == "lead-in" and first.leans_on is not None:
            j = first.leans_on
            before = groups[us[j].group]
            if not before.is_list and before.members == [j]:
                before.members = []
                g.members.insert(0, j)
                first.leans_on = None
                us[j].kind = "lead-in"
    groups = [g for g in groups if g.members]
    for gi, g in enumerate(groups):
        for i in g.members:
            us[i].group = gi
    return groups


# ------------------------------------------------------------------ scoring

_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ures", "ure", "ies", "ied", "ed", "es", "al", "ly", "s", "e")


def _stem(word: str) -> str:
    if "." in word or word.isdigit():
        return word  # codes such as 5.7.1 stay as they are
    word = word.replace("’", "'").split("'")[0]
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def _terms(text: str) -> set[str]:
    return {_stem(t) for t in tokenize(text)}


def _cosines(first, rest) -> list[float]:
    """The cosine of ``first`` with each of ``rest`` (0.0 against a zero vector), in float64."""
    import numpy as np  # here: a code look-up never focuses a passage

    a = np.asarray(first, dtype=np.float64)
    m = np.asarray(rest, dtype=np.float64).reshape(len(rest), -1)
    norms = np.linalg.norm(m, axis=1) * np.linalg.norm(a)
    dots = m @ a
    return [float(d / n) if n else 0.0 for d, n in zip(dots, norms)]


def _score(question: str, us: list[Unit], embed: Callable[[list[str]], Sequence] | None) -> None:
    q = _terms(question)
    terms = [_terms(u.text) for u in us]
    n = len(us)
    df: dict[str, int] = {}
    for ts in terms:
        for t in ts:
            df[t] = df.get(t, 0) + 1
    lexical = []
    for ts in terms:
        shared = q & ts
        lexical.append(sum(math.log(1 + (n + 1) / (df[t] + 0.5)) for t in shared) / math.sqrt(1 + len(ts) / 8))
    top = max(lexical, default=0.0)
    lex = [x / top if top > 0 else 0.0 for x in lexical]
    dense = [0.0] * n
    if embed is not None and n > 1:  # one unit: nothing to choose between, whatever its cosine
        vectors = list(embed([question] + [u.text for u in us]))
        sims = _cosines(vectors[0], vectors[1:])
        lo, hi = min(sims), max(sims)
        dense = [(s - lo) / (hi - lo) if hi > lo else 0.0 for s in sims]
        weight = EMBED_WEIGHT if top > 0 else 1.0
    else:
        weight = 0.0
    for u, x, d in zip(us, lex, dense):
        u.score = (1 - weight) * x + weight * d


def _what_to_do(question: str) -> bool:
    return bool(_WHAT_TO_DO.search(question))


# ------------------------------------------------------------------ choosing

def _needed(us: list[Unit], groups: list[_Group], g: int) -> list[int]:
    """Group ``g`` and the groups it leans on, first to last."""
    order = [g]
    while True:
        leans = us[groups[order[0]].members[0]].leans_on
        if leans is None or us[leans].group in order:
            return order
        order.insert(0, us[leans].group)


def _render(us: list[Unit], kinds: list[str], chosen: set[int]) -> str:
    blocks: dict[int, list[Unit]] = {}
    for i in sorted(chosen):
        blocks.setdefault(us[i].block, []).append(us[i])
    out = []
    for b, members in sorted(blocks.items()):
        if kinds[b] == "paragraph":
            out.append(" ".join(u.text for u in members))
        else:  # a list (lead-in on its own line when it shares the block) or a whole block
            out.append("\n".join(u.text for u in members))
    return "\n\n".join(out)


def _words(us: list[Unit], chosen: set[int]) -> int:
    return sum(us[i].words for i in chosen)


def _group_scores(question: str, us: list[Unit], groups: list[_Group]) -> list[float]:
    what_to_do = _what_to_do(question)
    scores = []
    for g in groups:
        base = max(us[i].score for i in g.members)
        items = [us[i].score for i in g.members if us[i].kind == "item"]
        if g.is_list and items:  # a list answers as a whole: its lead-in and how much of it matches
            lead = max((us[i].score for i in g.members if us[i].kind == "lead-in"), default=0.0)
            base = max(base, (lead + sum(items) / len(items)) / 1.5)
            if what_to_do and base > 0:
                base += LIST_BONUS
        scores.append(base)
    return scores


def _trim(us: list[Unit], group: _Group, room: int) -> set[int]:
    """A group over the budget: a list keeps its lead-in(s) and the items that fit, in order (at
    least one); anything else, its first sentence, whole (never cut, even when longer)."""
    if not group.is_list:
        return {group.members[0]}
    keep = {i for i in group.members if us[i].kind != "item"}
    for i in group.members:
        if us[i].kind == "item":
            if any(us[j].kind == "item" for j in keep) and _words(us, keep | {i}) > room:
                break
            keep.add(i)
    return keep


def _choose(question: str, us: list[Unit], groups: list[_Group], max_words: int, room: int) -> set[int]:
    """The units to quote: the best group first, whole when it is within ``max_words`` (else
    trimmed to it), then every group scoring at least KEEP_SHARE of it that fits in ``room``, each
    with what it leans on; then the sentence after a quoted one when it matches the question too."""
    scores = _group_scores(question, us, groups)
    ranked = sorted(range(len(groups)), key=lambda g: (-scores[g], g))
    best = scores[ranked[0]] if ranked else 0.0
    chosen: set[int] = set()

    def take(g: int, limit: int) -> bool:
        need = set(groups[g].members)
        for extra in _needed(us, groups, g)[:-1]:
            if _words(us, chosen | need | set(groups[extra].members)) <= limit:
                need |= set(groups[extra].members)
        if _words(us, chosen | need) <= limit:
            chosen.update(need)
            return True
        return False

    if best <= 0:  # nothing matches: the passage's lead, as far as the budget goes
        for g in range(len(groups)):
            if _words(us, chosen | set(groups[g].members)) > max(room, 1):
                break
            chosen.update(groups[g].members)
        if not chosen and groups and not take(0, max_words):
            chosen.update(_trim(us, groups[0], max_words))
        return chosen
    for rank, g in enumerate(ranked):
        if rank == 0:
            if not take(g, max(room, min(max_words, _words(us, set(groups[g].members))))):
                chosen.update(_trim(us, groups[g], max_words))
            continue
        if scores[g] < KEEP_SHARE * best:
            break
        if not any(i in chosen for i in groups[g].members):
            take(g, room)
    for i in sorted(chosen):
        j = i + 1
        while j < len(us) and j not in chosen and us[j].kind == "sentence" and us[j].block == us[i].block and \
                us[j].score >= NEXT_SHARE * best and _words(us, chosen | {j}) <= room:
            chosen.add(j)
            j += 1
    return chosen


def _prepare(passages: Sequence[str]) -> tuple[list[Unit], list[list[str]], list[_Group]]:
    """Every passage's units and groups, pooled: unit and group indices run over all of them."""
    pooled: list[Unit] = []
    kinds: list[list[str]] = []
    groups: list[_Group] = []
    for p, passage in enumerate(passages):
        us, ks = units(passage)
        gs = _groups(us, ks)
        offset, goffset = len(pooled), len(groups)
        for u in us:
            u.passage = p
            u.group += goffset
            if u.leans_on is not None:
                u.leans_on += offset
        for g in gs:
            g.members = [i + offset for i in g.members]
        pooled += us
        kinds.append(ks)
        groups += gs
    return pooled, kinds, groups


def focus_many(question: str, passages: Sequence[str], *, max_words: int = MAX_WORDS,
               embed: Callable[[list[str]], Sequence] | None = None) -> list[str]:
    """``focus`` over the passages of one answer (best first) sharing one budget: the first gets what
    answers in it, each further one its best part (a sentence, or a list whole: never a list cut
    for coming later) and whatever else still fits. One string per passage, in their order."""
    out: list[str] = []
    left = max_words
    for passage in passages:
        out.append(_focus(question, passage, max_words, max(left, 0), embed))
        left -= len(out[-1].split())
    return out


def _focus(question: str, passage: str, max_words: int, room: int, embed) -> str:
    us, kinds, groups = _prepare([passage])
    if not us:
        return passage.strip()
    _score(question, us, embed)
    return _render(us, kinds[0], _choose(question, us, groups, max_words, room))


def focus(question: str, passage: str, *, max_words: int = MAX_WORDS,
          embed: Callable[[list[str]], Sequence] | None = None) -> str:
    """The sentences and list items of ``passage`` that answer ``question``, verbatim, in the
    passage's order, at most ``max_words`` words (unless one sentence alone is longer).

    ``embed``: an optional sentence-embedding function (``embed(list[str]) -> vectors``), e.g.
    ``Embedder.embed_documents``; without one, lexical overlap alone decides. A passage with no
    sentence at all (empty) comes back as it is."""
    return _focus(question, passage, max_words, max_words, embed)
