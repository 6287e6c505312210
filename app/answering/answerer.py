"""Compose answers (default mode: no language model).

- Each code that matches a table row exactly gets the row's code, meaning and
  what-you-can-do, word for word.
- A code the table lacks is said to be missing from the table; no meaning is
  stated for it.
- Otherwise the most relevant passages of the article are quoted with their
  citations; when nothing is relevant enough, the answer says "I don't know"
  (``answered: false``) and points to the article's support contact.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Callable


from app.knowledge.articles import Article, ErrorRow
from app.knowledge.chunks import row_text

from app._data import data_file
from app.errors import EmptyQuestion, NotText, QuestionTooLong, SearchUnavailable
from app.codes.table import CodeMatch, CodeTable, Limits

WORDING = data_file("app.answering", "wording.yaml")
RELATED_SCORE = 0.8  # quote further passages scoring at least this share of the best one


@dataclass(frozen=True)
class Support:
    """The article's own 'get more help' section, quoted on refusals."""

    article: str
    section: str
    url: str
    text: str

    @classmethod
    def from_articles(cls, articles: list[Article]) -> "Support | None":
        for a in articles:
            for s in reversed(a.sections):
                if any(w in s.heading.lower() for w in ("help", "support", "contact")):
                    text = "\n\n".join(b.text for b in s.blocks)
                    return cls(a.title, s.heading, a.section_url(s), text)
        return None


@dataclass
class Answer:
    question: str
    answer: str
    answered: bool
    codes: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    recipients: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _severity(s: str) -> str:
    return WORDING["severity_labels"].get(s, s)


def _row_source(row: ErrorRow) -> dict:
    return {"article": row.article, "section": row.section, "url": row.url, "text": row_text(row), "score": 1.0}


def _limits_notice(limits: Limits) -> list[str]:
    """The sentences saying which cap cut the look-up short; [] when none did."""
    notes = []
    if limits.recipients_examined < limits.recipients_found:
        notes.append(WORDING["limits_recipients"].format(
            examined=limits.recipients_examined, found=limits.recipients_found))
    if limits.codes_examined < limits.codes_found:
        notes.append(WORDING["limits_codes"].format(examined=limits.codes_examined, found=limits.codes_found))
    return [" ".join(notes)] if notes else []


def once(factory: Callable[[], object]) -> Callable[[], object]:
    """A thread-safe lazy value: ``factory()`` runs on the first call only."""
    lock, box = threading.Lock(), []

    def get():
        if not box:
            with lock:
                if not box:
                    box.append(factory())
        return box[0]

    get.peek = lambda: box[0] if box else None  # type: ignore[attr-defined]  # the value, if built; never builds
    return get


class Answerer:
    def __init__(
        self,
        table: CodeTable,
        retriever_provider: Callable[[], object],
        support: Support | None = None,
        top_k: int = 3,
        min_similarity: float = 0.33,
        max_question_bytes: int = 200 * 1024,
        other_articles=None,
        off_topic_margin: float = 0.08,
    ):
        self.table = table
        self._retriever = once(retriever_provider)
        self.support = support
        self.top_k = top_k
        self.min_similarity = min_similarity
        self.max_question_bytes = max_question_bytes
        self._other_articles = once(other_articles) if other_articles else None  # built on first use
        self.off_topic_margin = off_topic_margin

    @property
    def retriever(self):
        return self._retriever()

    def retriever_if_open(self):
        """The retriever when the index is already open, else None (never waits on the store)."""
        return self._retriever.peek()

    def check(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise EmptyQuestion()
        try:
            size = len(question.encode("utf-8"))
        except UnicodeEncodeError:
            raise NotText() from None
        if size > self.max_question_bytes:
            raise QuestionTooLong(size, self.max_question_bytes)
        return question

    def ask(self, question: str) -> Answer:
        question = self.check(question)
        analysis = self.table.analyse(question)
        matches, recipients = analysis
        parts: list[str] = []
        sources: list[dict] = []
        for m in matches:
            if m.exact:
                parts.append(self._render_exact(m))
                if not any(s["text"] == row_text(m.row) for s in sources):
                    sources.append(_row_source(m.row))
            else:
                parts.append(self._render_untabled(m))
        parts.extend(_limits_notice(analysis.limits))  # a cap cut the look-up short: say so
        answered = bool(sources)
        if not any(m.exact for m in matches):
            # No exact row: quote the article. With an untabled code in the
            # question, table rows are left out so no row reads as its meaning.
            kinds = ("section",) if matches else None
            try:
                passages, other = self._passages(question, kinds)
            except SearchUnavailable as e:
                if not matches:
                    raise  # nothing could be answered: the caller says search is unavailable (503)
                passages, other = [], None  # the codes' part stands; say why no passages follow
                parts.append(WORDING["search_unavailable"].format(problem=e.problem))
            if passages:
                intro = WORDING["passages_intro_after_codes"] if matches else WORDING["passages_intro"].format(
                    article=passages[0][0]["article"]
                )
                parts.append(intro)
                parts.extend(md for _, md in passages)
                sources.extend(src for src, _ in passages)
                answered = True
            elif not matches:
                parts.append(self._dont_know(other))
            else:
                parts.append(self._support_block())
        return Answer(
            question, "\n\n".join(parts), answered, [m.as_contract() for m in matches], sources,
            [r.to_dict() for r in recipients],
        )

    # ------------------------------------------------------------------ pieces

    def _render_exact(self, m: CodeMatch) -> str:
        row = m.row
        via = WORDING["exact_via"].format(row_code=row.code) if m.found.code != row.code else ""
        head = WORDING["exact_heading"].format(
            code=m.found.code, via=via, severity_label=_severity(m.found.severity), section=row.section, url=row.url
        )
        body = f"**{WORDING['meaning_label']}:** {row.meaning}\n\n**{WORDING['action_label']}:** {row.action}"
        return head + "\n\n" + _quote(body)

    def _render_untabled(self, m: CodeMatch) -> str:
        lines = [WORDING["not_in_table"].format(code=m.found.code, severity_label=_severity(m.found.severity))]
        e = m.explanation
        if e is None:
            lines.append(WORDING["no_general"])
        else:
            lines.append(WORDING["general_heading"].format(basis_label=WORDING["basis_labels"][e.basis]))
            lines.append(_quote(f"{e.meaning}\n\n**{WORDING['general_action_label']}:** {e.action}"))
        if m.related:
            codes = ", ".join(f"[{r.row.code}]({r.row.url}) ({r.shares})" for r in m.related)
            lines.append(WORDING["related_line"].format(codes=codes))
        return "\n\n".join(lines)

    def _passages(self, question: str, kinds: tuple[str, ...] | None) -> tuple[list[tuple[dict, str]], str | None]:
        """(source, quoted Markdown) for each passage worth quoting, and the
        title of another help-centre article the question belongs to, if any.
        No passages when nothing is relevant enough."""
        result = self.retriever.search(question, k=self.top_k, kinds=kinds)
        if result.best_similarity < self.min_similarity or not result.hits:
            return [], None
        if self._other_articles is not None:
            title, similarity = self._other_articles().closest(result.vector)
            if result.best_similarity - similarity < -self.off_topic_margin:
                return [], title
        top = result.hits[0].score
        out = []
        for h in result.hits:
            if h.score < RELATED_SCORE * top:
                break
            if out and h.similarity < self.min_similarity:
                continue  # a passage beyond the best must be relevant on its own
            md = h.metadata
            source = {"article": md["article"], "section": md["section"], "url": md["url"], "text": h.text,
                      "score": round(float(h.score), 4)}
            quoted = h.text
            if md.get("kind") == "row":
                quoted = (f"**{md['code']}**\n\n**{WORDING['meaning_label']}:** {md['meaning']}\n\n"
                          f"**{WORDING['action_label']}:** {md['action']}")
            out.append((source, _quote(quoted) + "\n\n" + WORDING["citation"].format(**source)))
        return out, None

    def _support_block(self) -> str:
        s = self.support
        if s is None:
            return ""
        return WORDING["support_intro"].format(section=s.section, url=s.url) + "\n\n" + _quote(s.text)

    def _dont_know(self, other: str | None = None) -> str:
        article = self.support.article if self.support else "Common Email Delivery Errors"
        text = WORDING["dont_know"].format(article=article)
        if other:
            text += " " + WORDING["other_article"].format(title=other)
        return (text + "\n\n" + self._support_block()).strip()
