"""Decide answers (default mode: no language model), then have them rendered.

- Each code that matches a table row exactly gets the row's code, meaning and
  what-you-can-do, word for word.
- A code the table lacks is said to be missing from the table; no meaning is
  stated for it.
- Otherwise the most relevant passages of the article are quoted with their
  citations; when nothing is relevant enough, the answer says "I don't know"
  (``answered: false``) and points to the article's support contact.

``Answerer.ask`` decides the structured parts of a ``contract.Answer`` (codes,
sources, recipients, limits, notices, support, another article) and calls
``render.markdown`` once for its ``answer`` text; it writes no wording itself.
"""

from __future__ import annotations

import threading
from typing import Callable

from app.knowledge.articles import Article
from app.knowledge.chunks import row_text

from app.answering import contract, render, replies
from app.answering.contract import Answer, Code, Limits, Recipient, Row, Source, Turn
from app.answering.conversation import Conversation, Reading
from app.answering.focus import focus_many
from app.answering.ports import Retriever
from app.errors import EmptyQuestion, NotText, QuestionTooLong, SearchUnavailable
from app.codes import table as codes_table
from app.codes.table import CodeTable

SENTENCE_CACHE = 4096  # sentence vectors kept for focusing passages (the article has ~100)
RELATED_SCORE = 0.8  # quote further passages scoring at least this share of the best one


class Support(contract.Support):
    """The article's own 'get more help' section, quoted on refusals."""

    @classmethod
    def from_articles(cls, articles: list[Article]) -> "Support | None":
        for a in articles:
            for s in reversed(a.sections):
                if any(w in s.heading.lower() for w in ("help", "support", "contact")):
                    text = "\n\n".join(b.text for b in s.blocks)
                    return cls(article=a.title, section=s.heading, url=a.section_url(s), text=text)
        return None


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


def _limit_notices(limits: codes_table.Limits) -> list[contract.Notice]:
    """A notice per cap that cut the look-up short; [] when none did."""
    notices = []
    if limits.recipients_examined < limits.recipients_found:
        notices.append(render.notice("recipients_capped", examined=limits.recipients_examined,
                                     found=limits.recipients_found))
    if limits.codes_examined < limits.codes_found:
        notices.append(render.notice("codes_capped", examined=limits.codes_examined, found=limits.codes_found))
    return notices


class Answerer:
    def __init__(
        self,
        table: CodeTable,
        retriever_provider: Callable[[], Retriever],
        support: Support | None = None,
        top_k: int = 3,
        min_similarity: float = 0.33,
        max_question_bytes: int = 200 * 1024,
        other_articles=None,
        off_topic_margin: float = 0.08,
        articles: list[Article] | None = None,
        max_history_turns: int = 20,
        support_email: str | None = None,
    ):
        self.table = table
        self._retriever = once(retriever_provider)
        self.support = support
        self.top_k = top_k
        self.min_similarity = min_similarity
        self.max_question_bytes = max_question_bytes
        self._other_articles = once(other_articles) if other_articles else None  # built on first use
        self.off_topic_margin = off_topic_margin
        self.max_history_turns = max_history_turns
        self.support_email = support_email
        self.articles = articles  # the KB version this answerer answers from (the LLM mode's prefix reads it)
        self._kb_articles = len(articles) if articles else 1  # how "I don't know" names what it answers from
        self.conversation = Conversation(table, articles, render.step_pattern())

    @property
    def retriever(self) -> Retriever:
        return self._retriever()

    def retriever_if_open(self) -> Retriever | None:
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

    def check_history(self, history: list[Turn]) -> list[Turn]:
        """Earlier turns of a conversation, each bounded like a question (413 beyond it)."""
        for i, turn in enumerate(history):
            size = len(turn.content.encode("utf-8"))
            if size > self.max_question_bytes:
                error = QuestionTooLong(size, self.max_question_bytes)
                error.args = (f"history[{i}].content is {size:,} bytes; the limit is {self.max_question_bytes:,} "
                              "bytes, as for a question.",)
                raise error
        return history

    def bounded(self, history) -> list[Turn]:
        """The newest ``max_history_turns`` turns, validated (roles; sizes: 413); older ones are dropped."""
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in (history or [])]
        turns = turns[-self.max_history_turns:] if self.max_history_turns > 0 else []
        return self.check_history(turns)

    def ask(self, question: str, history=None) -> Answer:
        """The answer to ``question``, read against ``history`` (earlier turns, oldest first)."""
        question = self.check(question)
        turns = self.bounded(history)
        reading = self.conversation.read(question, turns)
        if reading.intent == "question":
            answer = self._answer(question)
            if answer.answered or answer.codes or answer.other_article or answer.recipients:
                return answer
            kind = self.conversation.chit_chat(question)  # no answer in the article: small talk after all?
            if kind is None:
                return answer
            reading = Reading("small_talk", small_talk=kind)
        analysis = self.conversation.analyse(question)  # read once per message
        if reading.intent == "small_talk":
            decided = Answer(question=question, answer="", answered=False, intent="small_talk",
                             limits=Limits.of(analysis.limits))
        elif reading.intent == "draft":
            facts = self.conversation.facts([t.content for t in turns if t.role == "user"] + [question], [])
            decided = Answer(question=question, answer="", answered=True, intent="draft", codes=reading.codes,
                             sources=_row_sources(reading.codes, self.table), limits=Limits.of(analysis.limits),
                             draft=replies.draft(reading, render.WORDING, facts.get("email")))
            if reading.topic is not None and reading.topic.section is not None and not decided.sources:
                decided.sources = [_section_source(reading.topic)]
        elif reading.intent == "handoff":
            handoff = replies.handoff(self.support, reading.facts, reading.codes or [], self.support_email,
                                      render.WORDING)
            sources = [Source(kind="section", article=self.support.article, section=self.support.section,
                              url=self.support.url, text=self.support.text, score=1.0)] if self.support else []
            decided = Answer(question=question, answer="", answered=True, intent="handoff", codes=reading.codes or [],
                             sources=sources + _row_sources(reading.codes or [], self.table),
                             limits=Limits.of(analysis.limits), handoff=handoff)
        elif reading.codes is not None:  # a follow-up about codes: the earlier turn's, or completed ones
            if not any(c.from_history for c in reading.codes):
                return self._answer(question, reading)
            decided = Answer(question=question, answer="", answered=any(c.match == "exact" for c in reading.codes),
                             intent="follow_up", codes=reading.codes, sources=_row_sources(reading.codes, self.table),
                             limits=Limits.of(analysis.limits))
            if not decided.answered:
                decided.support = self.support
        elif reading.topic.section is None:  # about the earlier question: searched again with it
            return self._answer(question, reading, query=f"{reading.topic.query}\n{question}")
        else:  # a follow-up about the section the conversation was on
            decided = Answer(question=question, answer="", answered=True, intent="follow_up",
                             sources=[_section_source(reading.topic)], limits=Limits.of(analysis.limits))
        decided.answer = render.markdown(decided, small_talk=reading.small_talk, articles=self._kb_articles)
        return decided

    def stream_ask(self, question: str, history=None):
        """``ask`` as the language-model mode's events (``app.answering.llm.mode``): the answer is
        both the skeleton and the final one, with no tokens between (the default mode writes none)."""
        answer = self.ask(question, history).to_dict()
        yield {"type": "answer_skeleton", "answer": answer}
        yield {"type": "final", "answer": answer}

    def _answer(self, question: str, reading: Reading | None = None, query: str | None = None) -> Answer:
        """A message answered on its own: the look-up, then the article's passages (searched
        with ``query``, the earlier question and this one, when it follows up on a question)."""
        analysis = self.conversation.analyse(question)  # read once per message
        codes = reading.codes if reading is not None and reading.codes is not None else [
            Code.of(m) for m in analysis.matches]
        sources = _row_sources(codes, self.table)
        notices = _limit_notices(analysis.limits)  # a cap cut the look-up short: say so
        answered = bool(sources)
        support = other = None
        if not any(c.match == "exact" for c in codes):
            # No exact row: quote the article. With an untabled code in the
            # question, table rows are left out so no row reads as its meaning.
            kinds = ("section",) if codes else None
            try:
                passages, other = self._passages(query or question, kinds)
            except SearchUnavailable as e:
                if not codes:
                    raise  # nothing could be answered: the caller says search is unavailable (503)
                passages, other = [], None  # the codes' part stands; say why no passages follow
                notices.append(render.notice("search_unavailable", problem=e.problem))
            if passages:
                sources += passages
                answered = True
            else:  # "I don't know" (no code) or the codes alone: either way, where to get help
                support = self.support
        decided = Answer(
            question=question, answer="", answered=answered, codes=codes, sources=sources,
            recipients=[Recipient.of(r) for r in analysis.recipients], limits=Limits.of(analysis.limits),
            notices=notices, support=support, other_article=other,
            intent="question" if reading is None else reading.intent, message_kind=analysis.kind,
        )
        decided.answer = render.markdown(decided, articles=self._kb_articles)
        return decided

    def _passages(self, question: str, kinds: tuple[str, ...] | None) -> tuple[list[Source], str | None]:
        """The passages worth quoting, and the title of another help-centre
        article the question belongs to, if any. No passages when nothing is
        relevant enough."""
        result = self.retriever.search(question, k=self.top_k, kinds=kinds)
        # Among many articles, the answering article's own best cosine decides, not the collection's.
        best = getattr(result, "answering_similarity", result.best_similarity)
        if best < self.min_similarity or not result.hits:
            return [], None
        if self._other_articles is not None:
            title, similarity = self._other_articles().closest(result.vector)
            if best - similarity < -self.off_topic_margin:
                return [], title
        top = result.hits[0].score
        out = []
        for h in result.hits:
            if h.score < RELATED_SCORE * top:
                break
            if out and h.similarity < self.min_similarity:
                continue  # a passage beyond the best must be relevant on its own
            md = h.metadata
            where = {"article": md["article"], "section": md["section"], "url": md["url"], "text": h.text,
                     "score": round(float(h.score), 4)}
            if md.get("kind") == "row":
                row = Row(code=md["code"], meaning=md["meaning"], action=md["action"], section=md["section"],
                          url=md["url"])
                out.append(Source(kind="row", code=row.code, row=row, **where))
            else:
                out.append(Source(kind="section", **where))
        return self._focused(question, out), None

    def _sentence_vectors(self):
        """The embedder's ``embed_documents`` with a cache: the article's sentences are embedded
        once, so focusing a passage costs one embedding (the question's) after the first time;
        among many articles they are read from the index version's stored unit vectors instead."""
        embed = getattr(getattr(self.retriever, "embedder", None), "embed_documents", None)
        if embed is None:
            return None
        cache = self.__dict__.setdefault("_vector_cache", {})
        stored = getattr(self.retriever, "unit_vectors", None)

        def cached(texts: list[str]):
            missing = [t for t in dict.fromkeys(texts) if t not in cache]
            if missing:
                if len(cache) > SENTENCE_CACHE:
                    cache.clear()
                # the question, and units this index version holds no vector of (``bouncebot ingest``
                # embeds every passage's units among several articles), are embedded here
                found = dict(zip(missing, stored(missing))) if stored is not None else {}
                todo = [t for t in missing if found.get(t) is None]
                cache.update(zip(todo, embed(todo)) if todo else ())
                cache.update((t, v) for t, v in found.items() if v is not None)
            return [cache[t] for t in texts]

        return cached

    def _focused(self, question: str, sources: list[Source]) -> list[Source]:
        """Section passages get the sentences that answer the question (quoted in the answer);
        the whole passage stays in ``text``. Table rows are quoted whole, always."""
        sections = [s for s in sources if s.kind == "section"]
        if not sections:
            return sources
        embed = self._sentence_vectors()
        for s, focused in zip(sections, focus_many(question, [s.text for s in sections], embed=embed)):
            if focused and focused != s.text:
                s.focused = focused
        return sources


def _row_sources(codes: list[Code], table: CodeTable) -> list[Source]:
    """A citation per table row the exact codes hit (one per row, however many codes hit it): a code
    several articles' tables hold cites each of its rows, each with its own article."""
    sources: list[Source] = []
    seen: set[tuple] = set()  # (row, article) already cited: a code hundreds of articles table stays linear
    for c in codes:
        cited = [(r.plain(), r.article) for r in c.rows] if c.match == "exact" and c.rows else (
            [(c.row, next(e.article for e in table.rows if Row.of(e) == c.row))] if c.match == "exact" else [])
        for r, article in cited:
            key = (r.code, r.meaning, r.action, r.section, r.url, article)
            if key not in seen:
                seen.add(key)
                sources.append(Source(kind="row", code=r.code, row=r, article=article, section=r.section,
                                      url=r.url, text=row_text(r), score=1.0))
    return sources


def _section_source(topic) -> Source:
    """The section a follow-up continues, quoted whole, or the step of its list it is at."""
    text = topic.text
    if topic.steps and topic.step is not None and topic.step <= len(topic.steps):
        text = topic.steps[topic.step - 1]
    elif topic.steps and topic.exhausted:  # after the list: what the section says next
        after = [b.text for b in topic.section.blocks if b.kind != "list"]
        text = after[-1] if after else text
    return Source(kind="section", article=topic.article.title, section=topic.section.heading, url=topic.url,
                  text=text, score=1.0)
