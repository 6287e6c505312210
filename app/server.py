"""One server: a FastAPI application with the Gradio chat mounted at ``/``.

Clients are built once at start-up (``create_app``) and passed in; nothing is
created at import time.
"""

from __future__ import annotations

import sys

from .config import Settings
from .startup import Services, build


def create_app(services: Services):
    import gradio as gr
    from fastapi import FastAPI

    from .chat import THEME, ChatUI

    api = FastAPI(title="Bouncebot", version="0.1.0")

    @api.get("/healthz")
    def healthz():
        retriever = services.answerer.retriever
        return {
            "status": "ok",
            "model_loaded": services.embedder.loaded,
            "documents": len(retriever),
            "table_rows": len(services.table.rows),
        }

    demo = ChatUI(services.answerer).create_app()
    return gr.mount_gradio_app(api, demo, path="/", theme=THEME)


def serve(settings: Settings) -> None:
    import uvicorn

    services = build(settings).warm()  # fails fast (with the fix) when the index is missing or stale
    app = create_app(services)
    print(f"Bouncebot is answering on http://{settings.host}:{settings.port}/", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
