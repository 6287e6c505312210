"""Refused questions grouped by similarity: the questions the article keeps failing.

``group(items, embed)``: ``items`` are ``(id, question)`` pairs, newest first; ``embed`` turns texts
into vectors (the MiniLM embedder's ``embed_documents``, built once and passed in). Without it the
similarity is the overlap of the questions' content words (Jaccard), which is cruder but needs no model.

The clustering is greedy by density, so it needs no number of groups and hardly depends on the
order of the rows (only ties go to the newest question): identical questions (same words, any case) are one point with a weight; the
point with the most weighted neighbours at or above the threshold becomes a group's centre, and
takes every point still free within the threshold of it; repeat until every point is in a group.
The centre is the group's most central question, and its label (shortened). At most
``MAX_POINTS`` distinct questions (the newest) are grouped; older ones beyond that are left out.

The thresholds were chosen on the seeded log and on the eval dev split's refusal cases
(``python -m evals.insights_grouping`` prints the sweep): see ``EMBED_THRESHOLD``.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

# MiniLM cosine at which two refused questions count as one request. Swept 0.20..0.80 by
# ``python -m evals.insights_grouping`` over the dev split's refusals and the seed's paraphrases of
# them (59 questions, 31 requests, labelled by hand): 0.60 has the best pair F1 (0.52; English
# only 0.72) at a pair precision of 0.95; at 0.50 precision falls to 0.61 (unrelated requests
# merged), at 0.70 recall to 0.25. A wrong merge hides a content gap under another label, a missed
# one only shows two rows, so precision comes first. MiniLM is an English model: the same request
# asked in Spanish or Italian seldom joins its English group.
EMBED_THRESHOLD = 0.60
# Jaccard of content words, for the model-free fallback (same sweep): 0.30 keeps precision at 1.0
# (recall 0.19; 0.25 reaches recall 0.27 at precision 0.70).
TOKEN_THRESHOLD = 0.30
MAX_POINTS = 2000  # distinct questions grouped (the newest); the matrix is MAX_POINTS squared floats
LABEL_CHARS = 72
EXAMPLES = 3

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_STOP = frozenset("""
a an and are as at be by can could do does did for from has have how i if in is it its me my of on or our so
that the their there this to was we what whats what's when where which who why will with you your not no any
all get got just please hi hello hey thanks thank ok us they them one would should there's i'm im
""".split())


def tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower())) or text.strip().lower()


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    one_line = " ".join(text.split())
    if len(one_line) <= limit:
        return one_line
    cut = one_line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:-") + "…"


def _embedding_similarity(texts: list[str], embed: Callable) -> np.ndarray:
    v = np.asarray(embed(texts), dtype=np.float64)
    if v.ndim != 2 or len(v) != len(texts):
        raise ValueError("embed must return one vector per text")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    return v @ v.T


def _token_similarity(texts: list[str]) -> np.ndarray:
    """Jaccard of the texts' content-word sets, all pairs: the intersections are counted word by
    word over the texts holding it (a word in one text only adds nothing)."""
    sets = [set(tokens(t)) for t in texts]
    holders: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        for w in s:
            holders.setdefault(w, []).append(i)
    inter = np.zeros((len(sets), len(sets)), dtype=np.float64)
    for docs in holders.values():
        if len(docs) > 1:
            inter[np.ix_(docs, docs)] += 1.0
    size = np.array([len(s) for s in sets], dtype=np.float64)
    union = size[:, None] + size[None, :] - inter
    sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    np.fill_diagonal(sim, 1.0)
    return sim


class CachedEmbed:
    """``embed`` with the vectors of texts already seen kept (up to ``size``): the insights page
    groups the same refused questions at every visit, and embeds only the new ones."""

    def __init__(self, embed: Callable, size: int = 20000):
        self.embed, self.size = embed, size
        self._vectors: dict[str, list[float]] = {}

    def __call__(self, texts: list[str]) -> list[list[float]]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            for t, v in zip(todo, self.embed(todo)):
                if len(self._vectors) >= self.size:
                    self._vectors.pop(next(iter(self._vectors)))
                self._vectors[t] = list(v)
        return [self._vectors[t] if t in self._vectors else list(self.embed([t])[0]) for t in texts]


def similarity(texts: list[str], embed: Callable | None = None) -> np.ndarray:
    return _embedding_similarity(texts, embed) if embed is not None else _token_similarity(texts)


def clusters(sim: np.ndarray, weights: Sequence[int], threshold: float) -> list[tuple[int, list[int]]]:
    """(centre, members) for each group, members most similar to the centre first; greedy by density."""
    n = len(weights)
    w = np.asarray(weights, dtype=np.float64)
    near = sim >= threshold
    np.fill_diagonal(near, True)
    free = np.ones(n, dtype=bool)
    score = near.astype(np.float64) @ w  # each point's weighted free neighbours, kept up to date
    out = []
    while free.any():
        masked = np.where(free, score, -1.0)
        # the densest free point; ties: the heavier, then the first (newest) one
        tied = np.flatnonzero(masked == masked.max())
        centre = int(tied[np.argmax(w[tied])])  # argmax: the first of the heaviest
        members = [int(j) for j in np.flatnonzero(near[centre] & free)]
        members.sort(key=lambda j: (j != centre, -sim[centre, j], j))
        free[members] = False
        score -= w[members] @ near[members]  # near is symmetric: rows, not strided columns
        out.append((centre, members))
    return out


def group(items: Sequence[tuple[int, str]], embed: Callable | None = None,
          threshold: float | None = None) -> list[dict]:
    """Refused questions as groups: ``{"label", "count", "examples", "ids"}``, largest first."""
    threshold = (EMBED_THRESHOLD if embed is not None else TOKEN_THRESHOLD) if threshold is None else threshold
    points: dict[str, list] = {}  # key -> [first text seen (newest), ids]
    for log_id, question in items:
        key = _key(question)
        if key not in points and len(points) >= MAX_POINTS:
            continue
        points.setdefault(key, [question, []])[1].append(log_id)
    if not points:
        return []
    texts = [p[0] for p in points.values()]
    ids = [p[1] for p in points.values()]
    sim = similarity(texts, embed)
    groups = []
    for centre, members in clusters(sim, [len(i) for i in ids], threshold):
        member_ids = sorted((i for m in members for i in ids[m]), reverse=True)
        groups.append({"label": shorten(texts[centre]), "count": len(member_ids),
                       "examples": [texts[m] for m in members[:EXAMPLES]], "ids": member_ids})
    groups.sort(key=lambda g: (-g["count"], g["label"]))
    return groups
