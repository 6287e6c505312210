"""What the model is asked for one message, decided from the default mode's answer.

``task_for(answer, history)`` is ``None`` when the model has nothing to add (a refusal, a
hand-off, a pasted bounce, an answer with no cited passage): the default answer stands. Else a
``Task``: the kind of text (``lead``: a short answer above the rows and passages; ``draft``: the
customer's message; ``small_talk``), the message after the fixed prefix, the codes the text may
name and the sentences it must be supported by.

The message is short because each of its tokens is processed per question (the fixed prefix,
instructions and the whole article, is cached): the instruction first (the same text for every
task of a kind, so the slot's cache usually covers it too), then the cited rows (code and their
two short sentences) and the cited sections *by heading* (their words are in the prefix; the
quoted sentences are not repeated), the newest turns briefly, the codes the text may name, the
question last. Wording: ``data/wording.yaml``, ``llm.prompt``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.answering.contract import Answer, Source, Turn
from app.answering.wording import WORDING

HISTORY_TURNS = 2  # the newest turns the model reads
TURN_CHARS = 160  # each cut to this many characters
QUESTION_CHARS = 500  # a longer question is cut in the prompt (never in the answer)
MAX_TOKENS = {"lead": 96, "draft": 160, "small_talk": 60}
STOP = {"lead": ("\n\n",), "draft": (), "small_talk": ("\n\n",)}  # a lead is one paragraph


@dataclass(frozen=True)
class Task:
    kind: str  # lead | draft | small_talk
    text: str  # the message after the fixed prefix
    codes: tuple[str, ...]  # the codes the text may name: the answer's exact ones
    reference: tuple[str, ...]  # what every sentence must be supported by

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS[self.kind]

    @property
    def stop(self) -> list[str]:
        return list(STOP[self.kind])


def exact_codes(answer: Answer) -> tuple[str, ...]:
    """The codes the answer holds as exact matches of the table, and their rows' codes."""
    codes = [c.code for c in answer.codes if c.match == "exact"] + [c.row.code for c in answer.codes if c.row]
    codes += [s.row.code for s in answer.sources if s.kind == "row" and s.row is not None]
    return tuple(dict.fromkeys(codes))


PASSAGE_CHARS = 400  # a cited passage of an article the prefix does not hold is quoted up to this


def _cited(sources: list[Source], in_prefix: frozenset[str] | None = None) -> str:
    """The rows the answer cites, with their words (short, and the facts a lead must state: by code
    alone the model mixed up rows), and the sections it cites, by heading (``section "..."``) when
    the prefix holds their article (``in_prefix``: those titles; None: every article), else quoted."""
    w = WORDING["llm"]["prompt"]

    def name(s: Source) -> str:
        if s.kind == "row" and s.row is not None:
            return w["row"].format(code=s.row.code, meaning=s.row.meaning, action=s.row.action)
        if in_prefix is None or s.article in in_prefix:
            return w["section"].format(section=s.section)
        return w["section_quoted"].format(section=s.section, article=s.article,
                                          text=_cut(s.focused or s.text, PASSAGE_CHARS))

    return w["cited"].format(parts=", ".join(dict.fromkeys(name(s) for s in sources)))


def _reference(s: Source) -> list[str]:
    return [s.row.meaning, s.row.action] if s.kind == "row" and s.row is not None else [s.text]


def _history(history: list[Turn]) -> list[str]:
    w = WORDING["llm"]["prompt"]
    turns = [t for t in history if t.content.strip()][-HISTORY_TURNS:]
    if not turns:
        return []
    lines = [w["turn"].format(role=t.role, content=_cut(t.content, TURN_CHARS)) for t in turns]
    return [w["history"] + "\n" + "\n".join(lines)]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _message(answer: Answer, history: list[Turn], codes: tuple[str, ...], instruction: str,
             in_prefix: frozenset[str] | None = None) -> str:
    w = WORDING["llm"]["prompt"]
    parts = [instruction]
    if answer.sources:
        parts.append(_cited(answer.sources, in_prefix))
    parts += _history(history)
    parts.append(w["codes"].format(codes=", ".join(codes)) if codes else w["no_codes"])
    parts.append(w["question"].format(question=_cut(answer.question, QUESTION_CHARS)))
    return "\n".join(parts)


def task_for(answer: Answer, history: list[Turn], in_prefix: frozenset[str] | None = None) -> Task | None:
    """What the model writes for this answer, or None when the default answer stands alone.
    ``in_prefix``: the titles of the articles the fixed prefix holds (None: all of them)."""
    w = WORDING["llm"]["prompt"]
    codes = exact_codes(answer)
    if answer.intent == "small_talk":
        reference = (WORDING["small_talk"]["what"], WORDING["small_talk"]["help"], WORDING["small_talk"]["greeting"])
        return Task("small_talk", _message(answer, history, (), w["small_talk"]), (), reference)
    if answer.intent == "draft" and answer.draft is not None:
        instruction = w["draft"].format(channel=w["channels"][answer.draft.channel], template=answer.draft.text)
        reference = [answer.draft.text] + [r for s in answer.sources for r in _reference(s)]
        return Task("draft", _message(answer, history, codes, instruction, in_prefix), codes, tuple(reference))
    if answer.intent == "handoff" or not answer.answered or not answer.sources:
        return None  # a refusal, a hand-off or the codes alone: nothing for the model to connect
    if answer.message_kind is not None or any(r.recipient for r in answer.recipients):
        return None  # a pasted message: its reading is the answer, recipient by recipient
    reference = tuple(r for s in answer.sources for r in _reference(s))
    return Task("lead", _message(answer, history, codes, w["lead"], in_prefix), codes, reference)
