"""One server: a FastAPI application serving the JSON API (``app.api``) and
the help-centre widget (``app.widget``: /widget.js, /widget, /demo) with the
Gradio chat mounted at ``/``.

Clients (model, Chroma, feedback log) are built once in ``serve`` and
passed to ``create_app``; nothing is created at import time.
"""

from __future__ import annotations

import sys

from app.config import Settings
from app.answering.ports import FeedbackLog
from app.answering.services import Services


def create_app(services: Services, feedback_log: FeedbackLog, settings: Settings | None = None, chat=None,
               rate_counter=None, conversations=None):
    """``settings`` defaults to ``services.settings`` (the widget's allowlist and rate come from it).
    ``rate_counter``: ``Storage.rate_counter`` (PostgreSQL), shared by replicas; None counts in memory.
    ``chat``: an ASGI app served at ``/`` instead of this process's own Gradio chat (several workers
    reach the one chat process through ``app.web.workers.ChatProxy``).
    ``conversations``: ``Storage.conversations`` (the conversation log, issue 15; None: nothing is recorded),
    written through one ``Recorder`` (``app.state.recorder``) by the chat, the widget and the API."""
    import gradio as gr
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    from app.web import insights, widget
    from app.web.admission import Admission
    from app.web.api import api_routes, install_error_handlers
    from app.web.chat import CSS, MAX_UPLOAD_BYTES, THEME, ChatUI
    from app.web.metrics import Observer
    from app.web.security import BlockedPaths, BodyLimit, SecurityHeaders

    settings = settings or services.settings
    observer = Observer(settings, services, feedback_log)  # /metrics and the request log line (app.web.metrics)
    feedback_log = observer.counting(feedback_log)
    app = FastAPI(
        title="Bouncebot",
        version="0.1.0",
        description="Answers support agents' questions about bounced email replies from the help article.",
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    from app.storage.recorder import Recorder

    recorder = None if conversations is None else Recorder(conversations)  # writes off the request path
    app.state.conversations, app.state.recorder = conversations, recorder
    if recorder is not None:
        import atexit

        atexit.register(recorder.close)  # the rows still queued are written before the process exits
    admission = Admission.from_settings(settings)  # the answers worked on at once, API and widget together
    app.state.admission = admission
    app.include_router(api_routes(services, feedback_log, rate_counter, recorder, admission))
    _local_docs(app)
    # Gradio adds no CORS headers of its own when the parent app has a CORSMiddleware: with no
    # origins, no other site may call the chat's routes; the JSON API's allowlist is widget.install's.
    app.add_middleware(CORSMiddleware, allow_origins=[], allow_credentials=False)
    widget.install(app, services, settings, rate_counter, recorder, admission)  # before the chat takes over "/"
    insights.install(app, settings, conversations, getattr(services, "embedder", None))  # /insights (issue 15)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BlockedPaths, suffixes=UPLOAD_ROUTES)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, large_limit=settings.max_body_bytes * 8,
                       prefixes=widget.API_PREFIXES)
    observer.install(app)  # outermost: every response is counted and logged, the 413s too
    if chat is not None:
        app.mount("/", observer.passed_on(chat))  # counted and logged once, by the chat process
        return app
    demo = ChatUI(services.answerer, feedback_log=feedback_log, concurrency=settings.chat_concurrency,
                  on_answer=observer.chat_answer, recorder=recorder).create_app()
    return gr.mount_gradio_app(app, demo, path="/", theme=THEME, css=CSS, footer_links=["api"],
                               max_file_size=MAX_UPLOAD_BYTES)


# The chat has no file inputs: Gradio's routes that take files are closed (and capped at 0 bytes besides).
UPLOAD_ROUTES = ("/gradio_api/upload", "/upload", "/gradio_api/process_recording", "/process_recording")


def _local_docs(app) -> None:
    """/docs from this server's own copy of Swagger UI (FastAPI's default loads it from a CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="Bouncebot API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js", swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def serve(settings: Settings) -> None:
    """One process (``settings.workers`` 1), or N uvicorn workers on a Chroma server (``app.web.workers``).
    Either way each process follows re-indexes without a restart (``app.answering.live``)."""
    import uvicorn

    from app.web import workers

    workers.check(settings)  # several workers on the embedded store: refused, saying what to run instead
    if settings.workers > 1:
        from app.web.metrics import multiprocess_dir

        with multiprocess_dir(settings.workers):  # each worker's figures there, so /metrics is the whole server's
            workers.run(settings)
        return
    app = workers.make_app(settings)
    print(f"Bouncebot is answering on http://{settings.host}:{settings.port}/ "
          f"(help-centre widget demo: http://{settings.host}:{settings.port}/demo)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
