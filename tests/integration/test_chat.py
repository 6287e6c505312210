"""The Gradio chat: built without a server, then served for real on loopback.

Most tests here use ``FakeAnswerer`` (the ``ask()``/``check()`` interface of
``app.answer.Answerer``, no model, answers of any length, a question that
can be held back on purpose); the ``slow`` ones load the real model.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from app.answering.render import LABELS, WORDING

from ..conftest import KB
from ..servers import LiveServer

slow = pytest.mark.slow


# ------------------------------------------------------------------ helpers

class FakeAnswerer:
    """Deterministic answers of ``blocks`` Markdown blocks of ``block_chars``
    characters each. A question containing ``HOLD`` waits in ``ask()`` until
    ``release`` is set (at most ``hold_timeout`` seconds), so a test controls
    how long a slow event runs."""

    def __init__(self, blocks: int = 3, block_chars: int = 60, hold_timeout: float = 30, max_bytes: int = 200 * 1024):
        self.blocks, self.block_chars, self.hold_timeout, self.max_bytes = blocks, block_chars, hold_timeout, max_bytes
        self.started, self.release = threading.Event(), threading.Event()
        self.finished: dict[str, float] = {}

    def check(self, question):
        from app.errors import EmptyQuestion, QuestionTooLong

        if not isinstance(question, str) or not question.strip():
            raise EmptyQuestion()
        if len(question.encode()) > self.max_bytes:
            raise QuestionTooLong(len(question.encode()), self.max_bytes)
        return question

    def text(self) -> str:
        return "\n\n".join(f"**550-5.1.{i % 10}** block {i}: " + "x" * self.block_chars for i in range(self.blocks))

    @property
    def max_question_bytes(self) -> int:
        return self.max_bytes

    def ask(self, question, history=None):
        from app.answering.contract import Answer

        question = self.check(question)
        self.history = list(history or [])  # what the chat sent: the conversation it shows
        if "HOLD" in question:
            self.started.set()
            self.release.wait(self.hold_timeout)
        self.finished[question] = time.monotonic()
        return Answer(question=question, answer=self.text(), answered=True)


def last(gen):
    out = None
    for out in gen:
        pass
    return out


def text_of(content) -> str:
    """A message's text: the Gradio client hands content back as a list of parts."""
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def wire_history(turns: int, answer_chars: int = 2000) -> list[dict]:
    """A conversation as the browser sends it back: content as a list of text parts."""
    out = []
    for i in range(turns):
        out.append({"role": "user", "content": [{"type": "text", "text": f"question {i} about 550 5.1.1"}]})
        out.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {i} " + "y" * answer_chars}]})
    return out


@contextmanager
def served(ui, **mount):
    """The chat mounted the way app.server mounts it, on loopback."""
    import gradio as gr
    from fastapi import FastAPI

    from app.web.chat import CSS, THEME

    app = gr.mount_gradio_app(FastAPI(), ui.create_app(), path="/", theme=THEME, css=CSS, **mount)
    with LiveServer(app) as server:
        yield server.url


def call_ask(url: str, question: str, history: list, timeout: float = 120) -> tuple[list, int, int]:
    """The chat's ``ask`` endpoint through Gradio's REST API (what curl uses; every
    update carries the full outputs). Returns (final outputs, bytes streamed, updates)."""
    with httpx.Client(base_url=url, timeout=timeout) as c:
        event = c.post("/gradio_api/call/ask", json={"data": [question, history]})
        event.raise_for_status()
        final, nbytes, updates, kind = None, 0, 0, None
        with c.stream("GET", f"/gradio_api/call/ask/{event.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                nbytes += len(line.encode()) + 1
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("generating", "complete"):
                    updates += kind == "generating"
                    final = json.loads(line[5:])
                elif line.startswith("data:") and kind == "error":
                    raise AssertionError(f"the chat failed: {line}")
        return final, nbytes, updates


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [f"{k}={v}" for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)

    @property
    def shown(self) -> str:
        """The text a reader sees (without the newline after the last element)."""
        return "".join(self.text).strip("\n")


def render(markdown: str) -> _Elements:
    """``markdown`` as a CommonMark renderer (raw HTML allowed) turns it into HTML,
    after the ``inspect.cleandoc`` Gradio's Chatbot applies to every message."""
    from markdown_it import MarkdownIt

    parsed = _Elements()
    parsed.feed(MarkdownIt("commonmark").render(inspect.cleandoc(markdown)))
    return parsed


# What turns plain text into a link under GitHub-flavoured Markdown (the chat's renderer,
# marked with gfm, autolinks these even without <...>): a scheme, "www." or an e-mail address.
GFM_AUTOLINK = re.compile(r"(?i)(?:https?|ftp)://|www\.|[\w.+-]@[\w-]")


def inline_sources(markdown: str) -> list[str]:
    """The Markdown source of every run of inline text (code blocks excluded)."""
    from markdown_it import MarkdownIt

    return [t.content for t in MarkdownIt("commonmark").parse(inspect.cleandoc(markdown)) if t.type == "inline"]


def as_typed(message: str) -> str:
    return message.strip().replace("\r\n", "\n").replace("\r", "\n")


@pytest.fixture(scope="module")
def ui(answerer):
    from app.web.chat import ChatUI

    return ChatUI(answerer)


# ------------------------------------------------------------- with the model

@slow
def test_builds_without_a_server(ui):
    import gradio as gr

    demo = ui.create_app()
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"chat", "question", "ask", "cards", "sources", "comment"} <= ids


@slow
def test_answer_streams_in_and_shows_card_and_sources(ui):
    lengths, out = [], None
    for out in ui.respond("What does 550 5.1.1 mean?", [], {}):
        lengths.append(len(out[0][-1]["content"]))
    assert len(lengths) > 1  # streamed in several updates
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    history, cards, sources, cleared, answers = out
    assert cleared == ""
    assert history[0]["role"] == "user" and render(history[0]["content"]).shown == "What does 550 5.1.1 mean?"
    assert "Confirm the customer’s email address and update the contact before sending again." in history[1]["content"]
    assert 'class="bb-card bb-exact"' in cards and "permanent" in cards
    assert "Confirm the customer’s email address" in cards
    assert "Common delivery errors" in sources and "<details" in sources
    assert answers["1"]["codes"][0]["row"]["code"] == "550-5.1.1"


@slow
def test_the_chat_answers_follow_ups_drafts_and_handoffs_from_the_conversation(ui):
    history, _, _, _, answers = last(ui.respond("What does 552-5.2.2 mean?", [], {}))
    history, cards, _, _, answers = last(ui.respond("ok so what now?", history, answers))
    assert answers["3"]["intent"] == "follow_up" and answers["3"]["codes"][0]["from_history"] is True
    assert "The recipient’s mailbox is full and cannot receive new messages." in history[-1]["content"]
    history, _, _, _, answers = last(ui.respond("can you write something I can text the customer about this?",
                                                history, answers))
    assert answers["5"]["intent"] == "draft" and "```text" in history[-1]["content"]
    history, _, _, _, answers = last(ui.respond("still failing after all those steps", history, answers))
    h = answers["7"]["handoff"]
    assert answers["7"]["intent"] == "handoff" and "```text" in history[-1]["content"]
    assert [f["value"] for f in h["fields"]].count(None) == 3  # only the code is in this conversation
    history, _, _, _, answers = last(ui.respond("how do I create a macro?", history, answers))
    assert answers["9"]["codes"] == []  # a new topic carries nothing


@slow
def test_conversation_is_kept_and_untabled_codes_are_marked(ui):
    history, _, _, _, answers = last(ui.respond("What does 550 5.1.1 mean?", [], {}))
    history, cards, _, _, answers = last(ui.respond("and 550 5.7.26?", history, answers))
    assert len(history) == 4 and set(answers) == {"1", "3"}
    assert "bb-none" in cards and html.escape(LABELS["not_in_table"]) in cards
    assert "General guidance, not from the article" in cards


@slow
def test_html_in_the_question_is_shown_as_text(ui):
    question = "<img src=x onerror=alert(1)> what is 550-5.1.1"
    history, cards, _, _, _ = last(ui.respond(question, [], {}))
    shown = render(history[0]["content"])
    assert shown.tags == ["p"] and shown.shown == question
    assert "<img" not in history[1]["content"] and "<img" not in cards


@slow
def test_pasted_bounce_is_shown_verbatim_in_a_block(ui):
    paste = "Delivery has failed.\n<user@example.com>: host mx said: 550 5.1.1 <b>unknown</b>"
    history, _, _, _, _ = last(ui.respond(paste, [], {}))
    assert history[0]["content"].startswith("```text\n") and "<b>unknown</b>" in history[0]["content"]


@slow
def test_empty_input_is_a_message_not_a_crash(ui):
    history, *_ = last(ui.respond("  ", [], {}))
    assert "question is empty" in history[-1]["content"]


@slow
def test_served_on_loopback_answers_through_the_gradio_api(services, tmp_path):
    from gradio_client import Client

    from app.web.feedback import FeedbackLog
    from app.web.server import create_app

    with LiveServer(create_app(services, FeedbackLog(tmp_path / "fb.sqlite3"))) as server:
        client = Client(f"{server.url}/", verbose=False)
        history, cards, sources, _ = client.predict("my reply bounced: 552-5.2.2", [], api_name="/ask")  # state is not part of the API
        text = text_of(history[-1]["content"])
        assert "The recipient’s mailbox is full and cannot receive new messages." in text
        assert "552-5.2.2" in cards


@slow
def test_pasted_bounce_lists_its_recipients(ui):
    from ..unit.test_lookup import DSN

    history, cards, _, _, answers = last(ui.respond(DSN, [], {}))
    assert "Failed recipients in the bounce" in cards and "pat@example.org" in cards
    assert "Status: field" in cards or "Diagnostic-Code" in cards
    assert answers["1"]["codes"][0]["row"]["code"] == "550-5.1.1"


# ------------------------------------ finding 2: streaming costs O(answer + history)

def test_a_long_answer_streams_in_a_bounded_number_of_updates():
    """A 1,000-code paste answers in about 3,000 blocks. Every update hands Gradio
    the whole conversation (it post-processes and diffs all of it), so the
    number of updates must not grow with the answer."""
    from app.web.chat import ChatUI

    fake = FakeAnswerer(blocks=3000, block_chars=170)  # ~590 KB: a 1,000-code paste got 3,005 blocks, 524 KB
    history = [{"role": r, "content": f"turn {i} " + "y" * 2000} for i in range(20) for r in ("user", "assistant")]
    before = [dict(m) for m in history]
    answer = fake.text()
    history_chars = sum(len(m["content"]) for m in history)

    updates, handed_over, shown = 0, 0, []
    for out in ChatUI(fake).respond("a long paste", history, {}):
        updates += 1
        handed_over += sum(len(m["content"]) for m in out[0]) + len(out[1]) + len(out[2])
        shown.append(out[0][-1]["content"])
        assert all(a is b for a, b in zip(out[0], history))  # earlier turns handed on as they are, not copied

    assert shown[-1] == answer  # all of it, in the end
    assert 1 < updates <= 10  # still streamed in, in a bounded number of steps
    assert all(answer.startswith(s) and answer[len(s):len(s) + 2] in ("", "\n\n") for s in shown)  # whole blocks
    assert [len(s) for s in shown] == sorted({len(s) for s in shown})  # each update adds to the last
    assert handed_over <= 10 * (len(answer) + history_chars)
    assert history == before  # the caller's conversation is not changed


@slow
def test_streaming_over_the_wire_sends_bytes_in_proportion_to_answer_and_history():
    """Gradio's REST API sends the whole outputs with every update: bytes on the
    wire are (updates) x (conversation), so this is what a long answer costs."""
    from app.web.chat import ChatUI

    fake = FakeAnswerer(blocks=1000, block_chars=100)
    history = wire_history(20)
    answer_bytes, history_bytes = len(fake.text().encode()), len(json.dumps(history).encode())
    with served(ChatUI(fake)) as url:
        final, nbytes, updates = call_ask(url, "a long paste", history)
    chat, cleared = final[0], final[3]  # (chat, cards, sources, question box, state)
    assert text_of(chat[-1]["content"]) == fake.text() and cleared == "" and len(chat) == len(history) + 2
    assert 1 < updates <= 10
    assert nbytes <= 10 * (answer_bytes + history_bytes), f"{nbytes:,} bytes for a {answer_bytes:,}-byte answer"


# ---------------------------------------- finding 2: chat events run concurrently

@slow
def test_a_slow_question_does_not_hold_up_another_agents_fast_one():
    """Agent A's question is held in ask(); agent B's must be answered meanwhile.
    With Gradio's default of one event at a time, B waits for A."""
    from app.web.chat import ChatUI

    fake = FakeAnswerer(hold_timeout=30)
    with served(ChatUI(fake)) as url:
        results: dict[str, object] = {}
        slow_call = threading.Thread(target=lambda: results.setdefault("A", call_ask(url, "A HOLD", [])))
        slow_call.start()
        try:
            assert fake.started.wait(15), "the slow question never started"
            start = time.monotonic()
            (chat, *_), _, _ = call_ask(url, "B: what does 550 5.1.1 mean?", [], timeout=10)
            fast_seconds = time.monotonic() - start
            assert text_of(chat[-1]["content"]) == fake.text()
            assert "A HOLD" not in fake.finished, "the fast question was answered only after the slow one"
            assert fast_seconds < 5
        finally:
            fake.release.set()
            slow_call.join(30)
        assert "A" in results and fake.finished["A HOLD"] > fake.finished["B: what does 550 5.1.1 mean?"]


@slow
def test_concurrency_is_the_setting_one_means_one_at_a_time():
    from app.web.chat import ChatUI

    fake = FakeAnswerer(hold_timeout=30)
    with served(ChatUI(fake, concurrency=1)) as url:
        second = threading.Thread(target=lambda: call_ask(url, "B fast", [], timeout=60))
        first = threading.Thread(target=lambda: call_ask(url, "A HOLD", [], timeout=60))
        first.start()
        try:
            assert fake.started.wait(15)
            second.start()
            time.sleep(1.5)
            assert "B fast" not in fake.finished  # queued behind the held question
        finally:
            fake.release.set()
            first.join(30)
            second.join(30)
        assert fake.finished["B fast"] > fake.finished["A HOLD"]


def test_ask_events_share_one_limit_and_the_queue_default_is_the_setting():
    from app.web.chat import ChatUI

    demo = ChatUI(FakeAnswerer(), concurrency=3).create_app()
    asks = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "respond"]
    assert len(asks) == 2  # the Ask button and Enter in the question box
    assert {f.concurrency_limit for f in asks} == {3} and len({f.concurrency_id for f in asks}) == 1
    assert demo._queue.default_concurrency_limit == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8"])
def test_a_concurrency_below_one_or_not_a_whole_number_is_refused(bad):
    from app.web.chat import ChatUI

    with pytest.raises(ValueError):
        ChatUI(FakeAnswerer(), concurrency=bad)


def test_the_setting_defaults_to_a_team_and_is_read_from_the_environment():
    from app.config import Settings
    from app.errors import BadSetting

    assert Settings().chat_concurrency == 8 == Settings.from_env({}).chat_concurrency
    assert Settings.from_env({"BOUNCEBOT_CHAT_CONCURRENCY": "3"}).chat_concurrency == 3
    for bad in ("0", "-2", "many", "2.5"):
        with pytest.raises(BadSetting, match="BOUNCEBOT_CHAT_CONCURRENCY"):
            Settings.from_env({"BOUNCEBOT_CHAT_CONCURRENCY": bad})


def _mounted_blocks(app):
    for route in app.routes:
        inner = getattr(route, "app", None)
        if hasattr(inner, "get_blocks"):
            return inner.get_blocks()
    raise AssertionError("no Gradio app mounted")


@slow
def test_the_server_passes_the_setting_to_the_chat(services, feedback_log):
    from app.web.server import create_app

    app = create_app(services, feedback_log, services.settings.with_(chat_concurrency=5))
    asks = [f for f in _mounted_blocks(app).fns.values() if getattr(f.fn, "__name__", "") == "respond"]
    assert asks and {f.concurrency_limit for f in asks} == {5}


# ---------------------------------- finding 5: the agent's text is inert text

HOSTILE = [
    # a line of four (five) backticks used to close the old fence early
    "````\n</code></pre><img src=http://evil.example/x.png><form action=http://evil.example/f>"
    "<input type=submit></form><a href=http://evil.example/a>a</a>",
    "`````\n<img src=x onerror=alert(1)>\n````\n<img src=http://evil.example/five.png>",
    "``````````\n<img src=http://evil.example/ten.png>",
    # one line, Markdown that loads or links
    "![p](http://evil.example/one.png)",
    "[link](http://evil.example)",
    "[x](javascript:alert(1)) and [y](  javascript:alert(1) 'title')",
    "<http://evil.example> and <mailto:pat@evil.example>",
    "http://evil.example/bare www.evil.example pat@evil.example ftp://evil.example",
    '<form action="http://evil.example/f"><input name=q></form>',
    "<img src=x onerror=alert(1)> what is 550-5.1.1",
    "<a href='http://evil.example'>click</a> <!-- comment --> <svg onload=alert(1)>",
    # entities and escapes shown as typed, never decoded into markup
    "&lt;img src=http://evil.example/e.png&gt; &#60;b&#62; &amp; &nbsp;",
    "\\<img src=http://evil.example/bs.png> \\\\[z](http://evil.example) trailing \\",
    # Markdown structure shown as typed
    "# heading *em* **strong** `code` ~~del~~ > quote - item 1. one | a | b |",
    "    <img src=http://evil.example/indented.png>",
    "$$\\href{http://evil.example}{x}$$ $x$",
    # several lines: the fence and what tries to get out of it
    "```mermaid\n<img src=http://evil.example/mermaid.png>\n```",
    "[ref]\n\n[ref]: http://evil.example/ref.png",
    "550 5.1.1\r<img src=http://evil.example/cr.png>\r\n![p](http://evil.example/crlf.png)",
    "see\r![p](http://evil.example/cr-only.png)",
    "~~~\n<img src=http://evil.example/tilde.png>\n~~~",
    "   indented first line\n\t<b>tab</b>\n```",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_the_agents_text_renders_as_inert_text(payload):
    from app.web.chat import user_bubble

    markdown = user_bubble(payload)
    shown = render(markdown)
    assert set(shown.tags) <= {"p", "pre", "code"}, shown.tags  # no img, a, form or raw HTML
    assert not [a for a in shown.attrs if a != "class=language-text"]  # no src, href, action, on...
    assert shown.shown == as_typed(payload).expandtabs()  # shown verbatim
    assert not [s for s in inline_sources(markdown) if GFM_AUTOLINK.search(s)]  # nothing GFM would autolink


PIECES = ["http://", "HTTPS://", "ftp://", "www.", "WwW.", "@", "evil.example", "mailto:", "javascript:", "<", ">",
          "`", "```", "````", "~~~", "[", "](", ")", "![", "]:", "&", "&amp;", "&#60;", "&#x3C;", "*", "**", "_", "~",
          "~~", "$$", "\\", "\n", "\r", "\r\n", " ", "    ", "#", "-", "+", "=", "1.", "12)", "|", ":", "/", ".",
          "a", "x", "550 5.1.1", "<img src=x>", "<!--", "é", "\u00a0"]


@hsettings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet="`~<>[]()!*_#$&;:/\\|-+=.@'\" \n\rahptwx0159é", max_size=60),
                 st.lists(st.sampled_from(PIECES), max_size=25).map("".join)))
def test_any_text_renders_as_exactly_that_text(payload):
    from app.web.chat import user_bubble

    markdown = user_bubble(payload)
    shown = render(markdown)
    assert set(shown.tags) <= {"p", "pre", "code"}
    assert shown.shown == as_typed(payload)
    assert not [s for s in inline_sources(markdown) if GFM_AUTOLINK.search(s)]


@pytest.mark.parametrize("question", [
    "What does 550-5.1.1 mean?", "my reply bounced: 552-5.2.2, what now?", "Is 421 4.7.28 (Gmail) temporary?",
])
def test_an_ordinary_question_is_kept_as_typed(question):
    """Only what could be markup is escaped: copy and the API give an agent's question back as typed."""
    from app.web.chat import user_bubble

    assert user_bubble(question) == question


def test_a_refused_question_is_shown_as_text_too():
    from app.web.chat import ChatUI

    question = "![p](http://evil.example/too-long.png) " + "x" * 100
    history, *_ = last(ChatUI(FakeAnswerer(max_bytes=50)).respond(question, [], {}))
    bubble, refusal = render(history[0]["content"]), render(history[1]["content"])
    assert bubble.tags == ["p"] and not bubble.attrs and bubble.shown == question
    assert refusal.tags == ["p"] and "the limit is 50 bytes" in refusal.shown
    assert refusal.shown.startswith(WORDING["chat"]["refused"].split("{")[0])  # the wording file's prefix


def test_the_chat_renders_no_latex_and_keeps_sanitizing():
    """$$...$$ in a paste would otherwise be handed to KaTeX instead of shown."""
    from app.web.chat import ChatUI

    demo = ChatUI(FakeAnswerer()).create_app()
    chatbot = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "chat")
    assert chatbot.latex_delimiters == [] and chatbot.sanitize_html is True


@slow
@pytest.mark.parametrize("payload", HOSTILE)
def test_answers_to_hostile_text_link_only_to_the_article(answerer, payload):
    """The answer quotes codes found in the question (normalised, digits only) and the article."""
    from app.web.chat import code_cards_html, recipients_html
    from app.knowledge.articles import load_articles

    article = load_articles(KB)[0].url
    answer = answerer.ask(payload).to_dict()
    shown = render(answer["answer"])
    assert not {"img", "form", "script", "iframe", "svg", "input"} & set(shown.tags)
    hrefs = [a[5:] for a in shown.attrs if a.startswith("href=")]
    assert all(h.startswith(article) for h in hrefs), hrefs
    cards = _Elements()
    cards.feed(recipients_html(answer) + code_cards_html(answer))
    assert not {"img", "form", "a", "script"} & set(cards.tags) and "evil" not in " ".join(cards.attrs)


# ---------------------------------------- finding 11: no uploads into the server

UPLOAD_ROUTES = [("/gradio_api/upload", "files"), ("/gradio_api/process_recording", "video")]


def _files(*dirs: Path) -> set[tuple[str, int]]:
    return {(str(p), p.stat().st_size) for d in dirs if d.exists() for p in d.rglob("*") if p.is_file()}


@pytest.fixture
def upload_dirs(tmp_path, monkeypatch):
    """Gradio's upload folder and the system temp folder, both empty and watched."""
    import gradio.routes

    uploads, system = tmp_path / "gradio-uploads", tmp_path / "system-tmp"
    uploads.mkdir()
    system.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))  # read when the Gradio app is created
    monkeypatch.setattr(gradio.routes, "DEFAULT_TEMP_DIR", str(uploads))  # the screen-recording route's copy
    monkeypatch.setattr(tempfile, "tempdir", str(system))  # where the multipart parser spools files
    return uploads, system


@slow
@pytest.mark.parametrize("route, field", UPLOAD_ROUTES)
def test_the_chat_app_mounted_with_its_upload_cap_refuses_files(upload_dirs, route, field):
    from app.web.chat import MAX_UPLOAD_BYTES, ChatUI

    with served(ChatUI(FakeAnswerer()), max_file_size=MAX_UPLOAD_BYTES) as url, httpx.Client(base_url=url) as c:
        for size in (1, 1024 * 1024):
            r = c.post(route, files={field: ("f.bin", b"\0" * size)})
            assert 400 <= r.status_code < 500, (size, r.status_code)
    assert _files(*upload_dirs) == set()


@slow
@pytest.mark.parametrize("route, field", UPLOAD_ROUTES)
def test_the_server_takes_no_upload_and_keeps_no_file(services, feedback_log, upload_dirs, route, field):
    """Against the whole server (app.server.create_app): not even an empty file
    (Gradio's screen-recording route keeps a spooled copy of every file it takes)."""
    from app.web.server import create_app

    with LiveServer(create_app(services, feedback_log)) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        for size in (0, 1, 1024 * 1024):
            r = c.post(route, files={field: ("f.bin", b"\0" * size)})
            assert 400 <= r.status_code < 500, (size, r.status_code)
        time.sleep(0.2)  # a background task would have moved an accepted file into place by now
    assert _files(*upload_dirs) == set()


def test_feedback_that_cannot_be_saved_says_so_instead_of_failing(tmp_path):
    import gradio as gr

    from app.web.chat import ChatUI
    from app.web.feedback import FeedbackLog

    feedback_log = FeedbackLog(tmp_path / "fb" / "feedback.sqlite3")
    ui = ChatUI(FakeAnswerer(), feedback_log=feedback_log)
    answers = {"1": {"question": "550 5.1.1", "answer": "a", "answered": True, "codes": [], "sources": []}}
    like = gr.LikeData(target=None, data={"index": 1, "value": "a", "liked": False})
    assert "saved" in ui.on_feedback(answers, "", like) and feedback_log.count() == 1
    for f in (tmp_path / "fb").iterdir():
        f.unlink()
    (tmp_path / "fb").rmdir()  # the database's folder deleted while serving
    status = ui.on_feedback(answers, "", like)
    assert status.startswith("⚠️ Not saved") and "deleted or replaced" in status
