"""The pipelines compared by the eval, behind one small interface:
``predict(question, history=None) -> prediction dict`` (see ``evals.metrics``).

- ``bouncebot``: the project's answerer (look-up, hybrid retrieval, refusal),
  given the conversation's history when its ``ask`` accepts a ``history``;
- ``bouncebot-nohistory``: the same answerer, history dropped (the message
  alone), to show what the conversation adds;
- ``llm``: the same answerer in the language-model mode (``BOUNCEBOT_LLM=local``:
  ``app.answering.services.with_llm``), scored on the answer as shown; its
  prediction also has ``mode`` and ``llm`` (the answer's ``LLMReport`` as a dict)
  and ``unheld_codes`` (codes the shown model text names that the answer does
  not hold as exact: counted as false exact claims);
- ``bm25``: BM25 alone over the same documents, answer = top passage;
- ``dense``: dense (Chroma) search alone over the same documents, answer = top passage;
- ``textbook``: the LangChain tutorial pipeline (``evals.baselines``), answer = top chunk.

The baselines have no code look-up, no refusal and no conversation: they get
the message alone and always answer. A row counts as *claimed* by a baseline
when its meaning appears in the answer.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

from app.answering.contract import Turn
from app.errors import BadQuestion
from app.search.retrieval import HybridRetriever
from app.knowledge.articles import INTRO, load_articles

from .metrics import norm


def rows_claimed_by_text(answer: str, rows: dict[str, tuple[str, str]]) -> list[str]:
    a = norm(answer)
    return sorted(code for code, (meaning, _) in rows.items() if norm(meaning) in a)


def accepts_history(ask) -> bool:
    """Whether ``ask`` takes a ``history`` argument (the conversation logic may not be there yet)."""
    try:
        params = inspect.signature(ask).parameters
    except (TypeError, ValueError):
        return False
    return "history" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def unheld_codes(answer: dict) -> list[str]:
    """The codes the shown model text names that are not (part of) one of the answer's
    exact matches: none when the model's text is not shown (or the mode is off)."""
    report = answer.get("llm") or {}
    if not (report.get("used") and report.get("generated")):
        return []
    from app.answering.contract import Answer
    from app.answering.llm.guard import code_allowed
    from app.answering.llm.prompt import exact_codes
    from app.codes.find import find_codes

    exact = exact_codes(Answer.model_validate(answer))
    return [f.code for f in find_codes(report["generated"]) if not code_allowed(f, exact)]


NO_CONVERSATION = {"intent": None, "carried": [], "carried_claims": [], "draft": None, "handoff": None}


class BouncebotPipeline:
    """The project's answerer. With ``use_history`` (and an ``ask`` that accepts
    it) the case's history goes with the message; without, the message alone."""

    def __init__(self, answerer, use_history: bool = True, name: str | None = None):
        self.answerer = answerer
        self.use_history = use_history
        self.name = name or ("bouncebot" if use_history else "bouncebot-nohistory")
        self.history_passed = use_history and accepts_history(answerer.ask)

    def predict(self, question: str, history: list[dict] | None = None) -> dict:
        t = time.perf_counter()
        try:
            if self.history_passed:
                d = self.answerer.ask(question, history=[Turn(**h) for h in history or []]).to_dict()
            else:
                d = self.answerer.ask(question).to_dict()
        except BadQuestion as e:
            d = {"answer": str(e), "answered": False, "codes": [], "sources": []}
        seconds = time.perf_counter() - t
        cited = [s["section"] for s in d["sources"]]
        hits = self.answerer.retriever.search(question, k=3).hits if question.strip() else []
        # what the answer cites comes first, then what retrieval ranked
        ranked = list(dict.fromkeys(cited + [h.metadata["section"] for h in hits]))
        carried = [c for c in d["codes"] if c.get("from_history")]
        return {
            "answer": d["answer"],
            "answered": d["answered"],
            "claimed": [c["row"]["code"] for c in d["codes"] if c["match"] == "exact"],
            "codes_found": len(d["codes"]),
            "codes": [(c["code"], c["match"]) for c in d["codes"]],
            "cited": cited,
            "ranked": ranked,
            "sources": [f"{s['section']}: {s['text'][:120]}" for s in d["sources"]],
            "seconds": seconds,
            "intent": d.get("intent"),
            "carried": [c["code"] for c in carried],
            "carried_claims": [(c["code"], c["row"]["code"]) for c in carried if c["match"] == "exact" and c.get("row")],
            "draft": d.get("draft"),
            "handoff": d.get("handoff"),
            "mode": d.get("mode"),
            "llm": d.get("llm"),
            "unheld_codes": unheld_codes(d),
        }


class RetrieverOnlyPipeline:
    """Top passage of one retrieval method, no look-up, no refusal."""

    def __init__(self, name: str, retriever: HybridRetriever, rows):
        self.name = name
        self.retriever = retriever
        self.rows = rows

    def predict(self, question: str, history: list[dict] | None = None) -> dict:  # history ignored
        t = time.perf_counter()
        hits = self.retriever.search(question, k=3).hits
        seconds = time.perf_counter() - t
        answer = hits[0].text if hits else ""
        sections = [h.metadata["section"] for h in hits]
        return {
            "answer": answer,
            "answered": bool(hits),
            "claimed": rows_claimed_by_text(answer, self.rows),
            "codes_found": 0,
            "codes": [],
            "cited": sections[:1],
            "ranked": sections,
            "sources": [f"{h.metadata['section']}: {h.text[:120]}" for h in hits],
            "seconds": seconds,
        } | NO_CONVERSATION


class TextbookAdapter:
    """The textbook pipeline; its chunks carry no section, so each is placed
    by its offset in the article file."""

    name = "textbook"

    def __init__(self, kb_dir: Path, rows):
        from .baselines import TextbookPipeline

        self.pipeline = TextbookPipeline(kb_dir)
        self.rows = rows
        self._headings: dict[str, list[tuple[int, str]]] = {}
        for a in load_articles(kb_dir):
            text = (Path(kb_dir) / a.path).read_text(encoding="utf-8")
            marks = [(m.start(), m.group(1).strip()) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, re.M)]
            self._headings[Path(a.path).name] = marks

    def section_of(self, doc) -> str:
        start = doc.metadata.get("start_index", 0)
        section = INTRO
        for offset, heading in self._headings.get(doc.metadata.get("source", ""), []):
            if offset <= start:
                section = heading
        return section

    def predict(self, question: str, history: list[dict] | None = None) -> dict:  # history ignored
        t = time.perf_counter()
        docs = self.pipeline.retrieve(question, k=3)
        seconds = time.perf_counter() - t
        answer = docs[0].page_content if docs else ""
        sections = [self.section_of(d) for d in docs]
        return {
            "answer": answer,
            "answered": bool(docs),
            "claimed": rows_claimed_by_text(answer, self.rows),
            "codes_found": 0,
            "codes": [],
            "cited": sections[:1],
            "ranked": sections,
            "sources": [f"{s}: {d.page_content[:120]}" for s, d in zip(sections, docs)],
            "seconds": seconds,
        } | NO_CONVERSATION
