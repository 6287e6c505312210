"""Shared fixtures: the real embedding model (loaded once), real Chroma
stores in temporary folders, and the project's own knowledge base."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "kb"
SHARED = ROOT.parent / "shared"
SEED = SHARED / "seeds" / "000_1c1376f403b2622a.txt"


def kb_documents() -> int:
    """How many index documents the project's KB makes (sections and rows)."""
    from app.knowledge.articles import load_articles
    from app.knowledge.chunks import chunk_articles

    return len(chunk_articles(load_articles(KB), "any"))


@pytest.fixture(scope="session")
def embedder():
    from app.config import Settings
    from app.search.embeddings import Embedder

    return Embedder.from_settings(Settings()).load()


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    dest = tmp_path / "kb"
    shutil.copytree(KB, dest)
    return dest


@pytest.fixture
def make_settings(tmp_path):
    from app.config import Settings

    def make(**changes):
        base = dict(kb_dir=KB, index_dir=tmp_path / "index", collection="test_kb")
        base.update(changes)
        return Settings().with_(**base)

    return make


@pytest.fixture(scope="session")
def services(tmp_path_factory, embedder):
    """The services over the project's KB, ingested once into a real persistent Chroma."""
    from app.answering.services import build
    from app.config import Settings

    settings = Settings().with_(kb_dir=KB, index_dir=tmp_path_factory.mktemp("index"), collection="session_kb")
    return build(settings, embedder=embedder, ingest_first=True)


@pytest.fixture(scope="session")
def indexed_settings(services):
    """Settings whose index holds the project's KB (for tests that run the CLI or a server on it)."""
    return services.settings


@pytest.fixture(scope="session")
def answerer(services):
    return services.answerer


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory):
    """A feedback log of its own for each test module."""
    from app.web.feedback import FeedbackLog

    return FeedbackLog(tmp_path_factory.mktemp("feedback") / "feedback.sqlite3")


@pytest.fixture(scope="module")
def server(services, feedback_log):
    """The whole app (API, chat, widget) on loopback."""
    from app.web.server import create_app

    from .servers import LiveServer

    with LiveServer(create_app(services, feedback_log)) as s:
        yield s


def run_coroutine(coro):
    """``asyncio.run(coro)`` on a thread of its own: a browser test earlier in the run (Playwright's
    sync API) leaves an event loop on the main thread, where ``asyncio.run`` refuses to start."""
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
