"""One server: a FastAPI application serving the JSON API (``app.api``) and
the help-centre widget (``app.widget``: /widget.js, /widget, /demo) with the
Gradio chat mounted at ``/``.

Clients (model, Chroma, feedback store) are built once in ``serve`` and
passed to ``create_app``; nothing is created at import time.
"""

from __future__ import annotations

import sys

from .config import Settings
from .startup import Services, build


def create_app(services: Services, store, settings: Settings | None = None):
    """``settings`` defaults to ``services.settings`` (the widget's allowlist and rate come from it)."""
    import gradio as gr
    from fastapi import FastAPI

    from . import widget
    from .api import install_error_handlers, router
    from .chat import CSS, THEME, ChatUI

    app = FastAPI(
        title="Bouncebot",
        version="0.1.0",
        description="Answers support agents' questions about bounced email replies from the help article.",
    )
    install_error_handlers(app)
    app.include_router(router(services, store))
    widget.install(app, services, settings)  # before the chat takes over "/"
    demo = ChatUI(services.answerer, store=store).create_app()
    return gr.mount_gradio_app(app, demo, path="/", theme=THEME, css=CSS, footer_links=["api"])


def serve(settings: Settings) -> None:
    import uvicorn

    from .feedback import FeedbackStore

    services = build(settings).warm()  # fails fast (with the fix) when the index is missing or stale
    store = FeedbackStore(settings.feedback_db)
    app = create_app(services, store)
    print(f"Bouncebot is answering on http://{settings.host}:{settings.port}/ "
          f"(help-centre widget demo: http://{settings.host}:{settings.port}/demo)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
