"""The web chat for support agents: a thin Gradio layer over ``Answerer``.

``ChatUI.create_app()`` builds the interface without starting anything, so
tests can build it and call ``respond`` directly; launching is the server's
job (``app.server``).
"""

from __future__ import annotations

from importlib import resources

import gradio as gr
import yaml

from .answer import Answer, Answerer
from .errors import BadQuestion

EXAMPLES = yaml.safe_load(resources.files("app").joinpath("data/examples.yaml").read_text(encoding="utf-8"))

# System fonts only: the default theme would fetch web fonts from a CDN.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)


def rows_markdown(answer: Answer) -> str:
    if not answer.codes:
        return "_No SMTP code in the question._"
    lines = []
    for c in answer.codes:
        if c["match"] == "exact":
            r = c["row"]
            lines.append(
                f"**{c['code']}** → table row **{r['code']}** ({c['severity']})\n\n"
                f"- *What it means:* {r['meaning']}\n- *What you can do:* {r['action']}"
            )
        else:
            lines.append(f"**{c['code']}** ({c['severity']}): **not in the article's table**")
    return "\n\n".join(lines)


def sources_markdown(answer: Answer) -> str:
    if not answer.sources:
        return "_No section cited._"
    return "\n".join(f"- [{s['article']} › {s['section']}]({s['url']}) (score {s['score']:.2f})" for s in answer.sources)


class ChatUI:
    def __init__(self, answerer: Answerer, title: str = "Bouncebot"):
        self.answerer = answerer
        self.title = title

    def respond(self, message: str, history: list[dict] | None):
        """One turn: (new history, rows panel, sources panel, cleared input)."""
        history = list(history or [])
        try:
            answer = self.answerer.ask(message)
        except BadQuestion as e:
            history += [{"role": "user", "content": message or ""}, {"role": "assistant", "content": f"⚠️ {e}"}]
            return history, "", "", ""
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": answer.answer}]
        return history, rows_markdown(answer), sources_markdown(answer), ""

    def create_app(self) -> gr.Blocks:
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            gr.Markdown(
                f"## {self.title}\nWhy did a reply bounce? Ask about an error code or paste the delivery-failure "
                "note. Codes in the article's table get its exact words; everything else is quoted from the "
                "article with its section."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Conversation", height=460, sanitize_html=True, elem_id="chat")
                    question = gr.Textbox(
                        label="Question or pasted bounce",
                        placeholder="e.g. What does 550-5.1.1 mean?",
                        lines=3,
                        max_lines=12,
                        elem_id="question",
                    )
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask")
                        clear = gr.Button("Clear")
                    gr.Examples(examples=EXAMPLES, inputs=question, label="Examples")
                with gr.Column(scale=2):
                    gr.Markdown("### Error-table rows")
                    rows = gr.Markdown("_Ask a question to see the codes it contains._", elem_id="rows")
                    gr.Markdown("### Cited sections")
                    sources = gr.Markdown("", elem_id="sources")
            outputs = [chatbot, rows, sources, question]
            send.click(self.respond, [question, chatbot], outputs, api_name="ask")
            question.submit(self.respond, [question, chatbot], outputs, api_name=False)
            clear.click(lambda: ([], "", "", ""), None, outputs, api_name=False)
        return demo
