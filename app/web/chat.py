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
"""

from __future__ import annotations

import bisect
import html
import re

import gradio as gr

from app._data import data_file, data_text
from app.answering.answerer import Answerer
from app.errors import BadQuestion, BouncebotError

EXAMPLES = data_file("app.web", "examples.yaml")
CSS = data_text("app.web", "chat.css")
CARDS_PLACEHOLDER = '<p class="bb-empty">Ask a question to see the codes it contains.</p>'
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


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _multiline(text: str) -> str:
    return _e(text).replace("\n", "<br>")


def code_cards_html(answer: dict) -> str:
    """One card per code: the table's words for an exact match; a clearly
    marked not-in-table card, with general guidance labelled as such, otherwise."""
    if not answer["codes"]:
        return '<p class="bb-empty">No SMTP code in the question.</p>'
    cards = []
    for c in answer["codes"]:
        sev = _e(c["severity"])
        head = f'<div class="bb-card-head"><span class="bb-code">{_e(c["code"])}</span>' \
               f'<span class="bb-badge bb-{sev}">{sev}</span>'
        if c["match"] == "exact":
            r = c["row"]
            via = f' <span class="bb-via">table row {_e(r["code"])}</span>' if r["code"] != c["code"] else ""
            cards.append(
                f'<div class="bb-card bb-exact" data-code="{_e(c["code"])}">{head}'
                f'<span class="bb-badge bb-intable">in the article’s table</span>{via}</div>'
                f'<p><b>What it means:</b> <span class="bb-meaning">{_e(r["meaning"])}</span></p>'
                f'<p><b>What you can do:</b> <span class="bb-action">{_e(r["action"])}</span></p></div>'
            )
            continue
        body = ['<p class="bb-warn">Not in the article’s table: the article does not say what this code means.</p>']
        e = c.get("explanation")
        if e:
            body.append(
                f'<p class="bb-general"><b>General guidance, not from the article</b> ({_e(e["basis"])}): '
                f'{_e(e["meaning"])}</p><p class="bb-general"><b>What you can generally do:</b> {_e(e["action"])}</p>'
            )
        if c.get("related"):
            rel = ", ".join(f'{_e(r["code"])} ({_e(r["shares"])})' for r in c["related"])
            body.append(f'<p class="bb-related">Closest in the article (not this code): {rel}</p>')
        cards.append(
            f'<div class="bb-card bb-none" data-code="{_e(c["code"])}">{head}'
            f'<span class="bb-badge bb-notintable">not in the table</span></div>{"".join(body)}</div>'
        )
    return "\n".join(cards)


def recipients_html(answer: dict) -> str:
    """For a pasted bounce: each failed recipient, its decisive code and why."""
    recipients = [r for r in answer.get("recipients", []) if r["recipient"] or r["status"] or r["reply_code"]]
    if not recipients or (len(recipients) == 1 and not recipients[0]["recipient"]):
        return ""
    rows = "".join(
        f'<li><span class="bb-rcpt">{_e(r["recipient"] or "(recipient not named)")}</span>: '
        f'<span class="bb-code">{_e(" ".join(x for x in (r["reply_code"], r["status"]) if x) or "no code")}</span>'
        f' <span class="bb-why">({_e(r["decisive"])})</span></li>'
        for r in recipients
    )
    return f'<div class="bb-recipients"><b>Failed recipients in the bounce</b><ul>{rows}</ul></div>'


def sources_html(answer: dict) -> str:
    if not answer["sources"]:
        return '<p class="bb-empty">No section cited.</p>'
    items = []
    for s in answer["sources"]:
        words = s["text"].replace("\n", " ").split()
        opening = " ".join(words[:7]) + (" …" if len(words) > 7 else "")
        items.append(
            f'<details class="bb-source"><summary><a href="{_e(s["url"])}" target="_blank" rel="noopener noreferrer">'
            f'{_e(s["article"])} › {_e(s["section"])}</a> <span class="bb-score">{float(s["score"]):.2f}</span>'
            f'<div class="bb-opening">“{_e(opening)}”</div>'
            f'</summary><blockquote>{_multiline(s["text"])}</blockquote></details>'
        )
    return "\n".join(items)


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


class ChatUI:
    def __init__(self, answerer: Answerer, feedback_log=None, title: str = "Bouncebot",
                 concurrency: int = DEFAULT_CONCURRENCY):
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}: give a whole number of questions, at least 1.")
        self.answerer = answerer
        self.feedback_log = feedback_log
        self.title = title
        self.concurrency = concurrency

    def respond(self, message: str, history: list[dict] | None, answers: dict | None = None):
        """One turn, streamed: yields (history, code cards, sources, cleared input, answers by message index).

        Every update yields the same ``history`` list (the caller's, copied once,
        plus this turn) with a new last message: at most ``STREAM_STEPS`` updates."""
        history = list(history or [])
        answers = dict(answers or {})
        message = message or ""
        try:
            answer = self.answerer.ask(message).to_dict()
        except BadQuestion as e:
            history += [{"role": "user", "content": user_bubble(message) or " "},
                        {"role": "assistant", "content": f"⚠️ {markdown_text(str(e))}"}]
            yield history, "", "", message, answers
            return
        history.append({"role": "user", "content": user_bubble(message)})
        history.append({"role": "assistant", "content": ""})
        answers[str(len(history) - 1)] = answer
        cards, sources = recipients_html(answer) + code_cards_html(answer), sources_html(answer)
        text = answer["answer"]
        for end in stream_cuts(text):
            history[-1] = {"role": "assistant", "content": text[:end]}
            yield history, cards, sources, "", answers

    def on_feedback(self, answers: dict | None, comment: str, like: gr.LikeData) -> str:
        if self.feedback_log is None:
            return "Feedback is not stored in this session."
        answer = (answers or {}).get(str(like.index[0] if isinstance(like.index, (list, tuple)) else like.index))
        if answer is None:
            return "That message has no answer to rate."
        try:
            self.feedback_log.add(
                "up" if like.liked else "down", answer["question"], answer["answer"], comment or "",
                answer["answered"], answer["codes"], answer["sources"],
            )
        except BouncebotError as e:  # the database cannot take it (deleted, read-only, full, too large)
            return f"⚠️ Not saved: {e}"
        return "Thanks: feedback saved." if like.liked else "Thanks: saved as a case to review."

    def create_app(self) -> gr.Blocks:
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            gr.Markdown(
                f"## {self.title}\nWhy did a reply bounce? Ask about an error code or paste the delivery-failure "
                "note. Codes in the article's table get its exact words; anything else is marked as not from the "
                "article; questions get the article's passages with their sections."
            )
            answers = gr.State({})
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation", height=480, sanitize_html=True, elem_id="chat",
                        buttons=["copy", "copy_all"], feedback_options=("Like", "Dislike"),
                        latex_delimiters=[],  # no answer has maths; a pasted "$$" is shown, not typeset
                    )
                    question = gr.Textbox(
                        label="Question or pasted bounce", placeholder="e.g. What does 550-5.1.1 mean?",
                        lines=3, max_lines=14, elem_id="question",
                    )
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask")
                        clear = gr.Button("Clear", elem_id="clear")
                    comment = gr.Textbox(label="Comment on your thumbs up/down (optional)", lines=1,
                                         elem_id="comment")
                    status = gr.Markdown("", elem_id="feedback-status")
                    gr.Examples(examples=EXAMPLES, inputs=question, label="Examples")
                with gr.Column(scale=2):
                    gr.Markdown("### Codes")
                    cards = gr.HTML(CARDS_PLACEHOLDER, elem_id="cards")
                    gr.Markdown("### Cited sections")
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
