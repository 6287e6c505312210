"""Admission for the answer routes (``app.web.admission``): at most ``active`` answers worked on at once,
the rest queued on the event loop, a 503 in the API's error shape only when the queue is full. First
the limiter alone (fake work in threads), then wired into the API and the widget over the fake services."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.web.admission import Admission

from ..conftest import run_coroutine
from ..fakes import FakeFeedbackLog, FakeRetriever, fake_services, result, services_with

FREE_FORM = "How do I get an address off the bounce list?"


class Work:
    """A blocking job that records how many of its kind run at once."""

    def __init__(self, seconds: float = 0.0, gate: threading.Event | None = None, meet: int = 0):
        """``meet``: the first jobs wait (up to 10 s) until that many have run at once, so a busy machine
        that runs one job to its end before the next starts cannot make fewer overlap than allowed."""
        self.seconds, self.gate, self.meet = seconds, gate, meet
        self.now = self.most = self.done = 0
        self._lock = threading.Condition()

    def __call__(self, i):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self._lock.notify_all()
            self._lock.wait_for(lambda: self.most >= self.meet, timeout=10)
        try:
            if self.gate is not None:
                assert self.gate.wait(30)
            time.sleep(self.seconds)
            return i
        finally:
            with self._lock:
                self.now -= 1
                self.done += 1


@pytest.mark.parametrize("active,requests", [(1, 5), (2, 2), (2, 12), (4, 30), (8, 3)])
def test_at_most_active_answers_run_at_once_and_every_queued_one_is_answered(active, requests):
    admission, work = Admission(active=active, queue=requests), Work(seconds=0.02, meet=min(active, requests))

    async def burst():
        return await asyncio.gather(*(admission.run(work, i) for i in range(requests)))

    assert run_coroutine(burst()) == list(range(requests))
    assert work.most == min(active, requests) and work.done == requests
    assert admission.state() == {"active": active, "queue": requests, "running": 0, "waiting": 0,
                                 "admitted": requests, "refused": 0}


@pytest.mark.parametrize("active,queue", [(1, 0), (1, 2), (3, 1)])
def test_only_a_full_queue_is_refused_at_once_with_503_in_the_error_shape(active, queue):
    gate, extra = threading.Event(), 3
    admission, work = Admission(active=active, queue=queue), Work(gate=gate)

    async def burst():
        taken = [asyncio.ensure_future(admission.run(work, i)) for i in range(active + queue)]
        while admission.running < active or admission.waiting < queue:
            await asyncio.sleep(0.005)
        refused = [await admission.run(work, -1) for _ in range(extra)]  # answered at once: nothing blocks
        gate.set()
        return await asyncio.gather(*taken), refused

    answered, refused = run_coroutine(burst())
    assert answered == list(range(active + queue)) and work.most == active
    for r in refused:
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        error = json.loads(r.body)["error"]
        assert set(json.loads(r.body)) == {"error"} and "busy" in error and "Try again" in error
    assert admission.state()["admitted"] == active + queue and admission.state()["refused"] == extra


def test_a_request_whose_client_went_away_keeps_its_slot_until_its_work_is_done():
    gate = threading.Event()
    admission, work = Admission(active=1, queue=4), Work(gate=gate)

    async def scenario():
        first = asyncio.ensure_future(admission.run(work, 1))
        while admission.running < 1:
            await asyncio.sleep(0.005)
        first.cancel()  # the client disconnected; the thread cannot be stopped
        await asyncio.sleep(0.05)
        held = admission.running
        second = asyncio.ensure_future(admission.run(work, 2))
        await asyncio.sleep(0.05)
        overlapped = work.most
        gate.set()
        return held, overlapped, await second

    held, overlapped, second = run_coroutine(scenario())
    assert held == 1 and overlapped == 1 and second == 2  # never two at once


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 64])
def test_the_workers_of_one_serve_share_the_machines_answers_at_once(workers):
    from app.web.admission import ACTIVE

    admission = Admission.for_workers(workers)
    assert admission.active == max(2, ACTIVE // workers) and admission.active * workers <= max(ACTIVE, 2 * workers)


@pytest.mark.parametrize("env, workers, active, queue", [
    ({}, 1, None, 128),  # the defaults: four a core (ACTIVE), 128 waiting
    ({"BOUNCEBOT_ANSWERS_AT_ONCE": "6"}, 1, 6, 128),
    ({"BOUNCEBOT_ANSWERS_AT_ONCE": "6", "BOUNCEBOT_WORKERS": "2"}, 2, 3, 128),  # the machine's, shared
    ({"BOUNCEBOT_ANSWERS_AT_ONCE": "6", "BOUNCEBOT_WORKERS": "4"}, 4, 2, 128),  # two at least each
    ({"BOUNCEBOT_ANSWERS_AT_ONCE": "1"}, 1, 1, 128),  # one at a time when asked for
    ({"BOUNCEBOT_ANSWER_QUEUE": "0"}, 1, None, 0),  # none waiting: a busy process refuses at once
    ({"BOUNCEBOT_ANSWERS_AT_ONCE": "0"}, 1, None, 128),  # 0: the default
])
def test_the_settings_size_the_admission(env, workers, active, queue):
    from app.config import Settings
    from app.web.admission import ACTIVE

    settings = Settings.from_env(env)
    assert settings.workers == workers
    admission = Admission.from_settings(settings)
    assert (admission.active, admission.queue) == (ACTIVE if active is None else active, queue)


@pytest.mark.parametrize("name, raw", [("BOUNCEBOT_ANSWERS_AT_ONCE", "-1"), ("BOUNCEBOT_ANSWER_QUEUE", "many")])
def test_a_bad_admission_setting_says_which(name, raw):
    from app.config import Settings
    from app.errors import BadSetting

    with pytest.raises(BadSetting, match=name):
        Settings.from_env({name: raw})


@pytest.mark.parametrize("active,queue", [(0, 4), (-1, 0), (2, -1)])
def test_impossible_sizes_are_refused(active, queue):
    with pytest.raises(ValueError, match="admission needs"):
        Admission(active=active, queue=queue)


# --- Wired into the doors ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    return fake_services(tmp_path_factory.mktemp("admission_index"))


def app_with(services, admission: Admission) -> FastAPI:
    from app.web import widget
    from app.web.api import api_routes, install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(api_routes(services, FakeFeedbackLog(), admission=admission))
    widget.install(app, services, admission=admission)  # one admission for both doors, as create_app does
    return app


def test_the_server_shares_one_admission_between_the_api_and_the_widget_and_shows_it(services):
    from app.web.server import create_app

    with TestClient(create_app(services, FakeFeedbackLog())) as http:
        for path in ("/api/ask", "/widget/api/ask", "/api/ask/stream", "/widget/api/ask/stream"):
            assert http.post(path, json={"question": "What does 550 5.1.1 mean?"}).status_code == 200, path
        answers = http.get("/healthz").json()["answers"]
    assert answers["admitted"] == 4 and answers["refused"] == 0 and answers["running"] == answers["waiting"] == 0
    assert answers["active"] >= 2 and answers["queue"] >= 1


@pytest.mark.parametrize("path", ["/api/ask", "/widget/api/ask", "/api/ask/stream", "/widget/api/ask/stream"])
def test_a_full_queue_answers_503_json_while_bad_input_still_gets_its_own_4xx(services, path):
    gate, entered = threading.Event(), threading.Event()

    def blocking_search(query, k, kinds):
        entered.set()
        assert gate.wait(30)
        return result([])

    slow = services_with(services, FakeRetriever(blocking_search))
    with TestClient(app_with(slow, Admission(active=1, queue=0))) as http, ThreadPoolExecutor(1) as pool:
        held = pool.submit(http.post, "/api/ask", json={"question": FREE_FORM})  # takes the one slot
        assert entered.wait(30)
        try:
            busy = http.post(path, json={"question": FREE_FORM})
            empty = http.post(path, json={"question": ""})
        finally:
            gate.set()
        assert held.result(timeout=30).status_code == 200
        after = http.post(path, json={"question": "What does 550 5.1.1 mean?"})
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert busy.headers["content-type"].startswith("application/json") and "busy" in busy.json()["error"]
    assert empty.status_code == 422 and "error" in empty.json()  # validated before it queues: not a 503
    assert after.status_code == 200  # the slot came back
