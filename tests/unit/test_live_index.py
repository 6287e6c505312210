"""Live re-index, fast: the swap of everything derived from the KB (``LiveAnswerer``), the
poll's decisions (``IndexWatch.check``), and the whole path on a real embedded Chroma with
the fake embedder: ingest a changed KB, one poll swaps, a later one removes the old version."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from app.answering.live import RETRY_POLLS, IndexWatch, LiveAnswerer

from ..conftest import KB
from ..fakes import FakeEmbedder, fake_services

NEW_CODE, NEW_MEANING = "553-5.3.0", "A row added by the live re-index test: the sender address was refused."


class Held:
    """A stand-in answerer: says which one it is; ``during`` runs in the middle of ``ask``."""

    def __init__(self, name: str, during=None):
        self.name, self.during = name, during
        self.table, self.support, self.max_question_bytes = f"table-{name}", f"support-{name}", len(name)
        self.collection_name = f"version-{name}"

    def ask(self, question, history=None):
        first = self.table
        if self.during:
            self.during()
        return (self.name, first, self.table, question)

    def retriever_if_open(self):
        return type("R", (), {"collection": type("C", (), {"name": self.collection_name})()})()

    @property
    def retriever(self):
        return self.retriever_if_open()


def test_an_answer_in_flight_finishes_on_the_version_it_started_on():
    live = LiveAnswerer(Held("old"))
    live.current.during = lambda: live.swap(Held("new"))  # the swap lands mid-answer
    assert live.ask("q") == ("old", "table-old", "table-old", "q")
    assert live.ask("q") == ("new", "table-new", "table-new", "q")


@pytest.mark.parametrize("attribute", ["table", "support", "max_question_bytes", "collection_name"])
def test_everything_is_the_held_answerers_before_and_after_a_swap(attribute):
    old, new = Held("old"), Held("newer")
    live = LiveAnswerer(old)
    assert getattr(live, attribute) == getattr(old, attribute)
    assert live.swap(new) is old
    assert getattr(live, attribute) == getattr(new, attribute)
    assert live.retriever_if_open().collection.name == "version-newer"


def test_the_default_mode_behind_a_live_answerer_is_not_taken_for_a_token_stream(tmp_path):
    from app.web.chat_stream import streams_tokens

    services = fake_services(tmp_path)
    assert not streams_tokens(LiveAnswerer(services.answerer))


class Head:
    """The index head as a test script says: ``name`` (or an exception to raise)."""

    def __init__(self, name):
        self.name, self.reads = name, 0

    def __call__(self):
        self.reads += 1
        if isinstance(self.name, BaseException):
            raise self.name
        return self.name


def watch_for(head, rebuild, opened="old"):
    retired = []
    live = LiveAnswerer(Held(opened) if opened else type("Closed", (), {"retriever_if_open": lambda s: None})())
    watch = IndexWatch(live, poll=60, version=head, rebuild=rebuild, retire=lambda: retired.append(1) or "gone")
    return live, watch, retired


def never(name):
    raise AssertionError(f"rebuilt {name} when it should not")


@pytest.mark.parametrize("case, head, opened, swapped, retires", [
    ("an index built before versions", None, "old", False, False),
    ("not opened yet: the first search opens the head's", "version-new", None, False, False),
    ("still on the current version: the previous may be removed", "version-old", "old", False, True),
    ("the store does not answer", ConnectionError("refused"), "old", False, False),
])
def test_a_poll_that_has_nothing_to_swap_keeps_the_answerer(case, head, opened, swapped, retires):
    live, watch, retired = watch_for(Head(head), never, opened)
    before = live.current
    assert watch.check() is swapped, case
    assert live.current is before
    assert bool(retired) is retires


def test_a_moved_head_swaps_in_the_rebuilt_answerer():
    built = []
    live, watch, _ = watch_for(Head("version-new"), lambda name: built.append(name) or Held("new"))
    assert watch.check() is True
    assert built == ["version-new"] and live.current.name == "new" and watch.swaps == 1
    assert watch.opened() == "version-new"


def test_a_kb_that_is_not_the_new_versions_keeps_the_old_one_and_warns_then_tries_again_later(caplog):
    tries = []
    live, watch, _ = watch_for(Head("version-new"), lambda name: tries.append(name) and None)
    with caplog.at_level(logging.WARNING, logger="bouncebot.index"):
        for _ in range(RETRY_POLLS + 1):
            assert watch.check() is False
    assert live.current.name == "old"
    assert tries == ["version-new"]  # not read again at every poll
    assert "not that version's" in caplog.text and "still serving version-old" in caplog.text
    watch.check()
    assert tries == ["version-new", "version-new"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError("disk"), KeyError("x")])
def test_a_rebuild_that_fails_keeps_the_old_answerer_serving(error, caplog):
    def rebuild(name):
        raise error

    live, watch, _ = watch_for(Head("version-new"), rebuild)
    with caplog.at_level(logging.WARNING, logger="bouncebot.index"):
        assert watch.check() is False
    assert live.current.name == "old" and "still serving" in caplog.text


def test_a_watch_with_no_poll_never_starts_a_thread():
    _, watch, _ = watch_for(Head("version-new"), never)
    watch.poll = 0
    assert watch.start()._thread is None


def add_row(kb) -> None:
    path = kb / "common-email-delivery-errors.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("| 554-5.4.4 |", f"| {NEW_CODE} | {NEW_MEANING} | Check it. |\n| 554-5.4.4 |", 1),
                    encoding="utf-8")


def test_an_ingest_is_followed_by_one_poll_and_the_old_version_removed_after_the_grace(tmp_path):
    """The real path on an embedded Chroma (one process: the ingest shares the app's client)."""
    from app.answering.services import build
    from app.search.chroma import get_collection, head_version, make_client, retire_grace
    from ingest.indexer import ingest

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    first = fake_services(tmp_path / "index", kb_dir=kb, index_poll=0.02)
    settings, embedder = first.settings, FakeEmbedder()
    client = make_client(settings)
    services = build(settings, client=client, embedder=embedder, live=True)
    assert services.answerer.ask(f"What does {NEW_CODE} mean?").codes[0].match == "none"
    assert services.lookup_contract(NEW_CODE).codes[0].match == "none"
    old = services.watch.opened()
    assert old == head_version(client, settings)

    add_row(kb)
    ingest(settings, client, embedder, progress=False)
    new = head_version(client, settings)
    assert new != old and services.watch.check() is True
    assert services.watch.opened() == new
    answer = services.answerer.ask(f"What does {NEW_CODE} mean?")
    assert answer.codes[0].match == "exact" and answer.codes[0].row.meaning == NEW_MEANING
    assert services.lookup_contract(NEW_CODE).codes[0].match == "exact"
    assert get_collection(client, old) is not None  # replicas get the grace to move

    time.sleep(retire_grace(settings) + 0.05)
    assert services.watch.check() is False
    assert get_collection(client, old) is None and get_collection(client, new) is not None
    assert services.answerer.ask("How do I get an address off the bounce list?").answered


class Streaming(Held):
    def stream_ask(self, question, history=None):
        yield {"type": "final", "by": self.name}


def test_a_live_answerer_streams_tokens_exactly_when_the_answerer_it_holds_does(tmp_path):
    from app.answering.live import LiveStreamingAnswerer, live_answerer
    from app.web.chat_stream import streams_tokens

    streaming = live_answerer(Streaming("llm"))
    assert isinstance(streaming, LiveStreamingAnswerer) and streams_tokens(streaming)
    assert list(streaming.stream_ask("q")) == [{"type": "final", "by": "llm"}]
    streaming.swap(Streaming("llm-2"))
    assert list(streaming.stream_ask("q")) == [{"type": "final", "by": "llm-2"}]
    assert not streams_tokens(live_answerer(fake_services(tmp_path).answerer))


def test_the_language_model_mode_is_swapped_whole_its_prompt_from_the_new_kb(tmp_path):
    from app.answering.llm.mode import LLMAnswerer
    from app.answering.services import build
    from app.search.chroma import make_client
    from ingest.indexer import ingest

    from .test_llm_mode import Scripted

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    settings = fake_services(tmp_path / "index", kb_dir=kb).settings
    client, embedder, model = make_client(settings), FakeEmbedder(), Scripted(replies=[], prompts=[], options=[])
    services = build(settings, client=client, embedder=embedder, chat_model=model, live=True)
    services.answerer.inner.ask("How do I get an address off the bounce list?")  # opens the index, no model call
    first = services.answerer.current
    assert isinstance(first, LLMAnswerer) and NEW_MEANING not in first.prefix[0].content

    add_row(kb)
    ingest(settings, client, embedder, progress=False)
    assert services.watch.check() is True
    now = services.answerer.current
    assert isinstance(now, LLMAnswerer) and now is not first and now.model is model  # one model, never made twice
    assert NEW_MEANING in now.prefix[0].content and now.inner.table.rows != first.inner.table.rows
    assert model.prompts == []  # the swap asked the model nothing


@pytest.mark.parametrize("age_in_graces, removed", [(0.0, False), (0.5, False), (1.5, True), (30.0, True)])
def test_the_previous_version_is_removed_only_once_the_grace_after_the_switch_has_passed(tmp_path, age_in_graces,
                                                                                        removed):
    from app.search.chroma import SWITCHED, get_collection, make_client, retire_grace, retire_previous
    from ingest.indexer import ingest

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    settings = fake_services(tmp_path / "index", kb_dir=kb).settings
    client, embedder = make_client(settings), FakeEmbedder()
    old = client.get_collection(settings.collection).metadata["current"]
    add_row(kb)
    ingest(settings, client, embedder, progress=False)
    meta = client.get_collection(settings.collection).metadata
    assert meta["previous"] == old and get_collection(client, old) is not None  # kept by the ingest that switched
    now = meta[SWITCHED] + age_in_graces * retire_grace(settings)
    assert (retire_previous(client, settings, now=now) == old) is removed
    assert (get_collection(client, old) is None) is removed
    assert get_collection(client, meta["current"]) is not None


def test_the_next_ingest_removes_the_previous_version_once_its_grace_has_passed(tmp_path):
    from app.search.chroma import get_collection, make_client, retire_grace
    from ingest.indexer import ingest

    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    settings = fake_services(tmp_path / "index", kb_dir=kb, index_poll=0.01).settings
    client, embedder = make_client(settings), FakeEmbedder()
    old = client.get_collection(settings.collection).metadata["current"]
    add_row(kb)
    ingest(settings, client, embedder, progress=False)
    time.sleep(retire_grace(settings) + 0.05)
    report = ingest(settings, client, embedder, progress=False)  # nothing to embed: the KB is unchanged
    assert report.added == 0 and get_collection(client, old) is None
