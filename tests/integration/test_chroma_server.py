"""Beyond one machine: the same code against a real Chroma server on
loopback (``BOUNCEBOT_CHROMA_URL``), as several replicas would share it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from ..conftest import KB, kb_documents
from ..servers import ChromaServer
from .test_cli import run
from .test_index_integrity import KILLED_INGEST, QUESTION, SECTION, add_copies, index_ids, kb_ids

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with ChromaServer(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server.url


def test_ingest_and_ask_against_a_chroma_server(chroma_url, tmp_path):
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    r = run(["ingest"], env)
    assert r.returncode == 0, r.stderr
    assert f"{kb_documents()} added" in r.stdout and chroma_url in r.stderr
    assert not (tmp_path / "unused").exists()  # nothing written to the embedded store

    r = run(["ask", "--json", "How do I get an address off the bounce list?"], env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["answered"] and d["sources"][0]["section"] == "Email address is on a bounce list"

    r = run(["ingest"], env)  # a second replica finds the index up to date
    assert f"0 added, {kb_documents()} kept, 0 removed" in r.stdout


def test_bad_chroma_url_is_a_clear_error():
    r = run(["ask", "how do I reduce bounces?"], {"BOUNCEBOT_CHROMA_URL": "not a url"})
    assert r.returncode == 2 and "BOUNCEBOT_CHROMA_URL" in r.stderr  # a bad setting


def test_a_killed_ingest_never_shows_replicas_a_mixed_index(chroma_url, tmp_path, embedder):
    """Replicas share the server's index. An ingest of new articles SIGKILLed
    right after it added their documents: the replica already running, and
    one starting now on the previous KB, read exactly the previous documents;
    one on the new KB is told to run `bouncebot ingest`, which repairs it."""
    from app.config import Settings
    from app.errors import IndexNotReady
    from app.answering.services import build
    from app.search.chroma import make_client, open_collection
    from ingest.indexer import kb_fingerprint

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    env = {"BOUNCEBOT_CHROMA_URL": chroma_url, "BOUNCEBOT_COLLECTION": "replicas", "BOUNCEBOT_KB_DIR": str(kb),
           "BOUNCEBOT_INDEX_DIR": str(tmp_path / "unused")}
    assert run(["ingest"], env).returncode == 0
    before = Settings().with_(kb_dir=KB, chroma_url=chroma_url, collection="replicas")
    running = build(before, embedder=embedder)
    assert running.answerer.ask(QUESTION).to_dict()["sources"][0]["section"] == SECTION
    old_ids = kb_ids(before, embedder)

    add_copies(kb, 2)
    after = before.with_(kb_dir=kb)
    new_ids = sorted(set(kb_ids(after, embedder)) - set(old_ids))
    killed = subprocess.run([sys.executable, "-c", KILLED_INGEST, "after-add", ",".join(new_ids)],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    assert index_ids(running.answerer.retriever.collection) == old_ids
    assert running.answerer.ask(QUESTION).to_dict()["sources"][0]["section"] == SECTION
    client = make_client(before)
    assert index_ids(open_collection(client, before, kb_fingerprint(before, embedder.name))) == old_ids
    with pytest.raises(IndexNotReady, match="`bouncebot ingest`"):
        open_collection(client, after, kb_fingerprint(after, embedder.name))

    r = run(["ingest"], env)
    assert r.returncode == 0, r.stderr
    assert f"{len(new_ids)} added, {len(old_ids)} kept, 0 removed" in r.stdout
    assert index_ids(open_collection(client, after, kb_fingerprint(after, embedder.name))) == kb_ids(after, embedder)
    assert running.answerer.ask(QUESTION).to_dict()["sources"][0]["section"] == SECTION  # its version is kept
