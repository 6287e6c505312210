"""The help centre's other articles (the titles of ``other_articles.yaml`` the KB does not hold):
a question nearer one of them than to any passage of the KB belongs to that article."""

from __future__ import annotations

import re
import threading

from app.search.multilingual_space import e5_on_minilm_scale, embed_cached, multilingual_embedder


class OtherArticles:
    """The help centre's other article titles, embedded once. A question
    closer to one of them than to any passage of the KB (by more than the
    margin) belongs to that article, not to this knowledge base. Titles of
    articles the KB holds are no other article (:meth:`without`)."""

    @staticmethod
    def without(titles: list[str], kb_titles: list[str]) -> list[str]:
        """``titles`` less those of articles in the KB, compared normalised
        (case, accents' forms, punctuation and spacing ignored), each once."""
        import unicodedata

        def norm(t: str) -> str:
            return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", t).casefold()).split())

        own = {norm(t) for t in kb_titles}
        out: dict[str, str] = {}
        for t in titles:
            if norm(t) not in own:
                out.setdefault(norm(t), t)
        return list(out.values())

    def __init__(self, titles: list[str], embedder, multilingual=multilingual_embedder):
        import numpy as np

        self.titles = list(titles)
        self._cache_dir = getattr(embedder, "model_dir", None)
        self._matrix = np.array(embed_cached(embedder, self.titles, self._cache_dir)) if self.titles else None
        self._multilingual = multilingual
        self._ml_matrix = None
        self._lock = threading.Lock()

    def closest(self, vector) -> tuple[str | None, float]:
        """The nearest title and its similarity, in the query vector's space
        (a multilingual vector's similarity on MiniLM's scale, like its
        passages')."""
        import numpy as np

        if self._matrix is None or not len(vector):
            return None, 0.0
        if getattr(vector, "space", "minilm") == "multilingual" and self._multilingual is not None:
            with self._lock:
                if self._ml_matrix is None:
                    self._ml_matrix = embed_cached(self._multilingual(), self.titles, self._cache_dir)
            sims = self._ml_matrix @ np.asarray(vector, dtype=np.float32)
            j = int(sims.argmax())
            return self.titles[j], e5_on_minilm_scale(sims[j])
        sims = self._matrix @ np.asarray(vector)
        j = int(sims.argmax())
        return self.titles[j], float(sims[j])
