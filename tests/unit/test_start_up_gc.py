"""A server's start-up objects are frozen out of the garbage collector (``app.web.workers.freeze_start_up``):
a full collection no longer walks the KB, while garbage made later is still collected."""

from __future__ import annotations

import gc

import pytest


class Node:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()  # the test process's other tests collect as before


def test_start_up_objects_are_frozen_and_later_garbage_still_collected(unfrozen):
    from app.web.workers import freeze_start_up

    kept = [[i] for i in range(20_000)]  # what start-up keeps
    gc.collect()
    tracked = len(gc.get_objects())
    freeze_start_up()
    assert gc.get_freeze_count() >= len(kept)
    assert len(gc.get_objects()) < tracked - len(kept)  # a full collection no longer walks them
    n = Node()
    del n
    assert gc.collect() >= 1  # a cycle made after start-up is still freed
    assert kept[-1] == [19_999]


def test_make_app_freezes_after_building_the_app(monkeypatch):
    import app.web.workers as workers

    order = []
    monkeypatch.setattr(workers, "freeze_start_up", lambda: order.append("freeze"))
    monkeypatch.setattr("app.storage.Storage.open", lambda settings: type("S", (), {
        "feedback": None, "rate_counter": None, "conversations": None})())
    monkeypatch.setattr("app.answering.services.build", lambda settings, live=False: type("B", (), {
        "warm": lambda self: type("V", (), {"watch": None})()})())
    monkeypatch.setattr("app.web.server.create_app", lambda *a, **kw: order.append("app") or "the app")
    from app.config import Settings

    assert workers.make_app(Settings()) == "the app" and order == ["app", "freeze"]


def test_a_swapped_in_version_is_frozen_only_where_start_up_was(unfrozen):
    """After a live re-index the new version's objects join the frozen start-up (``live.refreeze``),
    in a process that froze its start-up; a process that never froze (tests, the CLI) is left alone."""
    from app.answering.live import refreeze

    gc.unfreeze()
    assert refreeze() is False and gc.get_freeze_count() == 0  # nothing frozen before: nothing now
    gc.freeze()  # as a server's start-up does
    before = gc.get_freeze_count()
    new_version = [[i] for i in range(20_000)]  # what the swapped-in version keeps
    import weakref

    n = Node()
    old_cycle = weakref.ref(n)
    del n  # the old version's cycles: collected first, not frozen
    assert old_cycle() is not None
    assert refreeze() is True
    assert gc.get_freeze_count() >= before + len(new_version)
    assert old_cycle() is None  # freed, not kept in the frozen set
