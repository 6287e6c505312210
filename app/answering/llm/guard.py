"""The guard: what the language model wrote is checked before anything of it is shown.

In order (the first rule that fails names the fallback; every check that fires is an intervention):

1. ``empty``: nothing but white space.
2. ``refused``: the model said it cannot answer ("I don't know", "I'm not sure", ...).
3. ``unknown_code``: every code-like token (``app.codes.find.find_codes``: the look-up's own
   reader) must be, or be part of, a code the answer holds as an exact match of the table
   (``550`` and ``5.1.1`` are parts of ``550-5.1.1``). An untabled code is never allowed: the
   model must not seem to explain what the table does not.
4. ``unsupported_sentence``: every sentence of at least ``MIN_WORDS`` content words must be
   close to some sentence of the cited passages and rows: the cosine of their embeddings
   (the answerer's embedding model) at least ``min_cosine``, or at least ``min_overlap`` of
   its content words found in them. Shorter sentences ("Hi Anna,", "Thanks!") make no claim.

The thresholds were chosen on the dev split only (``python -m app.answering.llm.measure
--calibrate``; the figures are in the README's "Language-model mode").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from app.codes.find import find_codes

MIN_COSINE = 0.55  # chosen on dev (README: "Language-model mode")
MIN_OVERLAP = 0.75  # (either passes a sentence)
MIN_WORDS = 4  # content words a sentence needs before it must be supported
CACHE = 4096  # reference sentences' vectors kept

REFUSAL = re.compile(
    r"\b(?:i\s+(?:do\s*n[o']?t|don['’]?t|dont)\s+know|i['’]?m\s+not\s+sure|i\s+(?:cannot|can['’]?t|am\s+unable\s+to)"
    r"\s+(?:answer|help\s+with\s+that|find)|(?:the\s+)?(?:article|passages?)\s+(?:does|do)\s+not\s+"
    r"(?:say|answer|mention|cover))\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)*_]*\s+|\n+")
_WORD = re.compile(r"[a-z][a-z'’]+")
_MARKUP = re.compile(r"^[\s>*#\-•\d.)]+|[*_`]+")
STOPWORDS = frozenset("""
a an the and or but if then than so of to in on at by for with from into about as is are was were be been being it
its this that these those there their they them you your yours we our us he she his her i me my can could will would
shall should may might must do does did done have has had not no nor also just only very any some all each other
such what which who whom whose when where why how here out up down over under again more most own same too please
let get got
""".split())


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences and lines, without list markers or emphasis."""
    out = []
    for part in _SENTENCE_END.split(text or ""):
        part = _MARKUP.sub("", part).strip()
        if part:
            out.append(part)
    return out


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower().replace("’", "'")) if w not in STOPWORDS and len(w) > 2]


def _stem(word: str) -> str:
    return word[:5]


def overlap(sentence: str, reference_words: set[str]) -> float:
    """The share of the sentence's content words (stemmed) that the reference has."""
    words = content_words(sentence)
    return sum(_stem(w) in reference_words for w in words) / len(words) if words else 1.0


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _parts(code: str) -> tuple[str | None, str | None]:
    reply, _, enhanced = code.partition("-")
    if not enhanced:
        return (None, reply) if "." in reply else (reply, None)
    return reply, enhanced


def code_allowed(found, allowed: Iterable[str]) -> bool:
    """Whether a found code is, or is part of, one of the ``allowed`` (normalised) codes."""
    for code in allowed:
        reply, enhanced = _parts(code)
        if (found.reply is None or found.reply == reply) and (found.enhanced is None or found.enhanced == enhanced):
            return True
    return False


@dataclass
class Verdict:
    fallback: str | None = None  # None: the text may be shown
    interventions: list[str] = field(default_factory=list)
    scores: list[tuple[str, float, float]] = field(default_factory=list)  # (sentence, best cosine, overlap)

    @property
    def ok(self) -> bool:
        return self.fallback is None


class Guard:
    """Checks a generated text against the answer's exact codes and its cited sentences."""

    def __init__(self, embed: Callable[[list[str]], list[list[float]]] | None, *, min_cosine: float = MIN_COSINE,
                 min_overlap: float = MIN_OVERLAP, min_words: int = MIN_WORDS):
        self.embed, self.min_cosine, self.min_overlap, self.min_words = embed, min_cosine, min_overlap, min_words
        self._cache: dict[str, list[float]] = {}

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            if len(self._cache) > CACHE:
                self._cache.clear()
            self._cache.update(zip(missing, self.embed(missing)))
        return [self._cache[t] for t in texts]

    def support(self, claims: list[str], reference: list[str]) -> list[tuple[str, float, float]]:
        """(sentence, best cosine to a reference sentence, content-word overlap) for each claim."""
        words = {_stem(w) for r in reference for w in content_words(r)}
        cosines = [0.0] * len(claims)
        if self.embed is not None and claims and reference:
            vectors = self._vectors(reference + claims)
            refs, mine = vectors[:len(reference)], vectors[len(reference):]
            cosines = [max(_cosine(v, r) for r in refs) for v in mine]
        return [(c, round(cos, 4), round(overlap(c, words), 4)) for c, cos in zip(claims, cosines)]

    def check(self, text: str, allowed_codes: Iterable[str], reference: Iterable[str]) -> Verdict:
        verdict = Verdict()
        if not (text or "").strip():
            verdict.fallback = "empty"
            verdict.interventions.append("empty")
            return verdict
        if REFUSAL.search(text):
            verdict.fallback = "refused"
            verdict.interventions.append("refused")
            return verdict
        allowed = list(allowed_codes)
        unknown = [f.code for f in find_codes(text) if not code_allowed(f, allowed)]
        verdict.interventions += [f"unknown_code:{c}" for c in unknown]
        claims = [s for s in sentences(text) if len(content_words(s)) >= self.min_words]
        reference = [s for r in reference for s in sentences(r)]
        verdict.scores = self.support(claims, reference)
        unsupported = [s for s, cos, ovl in verdict.scores if cos < self.min_cosine and ovl < self.min_overlap]
        verdict.interventions += [f"unsupported:{s[:60]}" for s in unsupported]
        if unknown:
            verdict.fallback = "unknown_code"
        elif unsupported:
            verdict.fallback = "unsupported_sentence"
        return verdict
