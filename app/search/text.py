"""The words of a query and of the knowledge base, for lexical search: tokens, the question's
language, misspelt words fixed against the KB's vocabulary (``Spelling``), and agents' words
expanded into the article's (``Synonyms``, ``data/synonyms.yaml``). Used by
``app.search.retrieval`` and ``app.search.lexical``."""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+(?:['’][a-z]+)?")
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i if in is it its me my of on or "
    "our so that the their there this to was we what when where which who why will with you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased words and dotted codes; '550-5.1.1' gives '550' and '5.1.1'."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def _languages() -> dict[str, frozenset[str]]:
    from app._data import data_file

    return {lang: frozenset(str(w).lower() for w in words) for lang, words in data_file("app.search", "languages.yaml").items()}


_ENGLISH = _STOP | frozenset("is are the not be been any about into than then them they these those".split())


def language(text: str) -> str:
    """'en', or the code of the other language whose function words the text
    uses: at least two of them, and more than its English function words."""
    words = _WORD.findall(text.lower())
    english = sum(w in _ENGLISH for w in words)
    best, count = "en", 0
    for lang, stop in _languages().items():
        n = sum(w in stop for w in words)
        if n > count:
            best, count = lang, n
    return best if count >= 2 and count > english else "en"


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance with transpositions (optimal string alignment), or
    ``limit + 1`` once it is certain to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class Spelling:
    """Puts misspelt query words right, against the knowledge base's own words.

    A word is corrected only when it is neither a knowledge-base word nor a
    whole word of ``known`` (the encoder's vocabulary: real English words such
    as ``slack`` or ``colour`` stay as typed), has at least four letters, and
    one knowledge-base word is nearest to it: within 1 edit for words of four
    or five letters, 2 from six letters on (ties go to the word more
    documents use). Inflections of a known word (``bounces``) are left as
    typed."""

    MIN_LEN = 4
    SUFFIXES = ("s", "es", "ed", "d", "ing", "ly", "er")

    def __init__(self, documents: list[list[str]], known: set[str] | frozenset[str] = frozenset()):
        df: dict[str, int] = {}
        for doc in documents:
            for t in set(doc):
                if t.isalpha():
                    df[t] = df.get(t, 0) + 1
        self._df = df
        self._known = known
        self._cache: dict[str, str] = {}

    @classmethod
    def from_frequencies(cls, df: dict[str, int], known: set[str] | frozenset[str] = frozenset()) -> "Spelling":
        """From the knowledge base's words and how many documents use each."""
        self = cls([], known)
        self._df = {t: n for t, n in df.items() if t.isalpha()}
        return self

    def fix_word(self, word: str) -> str:
        if len(word) < self.MIN_LEN or not word.isalpha() or word in self._df or word in self._known:
            return word
        for suffix in self.SUFFIXES:  # an inflection of a known word ("bounces", "resending")
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= 3 and (stem in self._df or stem in self._known):
                return word
        if word not in self._cache:
            limit = 1 if len(word) < 6 else 2
            best, key = word, None
            for cand, df in self._df.items():
                d = _distance(word, cand, limit)
                if d <= limit and (key is None or (d, -df) < key):
                    best, key = cand, (d, -df)
            self._cache[word] = best
        return self._cache[word]

    def fix(self, text: str) -> str:
        """The text with its misspelt words replaced (case and codes kept)."""

        def sub(m: re.Match) -> str:
            w = m.group(0)
            fixed = self.fix_word(w.lower())
            return w if fixed == w.lower() else fixed

        return re.sub(r"[A-Za-z]+", sub, text)


class Synonyms:
    """Agents' words for the article's (``data/synonyms.yaml``): a question
    using them is searched as if it also said the article's words."""

    def __init__(self, entries: list[dict]):
        self._entries = [(re.compile(rf"\b(?:{e['words']})\b", re.IGNORECASE), str(e.get("means") or ""))
                         for e in entries]

    @classmethod
    def load(cls) -> "Synonyms":
        from app._data import data_file

        return cls(data_file("app.search", "synonyms.yaml") or [])

    def expand(self, text: str) -> str:
        taken: list[tuple[int, int]] = []
        extra: list[str] = []
        for pattern, means in self._entries:
            for m in pattern.finditer(text):
                if any(a < m.end() and m.start() < b for a, b in taken):
                    continue
                taken.append((m.start(), m.end()))
                if means and means not in extra and means.lower() not in text.lower():
                    extra.append(means)
        return f"{text} ({'; '.join(extra)})" if extra else text
