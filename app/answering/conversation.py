"""Read a message against the conversation before it: no model, no search.

``Conversation.read(question, turns)`` says what the message is (``intent``:
``question``, ``follow_up``, ``small_talk``, ``draft``, ``handoff``) and what
it is about: its own codes, the codes of an earlier user turn (carried, marked
``from_history``), or the article section the last answers were about (and
the next step of its list). The rules are general and their words are data
(``data/conversation.yaml``, ``data/smalltalk.yaml``):

- a message made only of greetings, thanks or "what can you do" is small talk
  (in any of the languages agents write in);
- typing slips on the cue words ("waht shoud i do") are undone before the cues
  are matched (one letter off, from a list of English cue words);
- asking for a text for the customer (a draft phrase, or a verb of writing
  followed by a kind of message) is a draft, unless the message is about
  something else (setting a channel up, a poem); asking for support, asking
  whom to contact, or saying the steps did not help, is a hand-off (alone only
  with the plainest words); "who do I contact?" right after a question about a
  section without steps is a follow-up on it;
- a hand-off is filled from the agent's messages: the customer's address, the
  codes (or, without one, the failure message quoted or described), the time
  sent (clock, date or "2 hours ago"), the conversation link (not the article's);
- with an earlier turn, a message that points back (it, that, the code, the
  second code), continues (and..., so..., what about...), asks what next, or
  has no words of its own, is a follow-up: about the earlier turn's codes, or
  its section. A message with words of its own ("how do I create a macro?")
  starts a new topic and carries nothing;
- "the other one" is the earlier code not talked about last (by a newer turn's
  code, or the ordinal a newer turn picked);
- a bare enhanced code after an earlier code ("and 4.7.28?") takes the earlier
  reply code when that makes a row of the table exactly.

The words of a message are read by ``app.answering.cues``; what a hand-off
needs from the conversation is found by ``app.answering.handoff``.

Earlier user turns are looked up again (``CodeTable.analyse``, cached), so
every door (API, CLI, chat, widget) behaves the same from plain texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from app.answering import handoff
from app.answering.contract import Code, Turn
from app.answering.cues import CUES, SMALL_TALK, STOP, draft_asked, has, pad, stem, strip, words_near
from app.codes.table import CodeTable
from app.knowledge.articles import Article, Section

_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*+])\s+(.*\S)\s*$")
_STEP = re.compile(r"\d+")
Intent = str


@dataclass
class Topic:
    """What the conversation was about when it had no code: an article section (and the next
    step of its list, 1-based), or, when no section can be told, the earlier question itself."""

    article: Article | None = None
    section: Section | None = None
    step: int | None = None  # the step to give; None: the section as a whole
    steps: list[str] = field(default_factory=list)  # its list's items, verbatim
    exhausted: bool = False  # every step was given already: what follows the list comes next
    query: str | None = None  # no section known: the earlier question, searched with the follow-up
    asked: bool = True  # False: the earlier turn said something (no question), the topic by default

    @property
    def url(self) -> str:
        return self.article.section_url(self.section)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.section.blocks)


@dataclass
class Reading:
    intent: Intent = "question"
    codes: list[Code] | None = None  # None: the message's own look-up stands as it is
    topic: Topic | None = None
    small_talk: str | None = None  # greeting, thanks or help
    address_request: bool = False  # a draft asking for another address
    channel: str = "message"
    facts: dict = field(default_factory=dict)  # for a hand-off: link, email, code, time found in the conversation


_WORDS = re.compile(r"\w+")
_IN_PARENS = re.compile(r"\(([^()\s]*)\)")


class Conversation:
    def __init__(self, table: CodeTable, articles: list[Article] | None = None, step_pattern: str | None = None):
        self.table = table
        self.articles = list(articles or [])
        self._step = re.compile(step_pattern) if step_pattern else None
        # cached: earlier turns come back on every message, and the answerer reads the message through it too
        self.analyse = lru_cache(maxsize=512)(table.analyse)
        words: set[str] = set()  # each word stemmed once: at 10,000 articles a word-by-word pass took seconds
        for a in self.articles:
            for sec in a.sections:
                words.update(pad(sec.heading).split())
                for b in sec.blocks:
                    words.update(pad(b.text).split())
        stems = {w: stem(w) for w in words}
        self._vocabulary = set(stems.values())
        support = self._support_heading()
        self._index = None  # the follow-up lookup (_candidates), made at the end of __init__
        self._sections = []  # (article, section, heading words, sentences) of the sections a topic can be
        for a in self.articles:
            for sec in a.sections:
                if any(b.kind == "error-table" for b in sec.blocks) or sec.heading == support:
                    continue
                heading = {stems.get(w) or stem(w) for w in pad(sec.heading).split() if w not in STOP}
                body = "\n".join(b.text for b in sec.blocks)
                sentences = [x.strip() for x in re.split(r"(?<=[.!?:])\s+|\n+", body)]
                sentences = [(_LIST_ITEM.match(x).group(1) if _LIST_ITEM.match(x) else x) for x in sentences]
                # tuples of strings: the collector stops tracking them (at 10,000 articles a full collection
                # walked 130,000 objects of this lookup alone)
                self._sections.append((a, sec, tuple(sorted(heading)), tuple(x for x in sentences if len(x) >= 20)))
        self._by_heading: dict[str, list[int]] = {}  # a heading word's stem -> the sections (in order) it heads
        for n, (_, _, heading, _) in enumerate(self._sections):
            for w in heading:
                self._by_heading.setdefault(w, []).append(n)
        self._by_heading = {w: tuple(ns) for w, ns in self._by_heading.items()}
        self._candidates("")  # the follow-up lookup, made now: a first follow-up at 10,000 articles is not 0.3 s slower

    # ------------------------------------------------------------ the rules

    def read(self, question: str, turns: list[Turn]) -> Reading:
        padded = pad(question)
        own = self.analyse(question)
        if not own.matches and self._small_talk(padded):
            return Reading("small_talk", small_talk=self._small_talk(padded))
        near = self._near(padded)
        words = near  # its own words, typing slips on the cue words undone
        if near != padded:  # the cues are matched on the message as typed and as read
            padded = padded + "|" + near
        context = self._context(turns, padded)
        if draft_asked(padded):
            codes = [Code.of(m) for m in own.matches] or (context if isinstance(context, list) else [])
            return Reading("draft", codes=codes, topic=context if isinstance(context, Topic) else None,
                           address_request=has(padded, CUES["draft_address"]),
                           channel="email" if has(padded, CUES["draft_email"]) else "message")
        if has(padded, CUES["handoff_alone"]) or has(padded, CUES["handoff_ask"]) or (turns and has(padded, CUES["handoff"])):
            if (isinstance(context, Topic) and context.asked and not context.steps and not own.matches
                    and has(padded, CUES["handoff_ask"])
                    and not has(padded, CUES["not_helped"]) and not has(padded, CUES["handoff_alone"])):
                return Reading("follow_up", topic=context)  # "who do I contact?" on a section that says it
            return self._handoff(question, turns, own, context)
        if not turns or context is None:
            return Reading()
        cue = (has(padded, CUES["refer_back"]) or has(padded, CUES["next_step"]) or has(padded, CUES["not_helped"])
               or any(padded.startswith(f" {p} ") for p in CUES["continue_start"]) or self._ordinal(padded) is not None)
        if own.matches:  # its own codes: answered about them, a bare one completed by the earlier reply code
            if isinstance(context, list) and cue:
                completed = self._complete(own.matches, context)
                if completed is not None:
                    return Reading("follow_up", codes=completed)
            return Reading()
        if self._new_topic(words, cue):
            return Reading()  # words of its own: a new topic, nothing carried
        if isinstance(context, list):
            if has(padded, CUES["not_helped"]):
                return self._handoff(question, turns, own, context)
            return Reading("follow_up", codes=context)
        if context.section is not None and (context.exhausted or (not context.steps and has(padded, CUES["not_helped"]))):
            if self._ends_in_support(context):
                return self._handoff(question, turns, own, context)
        return Reading("follow_up", topic=context)

    def _near(self, padded: str) -> str:
        """Typing slips on the cue words undone ("waht shoud i do" reads "what should i do"); a word
        the article uses stays as it is."""
        return words_near(padded, lambda w: self._vocabulary if stem(w) in self._vocabulary else ())

    def _own_words(self, padded: str) -> list[str]:
        return [w for w in padded.split() if w not in STOP and not _STEP.fullmatch(w.replace(".", ""))]

    def _new_topic(self, padded: str, cue: bool) -> bool:
        words = self._own_words(padded)
        if len(words) > CUES["max_new_words"] + (2 if cue else 0):
            return True
        unknown = [w for w in words if stem(w) not in self._vocabulary
                   and stem(w.removeprefix("re")) not in self._vocabulary]
        if not cue and len(unknown) >= CUES["max_unknown_words"]:
            return True  # words the article never uses: not about the article's earlier topic
        return self._names_section(words) is not None

    def _names_section(self, words: list[str]):
        """The first section whose heading holds two or more of ``words`` (stemmed), or None: looked up
        by heading word (a scan of every section took 24 ms at 10,000 articles)."""
        counts: dict[int, int] = {}
        for w in {stem(w) for w in words}:
            for n in self._by_heading.get(w, ()):
                counts[n] = counts.get(n, 0) + 1
        named = min((n for n, c in counts.items() if c >= 2), default=None)
        return None if named is None else self._sections[named][:2]

    def _small_talk(self, padded: str) -> str | None:
        if not padded.strip():
            return None
        kinds = [k for k in ("help", "thanks", "greeting") if has(padded, SMALL_TALK[k])]
        rest = strip(padded, [p for k in ("help", "thanks", "greeting", "filler") for p in SMALL_TALK[k]])
        return kinds[0] if kinds and not rest.strip() else None

    def chit_chat(self, question: str) -> str | None:
        """Small talk said with other words ("hey, how's your week going"): a greeting, thanks or
        help phrase in a short message. Asked only when the article has no answer for it."""
        padded = pad(question)
        kinds = [k for k in ("help", "thanks", "greeting") if has(padded, SMALL_TALK[k])]
        rest = strip(padded, [p for k in ("help", "thanks", "greeting", "filler") for p in SMALL_TALK[k]])
        return kinds[0] if kinds and len(self._own_words(rest)) <= SMALL_TALK["max_other_words"] else None

    def _ordinal(self, padded: str) -> int | str | None:
        for word, index in CUES["ordinals"].items():
            if f" {word} " in padded:
                return index
        return None

    def _complete(self, matches, earlier: list[Code]) -> list[Code] | None:
        """'and 4.7.28?' after '421 ...': the bare enhanced codes with the earlier reply code, when
        that is a row exactly; None when no code of the message needs it."""
        replies = [c.code.split("-")[0] for c in earlier if c.code[:3].isdigit() and len(c.code) >= 3]
        out, changed = [], False
        for m in matches:
            code = Code.of(m)
            f = m.found
            if f.reply is None and f.enhanced:
                for reply in replies:
                    if reply[0] == f.enhanced[0]:
                        tried = self.table.analyse(f"{reply} {f.enhanced}").matches
                        if tried and tried[0].exact and (not m.exact or tried[0].row.code != m.row.code):
                            code, changed = Code.of(tried[0]).model_copy(update={"text": f.text}), True
                            break
            out.append(code)
        return out if changed else None

    # ----------------------------------------------------- the conversation

    def _context(self, turns: list[Turn], padded: str = " ") -> list[Code] | Topic | None:
        """What the conversation was last about: the codes of the newest user turn that had
        some, the section the newest assistant turn quoted (the error table aside), or the
        newest user turn of its own. The message's ordinal ("the second code", "the other
        one"), or a later turn's, picks among the codes."""
        ordinal = self._ordinal(padded)
        talked: list[str] = []  # codes of newer turns, for "the other one"
        picked = None  # the ordinal a newer turn without codes picked ("the second one?"), for "the other one"
        said = None  # the newest user turn of its own that asked nothing: the topic when no code is older
        support = None  # a newer turn asking about support: its section, when nothing older is a topic
        newest: list[Code] | None = None  # the newest codes, when "the other one" finds no older turn
        for i in range(len(turns) - 1, -1, -1):
            t = turns[i]
            if t.role == "user":
                matches = self.analyse(t.content).matches
                if matches:
                    codes = [Code.of(m).model_copy(update={"from_history": True}) for m in matches]
                    if ordinal == "other":
                        if not talked and isinstance(picked, int) and -len(codes) <= picked < len(codes):
                            talked = [codes[picked].code] + ([codes[picked].row.code] if codes[picked].row else [])
                        elif not talked:  # the newest codes were talked about last: the other one is older
                            talked = [c.code for c in codes] + [c.row.code for c in codes if c.row]
                            newest = codes
                            continue
                        codes = [c for c in codes if c.code not in talked and (c.row is None or c.row.code not in talked)] or codes
                    elif isinstance(ordinal, int) and -len(codes) <= ordinal < len(codes):
                        codes = [codes[ordinal]]
                    return codes
                own = pad(t.content)
                if not talked and picked is None and isinstance(self._ordinal(own), int):
                    picked = self._ordinal(own)
                if draft_asked(own):
                    continue  # a draft: the topic before it goes on
                if has(own, CUES["handoff"]) or has(own, CUES["handoff_alone"]):
                    support = support or self._support_topic()
                    continue  # a hand-off: the topic before it goes on, else the support section
                if self._small_talk(own):
                    continue  # small talk: the topic before it goes on
                named = self._names_section(self._own_words(own))
                if named:
                    return Topic(*named)
                asks = t.content.rstrip().endswith("?") or any(own.startswith(f" {w} ") for w in CUES["question_start"])
                if asks and self._own_words(own):
                    return Topic(query=t.content)  # a question of its own: the topic to search again
                if said is None and len(self._own_words(own)) > CUES["max_new_words"]:
                    said = Topic(query=t.content, asked=any(own.startswith(f" {w} ") for w in CUES["question_start_other"]))
                if ordinal is None:
                    ordinal = self._ordinal(own)
            else:
                topic = self._topic(t.content)
                if topic is not None:
                    return topic
        return newest or said or support

    def _support_topic(self) -> Topic | None:
        """The article's support section, as a topic ("what should I include?" after asking about support)."""
        heading = self._support_heading()
        for a in self.articles:
            for s in a.sections:
                if s.heading == heading:
                    return Topic(a, s)
        return None

    def _candidates(self, answer: str) -> dict[int, list[str]]:
        """The sections (indexes into ``_sections``, in order) that can match ``answer`` in ``_topic``, each
        with the sentences of it that can be in ``answer``: those whose link is in parentheses in it, and
        those with a sentence whose three longest inner words (whole in the answer when the sentence is)
        the answer holds. Looking each section and sentence up instead of scanning them all keeps a
        follow-up linear in its own text at 10,000 articles."""
        if self._index is None:
            by_url: dict[str, list[int]] = {}
            by_word: dict[str, list[tuple]] = {}  # key word -> (section, sentence, 2nd and 3rd longest), in order
            always: dict[int, list[str]] = {}  # sections always looked at, with their sentences of no inner word
            self._urls = []  # each section's link, None when it is the article's own (made once: slugs cost)
            for n, (a, s, _, sentences) in enumerate(self._sections):
                url = a.section_url(s)
                self._urls.append(url if url != a.url else None)
                if url != a.url:
                    if re.search(r"[()\s]", url):
                        always.setdefault(n, [])  # a link the lookup below cannot take apart
                    by_url.setdefault(url, []).append(n)
                for x in sentences:
                    inner = _WORDS.findall(x)[1:-1]
                    if not inner:
                        always.setdefault(n, []).append(x)
                    else:  # with its next two longest inner words: they too must be whole in the answer
                        longest = sorted(inner, key=len, reverse=True)  # stable: the key is max(inner, key=len)
                        more = longest[1:3] + ["", ""]  # "" when it has fewer: every answer "holds" it
                        by_word.setdefault(longest[0], []).append((n, x, more[0], more[1]))
            self._index = ({k: tuple(v) for k, v in by_url.items()}, {k: tuple(v) for k, v in by_word.items()},
                           {k: tuple(v) for k, v in always.items()})
        by_url, by_word, always = self._index
        found: dict[int, list[str]] = {n: list(xs) for n, xs in always.items()}
        for url in _IN_PARENS.findall(answer):
            for n in by_url.get(url, ()):
                found.setdefault(n, [])
        words = set(_WORDS.findall(answer)) | {""}
        for w in words:
            for n, x, second, third in by_word.get(w, ()):
                if second in words and third in words:  # a sentence the answer holds whole has them all in it
                    found.setdefault(n, []).append(x)
        return {n: found[n] for n in sorted(found)}

    def _topic(self, answer: str) -> Topic | None:
        """The section an earlier answer quoted: by its link, or by its words."""
        for n, sentences in self._candidates(answer).items():
            a, s, _, _ = self._sections[n]
            url = self._urls[n]
            if (url is not None and f"({url})" in answer) or any(x in answer for x in sentences):
                steps = [m.group(1) for b in s.blocks if b.kind == "list" and b.text.lstrip()[:1].isdigit()
                         for m in map(_LIST_ITEM.match, b.text.splitlines()) if m]
                topic = Topic(a, s, steps=steps)
                if steps:
                    heading = self._step.search(answer) if self._step else None
                    shown = [k + 1 for k, item in enumerate(steps) if item in answer]
                    if heading:
                        topic.step = int(heading.group(1)) + 1
                    elif shown and len(shown) < len(steps):
                        topic.step = max(shown) + 1
                    elif shown:
                        topic.step = len(steps) + 1
                    topic.exhausted = topic.step is not None and topic.step > len(steps)
                return topic
        return None

    def _support_heading(self) -> str | None:
        for a in self.articles:
            for s in reversed(a.sections):
                if any(w in s.heading.lower() for w in ("help", "support", "contact")):
                    return s.heading
        return None

    def _ends_in_support(self, topic: Topic) -> bool:
        return has(pad(topic.text), CUES["ends_in_support"])

    def _handoff(self, question: str, turns: list[Turn], own, context) -> Reading:
        codes = [Code.of(m) for m in own.matches] or (context if isinstance(context, list) else [])
        if not codes:  # the newest codes anywhere in the conversation
            for t in reversed(turns):
                if t.role == "user" and self.analyse(t.content).matches:
                    codes = [Code.of(m).model_copy(update={"from_history": True})
                             for m in self.analyse(t.content).matches]
                    break
        return Reading("handoff", codes=codes, topic=context if isinstance(context, Topic) else None,
                       facts=self.facts([t.content for t in turns if t.role == "user"] + [question], codes))

    def facts(self, texts: list[str], codes: list[Code]) -> dict:
        """What the agent's messages hold that a support request asks for (``handoff.facts``)."""
        return handoff.facts(texts, codes, self.analyse, self.articles)

