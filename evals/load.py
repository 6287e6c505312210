"""The load test (``make bench`` runs it after the bench): many clients posting ``/api/ask`` at once.

    python -m evals.load [--clients 50] [--seconds 30] [--setup both|fleet|embedded] [--url URL ...]

Each client (an asyncio task with its own httpx connection) posts the eval dev split's questions
(single-turn and conversation cases, with their history, mixed and each client starting at another
one) one after another for ``--seconds``. Reported per setup: requests/s, latency p50/p95/p99 of
the answered requests, and errors: any status but 200 (a 429 is an error: the run raises the rate
limits), a timeout or a refused connection. Errors must be 0; the exit code is 1 when they are not.
Also printed: the machine's load average at the start and the end of each run, and what each server's
``/healthz`` says afterwards about its answers (``answers``: admitted, refused as busy: the queue of
``app.web.admission`` full) and its vector-store calls (``store_calls``: how many waited for a free
worker of ``app.search.guard`` and for how long in all, how many timed out running or gave up waiting).

Setups, each started here and stopped afterwards:

- ``embedded``: one ``bouncebot serve`` process on the embedded Chroma and SQLite (the default install);
- ``fleet``: a Chroma server, a PostgreSQL cluster (``evals/servers.py``) and two ``bouncebot serve
  --workers 2`` on them, the clients shared between the two (as a load balancer would).

``--url`` runs against servers already running instead (the clients shared between the URLs).
The load generator runs on the same machine and takes CPU from the servers: the figures are the
machine's, not the server's alone. It runs in a process of its own session (``load_apart``), so that it
does not share the Chroma server's and PostgreSQL's slice of the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "evals" / "datasets"
DEV_FILES = ("dev.jsonl", "dev_conversations.jsonl")
HIGH_RATE = "1000000/minute"  # the widget's and the feedback's limits, out of the way of the run
RUN_SETS = ("BOUNCEBOT_INDEX_DIR", "BOUNCEBOT_COLLECTION", "BOUNCEBOT_CHROMA_URL", "BOUNCEBOT_DATABASE_URL",
            "BOUNCEBOT_FEEDBACK_DB", "BOUNCEBOT_WORKERS", "BOUNCEBOT_HOST", "BOUNCEBOT_PORT", "BOUNCEBOT_LLM",
            "PROMETHEUS_MULTIPROC_DIR")
START_SECONDS = 180  # a server's start-up, to its first answered question


def dev_requests(files=DEV_FILES) -> list[dict]:
    """The dev split as /api/ask bodies, single-turn and conversation cases interleaved."""
    parts = []
    for name in files:
        rows = [json.loads(line) for line in (DATASETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        parts.append([{"question": r["question"], **({"history": r["history"]} if r.get("history") else {})}
                      for r in rows])
    return [b for group in itertools.zip_longest(*parts) for b in group if b is not None]


@dataclass
class Result:
    name: str
    clients: int
    seconds: float  # wall time, first request to the last answer
    latencies: list[float] = field(default_factory=list)  # seconds, of the answered requests
    errors: int = 0
    kinds: dict = field(default_factory=dict)  # status or exception name -> [count, the first one's text]
    load: tuple = ()  # the machine's 1-minute load average when the run started and when it ended
    servers: list = field(default_factory=list)  # each URL's /healthz "answers" and "store_calls" afterwards

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float | None:
        if not self.latencies:
            return None
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))]

    def as_dict(self) -> dict:
        return {"setup": self.name, "clients": self.clients, "seconds": round(self.seconds, 2),
                "requests": self.requests, "answered": len(self.latencies), "requests_per_s": round(self.rate, 1),
                **{f"p{int(q * 100)}_ms": None if self.pct(q) is None else round(self.pct(q) * 1000, 1)
                   for q in (0.5, 0.95, 0.99)},
                "errors": self.errors, "error_kinds": {k: v[0] for k, v in self.kinds.items()},
                "load_average": list(self.load), "servers": self.servers}


async def run_load(urls: list[str], bodies: list[dict], clients: int = 50, seconds: float = 30.0,
                   name: str = "", timeout: float = 30.0) -> Result:
    """``clients`` clients (client k on ``urls[k % len(urls)]``), each posting ``bodies`` in turn for ``seconds``."""
    import httpx

    result = Result(name or ", ".join(urls), clients, 0.0)

    def failed(kind: str, text: str) -> None:
        result.errors += 1
        result.kinds.setdefault(kind, [0, text[:200]])[0] += 1

    async def client(k: int, start: asyncio.Event, deadline: list[float]) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=urls[k % len(urls)], timeout=timeout, limits=limits) as c:
            await start.wait()
            i = k * 7  # each client starts elsewhere in the questions
            while time.perf_counter() < deadline[0]:
                body = bodies[i % len(bodies)]
                i += 1
                t = time.perf_counter()
                try:
                    r = await c.post("/api/ask", json=body)
                except httpx.HTTPError as e:
                    failed(type(e).__name__, str(e))
                    continue
                if r.status_code == 200:
                    result.latencies.append(time.perf_counter() - t)
                else:
                    failed(str(r.status_code), r.text)

    start, deadline = asyncio.Event(), [0.0]
    tasks = [asyncio.create_task(client(k, start, deadline)) for k in range(clients)]
    await asyncio.sleep(0)  # every client made before any starts
    loaded = os.getloadavg()[0]
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    start.set()
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - t0
    result.load = (loaded, os.getloadavg()[0])
    result.servers = await _server_figures(urls)
    return result


async def _server_figures(urls: list[str]) -> list[dict]:
    """What each server says about its answers' admission and its store calls (``/healthz``; with
    several workers, the figures of whichever worker answers)."""
    import httpx

    out = []
    async with httpx.AsyncClient(timeout=30) as c:
        for url in urls:
            try:
                health = (await c.get(f"{url}/healthz")).json()
            except (httpx.HTTPError, ValueError) as e:
                out.append({"url": url, "problem": f"{type(e).__name__}: {e}"[:200]})
                continue
            out.append({"url": url, "answers": health.get("answers"), "store_calls": health.get("store_calls")})
    return out


# --- The setups -----------------------------------------------------------------------


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in RUN_SETS}  # where it stores: only what the run sets
    return {**env, "BOUNCEBOT_WIDGET_RATE": HIGH_RATE, "BOUNCEBOT_FEEDBACK_RATE": HIGH_RATE,
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
            "ANONYMIZED_TELEMETRY": "False", **extra}


def ingest(env: dict) -> None:
    r = subprocess.run([_bin("bouncebot"), "ingest"], env=env, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"bouncebot ingest failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}")


class Serve:
    """``bouncebot serve`` in a process, once it answers a question; its output kept in a file."""

    def __init__(self, env: dict, workers: int = 1):
        from evals.servers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.workers = env, workers
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Serve":
        import httpx

        self._out = tempfile.TemporaryFile(mode="w+")
        argv = [_bin("bouncebot"), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # its workers stopped with it (a process group)
        deadline = time.monotonic() + START_SECONDS
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.post(f"{self.url}/api/ask", json={"question": "What does 550 5.1.1 mean?"},
                              timeout=10).status_code == 200:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.__exit__()
                raise RuntimeError(f"bouncebot serve on {self.url} did not answer: {output[-2000:]}")
            time.sleep(0.2)

    def output(self) -> str:
        self._out.seek(0)
        return self._out.read()

    def __exit__(self, *exc) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


def load_apart(urls: list[str], clients: int, seconds: float, name: str) -> Result:
    """``run_load`` in a process of its own session (``python -m evals.load --url ...``), its figures read back.

    Linux shares the CPU between sessions first (autogroups) and then between the processes of a session.
    Run here, the 50 clients (one busy process) would share the slice of this session with the Chroma
    server and PostgreSQL started from it, while each ``serve`` has a session of its own: the store
    would get a fraction of a server's CPU and look slow for it (a Chroma query p50 of 24-54 ms against
    the embedded store's 5 ms in one measured run). Apart, the clients are one more party, as on a
    machine of their own."""
    with tempfile.TemporaryDirectory(prefix="bouncebot-load-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", "evals.load", "--url", *urls, "--clients", str(clients),
                "--seconds", str(seconds), "--name", name, "--json", str(out), "--latencies"]
        r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, start_new_session=True,
                           timeout=seconds + 600)
        if not out.exists():
            raise RuntimeError(f"the load clients failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}")
        d = json.loads(out.read_text(encoding="utf-8"))[0]
    result = Result(d["setup"], d["clients"], d["seconds"], d["latencies"], d["errors"],
                    {k: [n, text] for k, (n, text) in d["error_counts"].items()}, tuple(d["load_average"]),
                    d["servers"])
    return result


def warm(urls: list[str], bodies: list[dict], per_url: int = 20) -> None:
    """A few questions to each server first (each worker's first answers load and warm the model)."""
    import httpx

    for url in urls:
        with httpx.Client(base_url=url, timeout=60) as c:
            for body in bodies[:per_url]:
                c.post("/api/ask", json=body)


def embedded(bodies, clients, seconds) -> Result:
    with tempfile.TemporaryDirectory(prefix="bouncebot-load-") as tmp:
        env = _env(BOUNCEBOT_INDEX_DIR=str(Path(tmp) / "index"), BOUNCEBOT_COLLECTION="load",
                   BOUNCEBOT_FEEDBACK_DB=str(Path(tmp) / "feedback.sqlite3"))
        ingest(env)
        with Serve(env) as server:
            warm([server.url], bodies)
            return load_apart([server.url], clients, seconds, "one embedded process (embedded Chroma, SQLite)")


def fleet_missing() -> str | None:
    """Why the fleet cannot run here (the parts other work provides), or None."""
    from evals import servers

    if not hasattr(servers, "PostgresServer") or not hasattr(servers, "ChromaServer"):
        return "evals/servers.py has no PostgresServer or ChromaServer"
    problem = servers.postgres_missing() if hasattr(servers, "postgres_missing") else None
    if problem:
        return problem
    if not (ROOT / "app" / "web" / "workers.py").exists():
        return "`bouncebot serve --workers N` is not there yet (app/web/workers.py)"
    return None


def fleet(bodies, clients, seconds, replicas: int = 2, workers: int = 2) -> Result:
    from evals.servers import ChromaServer, PostgresServer

    with tempfile.TemporaryDirectory(prefix="bouncebot-load-") as tmp, ChromaServer(Path(tmp) / "chroma") as chroma, \
            PostgresServer() as pg:
        env = _env(BOUNCEBOT_CHROMA_URL=chroma.url, BOUNCEBOT_COLLECTION="load",
                   BOUNCEBOT_DATABASE_URL=pg.create_database("bouncebot_load"))
        ingest(env)
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(Serve(env, workers)) for _ in range(replicas)]
            urls = [s.url for s in servers]
            warm(urls, bodies, per_url=20 * workers)
            return load_apart(urls, clients, seconds,
                              f"{replicas} x `serve --workers {workers}` (Chroma server, PostgreSQL)")


# --- The report -------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "      -" if x is None else f"{x * 1000:7.1f}"


def table(results: list[Result]) -> str:
    lines = [f"  {'setup':<58} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'requests':>8} {'errors':>6}"]
    for r in results:
        lines.append(f"  {r.name:<58} {r.rate:7.1f} {_ms(r.pct(0.5))} {_ms(r.pct(0.95))} {_ms(r.pct(0.99))} "
                     f"{r.requests:8d} {r.errors:6d}")
        for kind, (n, first) in sorted(r.kinds.items()):
            lines.append(f"      {n} x {kind}: {first[:150]}")
        if r.load:
            lines.append(f"      load average {r.load[0]:.1f} at the start, {r.load[1]:.1f} at the end")
        for server in r.servers:
            lines.append(f"      {_server_line(server)}")
    if len(results) == 2 and all(r.rate for r in results):
        a, b = results
        lines.append(f"  {a.name.split(' (')[0]} vs {b.name.split(' (')[0]}: throughput {a.rate / b.rate:.2f}x, "
                     f"p95 {a.pct(0.95) / b.pct(0.95):.2f}x")
    return "\n".join(lines)


def _server_line(server: dict) -> str:
    if "problem" in server:
        return f"{server['url']}: /healthz failed: {server['problem']}"
    a, s = server.get("answers") or {}, server.get("store_calls") or {}
    answers = (f"answers admitted {a.get('admitted')}, refused busy {a.get('refused')} (at most {a.get('active')} at "
               f"once, {a.get('queue')} queued)") if a else "no admission figures"
    run = (s.get("run_ms") or {}).get("the search") or {}
    calls = (f"store calls {s.get('calls')}: the searches ran p50/p95/p99/max {run.get('p50')}/{run.get('p95')}/"
             f"{run.get('p99')}/{run.get('max')} ms; started over 1 ms after handed in {s.get('waited')} "
             f"({s.get('waited_s')} s in all); timed out {s.get('timed_out')}, gave up waiting {s.get('gave_up_waiting')}, failed "
             f"{s.get('failed')}") if s else "no store figures"
    return f"{server['url']} (one process): {answers}; {calls}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--setup", choices=("both", "fleet", "embedded"), default="both")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--url", nargs="+", help="servers already running (the clients shared between them)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--name", help="the setup's name in the report (with --url)")
    ap.add_argument("--latencies", action="store_true", help="--json also holds every latency and error count "
                                                             "(how a setup's clients, run apart, report back)")
    args = ap.parse_args(argv)
    bodies = dev_requests()
    print(f"Load: POST /api/ask, {args.clients} clients for {args.seconds:g} s each, {len(bodies)} dev-split "
          f"requests in turn, on {os.cpu_count()} cores (the load generator shares them)", flush=True)
    results: list[Result] = []
    if args.url:
        results.append(asyncio.run(run_load(args.url, bodies, args.clients, args.seconds, args.name or "")))
    else:
        if args.setup in ("both", "fleet"):
            missing = fleet_missing()
            if missing:
                print(f"  fleet: not run: {missing}")
            else:
                results.append(fleet(bodies, args.clients, args.seconds, args.replicas, args.workers))
        if args.setup in ("both", "embedded"):
            results.append(embedded(bodies, args.clients, args.seconds))
    print(table(results))
    if args.json:
        rows = [{**r.as_dict(), **({"latencies": r.latencies, "error_counts": r.kinds} if args.latencies else {})}
                for r in results]
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r.errors for r in results) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
