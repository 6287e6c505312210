"""The web chat for support agents: a thin Gradio layer over ``Answerer``.

``ChatUI.create_app()`` builds the interface without starting anything, so
tests build it and call ``respond`` directly; serving is ``app.server``'s job
(mount it with ``max_file_size=MAX_UPLOAD_BYTES``: the chat takes no files).

- The agent's own text is shown as inert text, whatever it contains: one line
  with every character that could start Markdown backslash-escaped, several
  lines in a code fence longer than any run of backticks inside them. No HTML,
  link, image or autolink can come out of it; LaTeX rendering is off.
- Questions are answered ``concurrency`` at a time (one agent's long paste
  does not hold up the others), and an answer streams in at most
  ``STREAM_STEPS`` updates however long it is: Gradio post-processes and diffs
  the whole conversation on every update.
- Each question is answered with the conversation shown (``conversation``:
  the agent's texts and the answers), so follow-ups, drafts and hand-offs
  resolve as on the API; a draft or a support request is a fenced block in
  the answer, which the chat gives a copy button.
- The code cards, the recipients and the cited sections are built from the
  answer's fields, never from its Markdown (``app.web.chat_html``), with the
  labels every surface shares (``app/answering/data/wording.yaml``; the
  page's own texts under ``chat:``).
- In the language-model mode a turn streams token by token (``app.web.chat_stream``).
"""

from __future__ import annotations

import bisect
import html
import itertools
import re
import time

import gradio as gr

from app._data import data_file, data_text
from app.answering.answerer import Answerer
from app.answering.contract import Answer
from app.answering.ports import FeedbackLog
from app.answering.render import WORDING
from app.errors import BadQuestion, BouncebotError
# The panels' HTML lives in chat_html; FROM_HISTORY, _card and the *_html stay importable from here.
from app.web.chat_html import FROM_HISTORY, _card, code_cards_html, panels, recipients_html, sources_html  # noqa: F401
from app.web.chat_stream import batched, draft_markdown, shown_markdown, streams_tokens

EXAMPLES = data_file("app.web", "examples.yaml")
CSS = data_text("app.web", "chat.css")
TEXTS = WORDING["chat"]  # the page's own texts; the answer's labels are the shared ones (render.LABELS, ...)
CARDS_PLACEHOLDER = f'<p class="bb-empty">{html.escape(TEXTS["before_first_question"])}</p>'
DEFAULT_CONCURRENCY = 8  # questions answered at once (BOUNCEBOT_CHAT_CONCURRENCY); more wait in Gradio's queue
STREAM_STEPS = 8  # an answer streams in at most this many updates, whatever its length
MAX_UPLOAD_BYTES = 0  # for mount_gradio_app(max_file_size=...): the chat has no file inputs
ASK_CONCURRENCY_ID = "bouncebot-ask"  # the Ask button and Enter share one limit
# What can start Markdown on one line of CommonMark + GFM (the Chatbot renders with marked, gfm on):
# escapes, code, emphasis, strikethrough, links/images ([...]), HTML and <autolinks>, entities, "$$"
# (LaTeX), and GFM's bare autolinks: "scheme://", "www." and "name@host".
_INLINE_MARKUP = re.compile(r"[\\`*_~\[\]<>&$@]|:(?=//)|(?<=[wW]{3})\.")
# ...and at the start of a line: a heading, quote, list item, rule or fence ("#", ">", "-", "+", "1.", "1)").
_LINE_START_MARKUP = re.compile(r"[!-/:-@\[-`{-~]|\d{1,9}[.)]")
_BACKTICKS = re.compile(r"`+")

# System fonts only: the default theme would fetch web fonts from a CDN.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)


def markdown_text(text: str) -> str:
    """One line of ``text`` as Markdown that renders as exactly that text.

    Every character that can start markup is backslash-escaped (CommonMark
    makes any escaped ASCII punctuation literal): no tag, entity, link, image,
    emphasis or code span can begin, and nothing is left for GFM to autolink.
    Other characters stay as typed, so "What does 550-5.1.1 mean?" is unchanged."""
    head = ""
    start = _LINE_START_MARKUP.match(text)
    if start:
        head, text = start.group()[:-1] + "\\" + start.group()[-1], text[start.end():]
    return head + _INLINE_MARKUP.sub(lambda m: "\\" + m.group(), text)


def user_bubble(message: str) -> str:
    """The agent's own text as the chat shows it: never interpreted as HTML or Markdown.

    One line is escaped where it could be markup (``markdown_text``); several
    lines (a pasted bounce) go verbatim into a fenced block whose fence is
    longer than any run of backticks inside, so no line of the paste can close it."""
    text = message.strip()
    if "\n" not in text and "\r" not in text:  # Markdown ends a line at CR too
        return markdown_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fence = "`" * max(3, 1 + max((len(run) for run in _BACKTICKS.findall(text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def stream_cuts(text: str, steps: int = STREAM_STEPS) -> list[int]:
    """Where the streamed answer is cut: at most ``steps`` ends of Markdown
    blocks (``\\n\\n``), spread about evenly over its length; the last is
    ``len(text)``. A short answer streams block by block."""
    ends = [m.start() for m in re.finditer("\n\n", text)] + [len(text)]
    if len(ends) <= steps:
        return ends
    cuts = []
    for k in range(1, steps):
        end = ends[bisect.bisect_left(ends, len(text) * k / steps)]
        if end < len(text) and (not cuts or end > cuts[-1]):
            cuts.append(end)
    return cuts + [len(text)]


def _text_of(content) -> str:
    """A message's text: Gradio hands content back as a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    return "".join(str(p.get("text") or "") if isinstance(p, dict) else str(p) for p in (content or []))


_FENCED = re.compile(r"\A(`{3,})text\n(.*)\n\1\Z", re.S)


def typed_text(bubble: str) -> str:
    """What the agent typed, back from ``user_bubble``'s inert Markdown."""
    m = _FENCED.match(bubble)
    return m.group(2) if m else re.sub(r"\\(.)", r"\1", bubble)


def conversation(history: list[dict] | None, answers: dict | None) -> list[dict]:
    """The conversation shown, as the answerer reads it: the agent's own words (kept with
    each answer, or read back from the bubble) and the answers' Markdown, oldest first."""
    answers = answers or {}
    turns = []
    for i, message in enumerate(history or []):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            continue
        text = _text_of(message.get("content"))
        if role == "user":
            kept = answers.get(str(i + 1))
            text = kept["question"] if isinstance(kept, dict) and "question" in kept else typed_text(text)
        if text.strip():
            turns.append({"role": role, "content": text})
    return turns


class ChatUI:
    def __init__(self, answerer: Answerer, feedback_log: FeedbackLog | None = None, title: str = "Bouncebot",
                 concurrency: int = DEFAULT_CONCURRENCY, on_answer=None, recorder=None):
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}: give a whole number of questions, at least 1.")
        self.answerer = answerer
        self.feedback_log = feedback_log
        self.title = title
        self.concurrency = concurrency
        self.on_answer = on_answer or (lambda answer: None)  # each answer (None: it failed), for the metrics
        self.recorder = recorder  # app.storage.recorder.Recorder: each answer in the conversation log, or None

    def respond(self, message: str, history: list[dict] | None, answers: dict | None = None):
        """One turn, streamed: yields (history, code cards, sources, cleared input, answers by message index).

        Every update yields the same ``history`` list (the caller's, copied once,
        plus this turn) with a new last message: at most ``STREAM_STEPS`` updates."""
        history = list(history or [])
        answers = dict(answers or {})
        message = message or ""
        limit = getattr(self.answerer, "max_question_bytes", 200 * 1024)  # a turn too long is left out
        turns = [t for t in conversation(history, answers) if len(t["content"].encode("utf-8", "replace")) <= limit]
        started = time.perf_counter()
        if streams_tokens(self.answerer):
            yield from self._respond_streamed(message, turns, history, answers, started)
            return
        try:
            answer = self.answerer.ask(message, turns)
        except BadQuestion as e:
            yield self._refused(message, history, e), "", "", message, answers
            return
        except Exception:
            self.on_answer(None)
            raise
        self.on_answer(answer)
        history += [{"role": "user", "content": user_bubble(message)}, {"role": "assistant", "content": ""}]
        answers[str(len(history) - 1)] = answer.to_dict()  # kept as JSON for the thumbs up/down
        self._logged(answers, str(len(history) - 1), answer, started)
        cards, sources = panels(answer)
        text = answer.answer
        for end in stream_cuts(text):
            history[-1] = {"role": "assistant", "content": text[:end]}
            yield history, cards, sources, "", answers

    @staticmethod
    def _refused(message: str, history: list, e: BadQuestion) -> list:
        return history + [{"role": "user", "content": user_bubble(message) or " "},
                          {"role": "assistant", "content": TEXTS["refused"].format(problem=markdown_text(str(e)))}]

    def _logged(self, answers: dict, key: str, answer: Answer, started: float) -> None:
        """Record the answer in the conversation log; its row id kept for the message's thumbs
        (``answers["log_ids"][key]``, beside the answers kept by message index)."""
        if self.recorder is None:
            return
        log_id = self.recorder.record(answer, "chat", (time.perf_counter() - started) * 1000)
        if log_id is not None:
            answers["log_ids"] = {**answers.get("log_ids", {}), key: log_id}

    def _respond_streamed(self, message: str, turns: list, history: list, answers: dict, started: float):
        """A language-model turn: the skeleton's cards at once, the model's text in batches, the final answer."""
        events = batched(self.answerer.stream_ask(message, turns))
        try:
            kind, skeleton = next(events)
        except BadQuestion as e:
            yield self._refused(message, history, e), "", "", message, answers
            return
        history += [{"role": "user", "content": user_bubble(message)}, {"role": "assistant", "content": ""}]
        key = str(len(history) - 1)
        answers[key] = skeleton.to_dict()
        cards, sources = panels(skeleton)
        for kind, value in itertools.chain([("text", "")], events):  # the skeleton shown at once, then the rest
            if kind == "text":
                history[-1] = {"role": "assistant", "content": draft_markdown(value, skeleton, TEXTS["llm_writing"])}
            else:  # the final answer (or a new skeleton): its own cards, sources and Markdown
                answers[key] = value.to_dict()
                if kind == "final":
                    self.on_answer(value)
                    self._logged(answers, key, value, started)
                cards, sources = panels(value)
                history[-1] = {"role": "assistant", "content": shown_markdown(value)}
            yield history, cards, sources, "", answers

    def on_feedback(self, answers: dict | None, comment: str, like: gr.LikeData) -> str:
        if self.feedback_log is None:
            return TEXTS["feedback_off"]
        key = str(like.index[0] if isinstance(like.index, (list, tuple)) else like.index)
        answer = (answers or {}).get(key)
        if answer is None:
            return TEXTS["feedback_no_answer"]
        try:
            self.feedback_log.add(
                "up" if like.liked else "down", answer["question"], answer["answer"], comment or "",
                answer["answered"], answer["codes"], answer["sources"],
            )
        except BouncebotError as e:  # the database cannot take it (deleted, read-only, full, too large)
            return TEXTS["feedback_not_saved"].format(problem=e)
        log_id = (answers or {}).get("log_ids", {}).get(key)
        if self.recorder is not None and log_id is not None:  # the rating on the logged message too
            self.recorder.rate(log_id, "up" if like.liked else "down", comment or "")
        return TEXTS["feedback_up" if like.liked else "feedback_down"]

    def create_app(self) -> gr.Blocks:
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            gr.Markdown(f"## {self.title}\n{TEXTS['intro']}")
            answers = gr.State({})
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label=TEXTS["conversation"], height=480, sanitize_html=True, elem_id="chat",
                        buttons=["copy", "copy_all"], feedback_options=("Like", "Dislike"),
                        latex_delimiters=[],  # no answer has maths; a pasted "$$" is shown, not typeset
                    )
                    question = gr.Textbox(
                        label=TEXTS["question"], placeholder=TEXTS["placeholder"],
                        lines=3, max_lines=14, elem_id="question",
                    )
                    with gr.Row():
                        send = gr.Button(TEXTS["ask"], variant="primary", elem_id="ask")
                        clear = gr.Button(TEXTS["clear"], elem_id="clear")
                    comment = gr.Textbox(label=TEXTS["comment"], lines=1, elem_id="comment")
                    status = gr.Markdown("", elem_id="feedback-status")
                    gr.Examples(examples=EXAMPLES, inputs=question, label=TEXTS["examples"])
                with gr.Column(scale=2):
                    gr.Markdown(f"### {TEXTS['codes']}")
                    cards = gr.HTML(CARDS_PLACEHOLDER, elem_id="cards")
                    gr.Markdown(f"### {TEXTS['sources']}")
                    sources = gr.HTML("", elem_id="sources")
            outputs = [chatbot, cards, sources, question, answers]
            ask = dict(fn=self.respond, inputs=[question, chatbot, answers], outputs=outputs,
                       concurrency_limit=self.concurrency, concurrency_id=ASK_CONCURRENCY_ID)
            send.click(**ask, api_name="ask")
            question.submit(**ask, api_name=False)
            reset = lambda: ([], CARDS_PLACEHOLDER, "", "", {})  # noqa: E731
            clear.click(reset, None, outputs, api_name=False)
            chatbot.clear(reset, None, outputs, api_name=False)  # the chat's own trash icon
            chatbot.like(self.on_feedback, [answers, comment], status, api_name=False)
        # Gradio runs one event at a time unless told otherwise (clear, feedback: this default).
        return demo.queue(default_concurrency_limit=self.concurrency)
