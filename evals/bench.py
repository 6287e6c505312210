"""``make bench``: speed figures, each beside a baseline measured in the same
run on this machine. Prints figures and ratios; asserts nothing.

    python -m evals.bench [--repeat N] [--load-seconds S] [--answer-only [--runs N]]

The load figures (requests/s, p50/p95 and errors of ``POST /api/ask`` with 1,
10 and 50 clients at once, against a live ``bouncebot serve``) are what shows
a throughput regression; the reference on 2 cores was 150-212 requests/s,
p95 14 ms at 1 client and 392 ms at 50, 0 errors.

The bounce parsing figures (``read_bounce``, CPU seconds per MB of input) are
over the corpus messages beside the project as they are (the baseline), the
same messages mutated and the hostile shapes of ``tests/unit/_mutate.py``;
the worst per MB is what shows a parse that stopped being linear.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path

from .servers import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent

FREE_FORM = [
    "How do I get an address off the bounce list?",
    "what should I check if the error keeps happening?",
    "her mailbox is full, what can I do?",
    "does a failure note reopen a closed conversation?",
    "how can we reduce delivery failures?",
]
CODE_QUESTIONS = ["What does 550-5.1.1 mean?", "bounced with 421 4.7.28", "got 5.2.2 from their server"]
LOAD_CLIENTS = (1, 10, 50)
BOUNCE_GROWTH = 4  # each hostile shape at its size (tests/unit/_mutate.size_of) and 4 times it, as the tests
BOUNCE_RUNS = 3  # the best of these runs, per input ...
BOUNCE_ENOUGH = 0.5  # ... or of those that add up to this many CPU seconds
BOUNCE_BIG = 100 * 1024  # inputs this large or larger: the fixed cost of a call no longer decides their time per MB


def per_call(fn, arg_list, repeat: int) -> list[float]:
    """Seconds per call, one sample per (repeat x argument)."""
    samples = []
    for _ in range(repeat):
        for a in arg_list:
            t = time.perf_counter()
            fn(a)
            samples.append(time.perf_counter() - t)
    return samples


def p(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def row(name, samples, baseline=None, target=None):
    med = statistics.median(samples)
    ratio = f"{med / baseline:8.3g}x" if baseline else "        -"
    tgt = f"  target {target}" if target else ""
    print(f"  {name:<52} median {fmt(med)}  p95 {fmt(p(samples, 0.95))}  ratio {ratio}{tgt}")
    return med


def process_times(argv: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        out.append(time.perf_counter() - t)
    return out


@dataclass
class Load:
    clients: int
    seconds: float  # wall time of the whole level
    latencies: list[float]  # of the answered requests
    errors: int  # a status other than 200, or no answer (timeout, connection)
    kinds: dict  # status code (or exception name) -> (count, the first error's text)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def load_test(url: str, questions: list[str], clients: int, seconds: float) -> Load:
    """``clients`` clients, each on its own connection, posting /api/ask one
    question after another (the questions in turn) for ``seconds``."""
    import threading

    import httpx

    start = threading.Barrier(clients + 1)
    results: list[tuple[list[float], int]] = []
    kinds: dict = {}

    def failed(kind: str, text: str) -> None:
        n, first = kinds.get(kind, (0, text))
        kinds[kind] = (n + 1, first)

    def client(k: int) -> None:
        latencies, errors = [], 0
        with httpx.Client(base_url=url, timeout=30) as c:
            start.wait()
            i = k
            while time.perf_counter() < deadline:
                q = questions[i % len(questions)]
                i += 1
                t = time.perf_counter()
                try:
                    r = c.post("/api/ask", json={"question": q})
                    ok = r.status_code == 200
                    if not ok:
                        failed(str(r.status_code), r.text)
                except httpx.HTTPError as e:
                    ok = False
                    failed(type(e).__name__, str(e))
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
        results.append((latencies, errors))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    deadline = float("inf")
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return Load(clients, wall, [x for lat, _ in results for x in lat], sum(e for _, e in results), kinds)


def load_row(r: Load, baseline: float, baseline_rate: float) -> None:
    """``baseline``: the in-process median answer time; ``baseline_rate``: answers/s in-process, one at a time."""
    if not r.latencies:
        print(f"  {r.clients:>3} client{'s' if r.clients > 1 else ' '} at once: no answer, {r.errors} errors")
        return
    p50, p95 = p(r.latencies, 0.5), p(r.latencies, 0.95)
    print(f"  {r.clients:>3} client{'s' if r.clients > 1 else ' '} at once {r.rate:8.1f} requests/s  "
          f"p50 {fmt(p50)}  p95 {fmt(p95)}  errors {r.errors:>4}  "
          f"throughput {r.rate / baseline_rate:6.3g}x, p50 {p50 / baseline:7.3g}x the baseline")
    for kind, (n, first) in sorted(r.kinds.items()):
        print(f"        {n} x {kind}: {first[:160]}")


def settle(url: str, seconds: float = 30.0) -> None:
    """Wait until a free-form question is answered (200) again."""
    import httpx

    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            if httpx.post(f"{url}/api/ask", json={"question": FREE_FORM[0]}, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


def start_serve(env: dict):
    """Start `bouncebot serve` as a user would: (the process, its URL, seconds to its first answered /api/ask)."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(Path(sys.executable).parent / "bouncebot"), "serve", "--port", str(port)]
    log = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while True:
            try:
                if httpx.post(f"{url}/api/ask", json={"question": FREE_FORM[0]}, timeout=5).status_code == 200:
                    return proc, url, time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                log.seek(0)
                tail = log.read().decode("utf-8", "replace")[-600:]
                raise RuntimeError(f"bouncebot serve did not answer (exit {proc.poll()}): {tail}")
            time.sleep(0.02)
    except BaseException:
        stop_process(proc, 20)
        raise


def serve_figures(env: dict, repeat: int, load_seconds: float) -> dict:
    """Start `bouncebot serve` as a user would; time to the first answered
    /api/ask, then /api/ask latency warm, one client and 8 at once, then the
    load at 1, 10 and 50 clients."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    proc, url, first = start_serve(env)
    try:
        questions = FREE_FORM + CODE_QUESTIONS
        with httpx.Client(base_url=url, timeout=30) as c:
            single = per_call(lambda q: c.post("/api/ask", json={"question": q}).raise_for_status(), questions, repeat)
            health = per_call(lambda q: c.get("/healthz").raise_for_status(), questions, repeat)

        def timed(q):
            with httpx.Client(base_url=url, timeout=30) as c:
                t = time.perf_counter()
                try:
                    ok = c.post("/api/ask", json={"question": q}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                return time.perf_counter() - t if ok else None

        with ThreadPoolExecutor(max_workers=8) as pool:
            burst = list(pool.map(timed, questions * repeat))
        concurrent = [x for x in burst if x is not None]
        loads = []
        for n in LOAD_CLIENTS:
            settle(url)  # each level starts on a server that answers (not in a cool-down the last one caused)
            loads.append(load_test(url, questions, n, load_seconds))
        return {"first": first, "single": single, "health": health, "concurrent": concurrent,
                "concurrent_errors": len(burst) - len(concurrent), "loads": loads}
    finally:
        stop_process(proc, 20)


def per_mb(fn, arg) -> tuple[float, int]:
    """(CPU seconds per MB of ``arg`` that ``fn(arg)`` takes, the best of
    BOUNCE_RUNS runs, or of those that add up to BOUNCE_ENOUGH seconds;
    ``arg``'s size in bytes)."""
    size = len(arg.encode("utf-8", "surrogatepass") if isinstance(arg, str) else arg)
    best, spent = float("inf"), 0.0
    for _ in range(BOUNCE_RUNS):
        t = time.process_time()
        fn(arg)
        took = time.process_time() - t
        best, spent = min(best, took), spent + took
        if spent >= BOUNCE_ENOUGH:  # far above timer noise: more runs would only cost time
            break
    return best / max(size, 1) * 1e6, size


def bounce_figures() -> dict:
    """``read_bounce`` per MB, as (seconds, size, what): each corpus message as
    it is, each mutated (and the huge mutations); each hostile shape at its
    size and BOUNCE_GROWTH times it, by shape."""
    if str(ROOT) not in sys.path:  # the hostile inputs live with the tests
        sys.path.insert(0, str(ROOT))
    from app.codes.bounce import read_bounce
    from tests.unit import _mutate

    def timed(cases):
        return [(*per_mb(read_bounce, raw), what) for what, raw in cases]

    cases = list(_mutate.sweep())  # each message, then the same message mutated
    heavy = [_mutate.heavy_case(name) for name in sorted(_mutate.HEAVY)] if cases else []
    shapes = {name: timed((name, make(n)) for n in (_mutate.size_of(name), BOUNCE_GROWTH * _mutate.size_of(name)))
              for name, make in _mutate.SHAPES.items()}
    return {"plain": timed(cases[0::2]), "mutated": timed(cases[1::2] + heavy), "shapes": shapes,
            "corpus": _mutate.DATA}


def bounce_rows(f: dict) -> None:
    shaped = [x for runs in f["shapes"].values() for x in runs]
    base = statistics.median(s for s, _, _ in f["plain"] or shaped)
    print(f"\nBounce parsing: read_bounce, CPU seconds per MB (10^6 bytes) of input, the best of {BOUNCE_RUNS} runs "
          f"each (of fewer past {BOUNCE_ENOUGH:g} s); the baseline is the median over the corpus messages as they are")
    if f["plain"]:
        row(f"corpus messages as they are, {len(f['plain'])} (baseline)", [s for s, _, _ in f["plain"]], base)
        row(f"corpus messages mutated, {len(f['mutated'])}", [s for s, _, _ in f["mutated"]], base)
    else:
        print(f"  (no corpus at {f['corpus']}: the baseline is the median over the hostile shapes)")
    row(f"hostile shapes, {len(f['shapes'])}, at n and {BOUNCE_GROWTH}n bytes", [s for s, _, _ in shaped], base)
    for name, ((s1, n1, _), (s2, n2, _)) in f["shapes"].items():
        growth = s2 * n2 / max(s1 * n1, 1e-9)  # of the time: linear about BOUNCE_GROWTH, quadratic its square
        print(f"    {name:<62} {n1 / 1e6:5.3f} MB {fmt(s1)}/MB  {n2 / 1e6:5.3f} MB {fmt(s2)}/MB  "
              f"time x{growth:4.1f}  ratio {max(s1, s2) / base:7.3g}x")
    every = f["plain"] + f["mutated"] + shaped
    for label, pool in (("any size (a call's fixed cost decides a small input's)", every),
                        (f"inputs of {BOUNCE_BIG // 1024} KB or more", [x for x in every if x[1] >= BOUNCE_BIG])):
        s, size, what = max(pool)
        print(f"  worst per MB, {label}: {fmt(s).strip()} per MB, {s / base:.3g}x the baseline: {what} ({size:,} bytes)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--load-seconds", type=float, default=10.0, help="how long each load level runs")
    ap.add_argument("--bounce-only", action="store_true", help="only the bounce parsing figures (no model, no server)")
    ap.add_argument("--answer-only", action="store_true",
                    help="only the answer path against its floor (evals/bench_answer.py): in-process per precision, "
                         "lookup, one-shot ask and serve's first answer as whole processes")
    ap.add_argument("--runs", type=int, default=5, help="whole-process runs for the answer path (median)")
    args = ap.parse_args(argv)
    if args.bounce_only:
        bounce_rows(bounce_figures())
        return 0
    from evals.bench_answer import answer_figures

    if args.answer_only:
        answer_figures(args.repeat, args.runs)
        return 0

    from app.config import Settings
    from app.codes.table import CodeTable
    from app.answering.services import build
    from evals.baselines import TextbookPipeline

    print(f"Bouncebot bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}, repeat={args.repeat}")

    # --- look-up of one code, in-process
    table = CodeTable.from_kb(ROOT / "kb")
    n = 20_000
    lookup_s = timeit.timeit(lambda: table.lookup("What does 550-5.1.1 mean?"), number=n) / n
    dict_s = timeit.timeit(lambda: {"550-5.1.1": 1}.get("550-5.1.1"), number=n) / n

    # --- answers vs the textbook pipeline's retrieval alone, same model, same machine, warm
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env().with_(index_dir=Path(tmp) / "index", collection="bench")
        answerer = build(settings, ingest_first=True).answerer
        textbook = TextbookPipeline(settings.kb_dir)
        import torch

        torch.set_num_threads(1)  # the same single thread our ONNX model runs on: a like-for-like comparison
        for q in FREE_FORM:  # warm both
            answerer.ask(q)
            textbook.retrieve(q)
        tb = per_call(textbook.retrieve, FREE_FORM, args.repeat)
        ours_free = per_call(answerer.ask, FREE_FORM, args.repeat)
        ours_code = per_call(answerer.ask, CODE_QUESTIONS, args.repeat)
        ours_all = per_call(answerer.ask, FREE_FORM + CODE_QUESTIONS, args.repeat)
        env = {**os.environ, "BOUNCEBOT_INDEX_DIR": str(settings.index_dir), "BOUNCEBOT_COLLECTION": "bench",
               "BOUNCEBOT_FEEDBACK_DB": str(Path(tmp) / "feedback.sqlite3")}
        served = serve_figures(env, max(3, args.repeat // 4), args.load_seconds)
        from evals.bench_llm import llm_figures, print_figures  # the LLM mode on the same index (skips without it)

        llm = llm_figures(env)

    # --- whole processes
    python = [sys.executable, "-c", "pass"]
    bouncebot = [str(Path(sys.executable).parent / "bouncebot"), "lookup", "550 5.1.1"]
    proc_n = max(5, args.repeat // 2)
    py_t = process_times(python, proc_n)
    lk_t = process_times(bouncebot, proc_n)

    print("\nIn-process (warm)")
    tb_med = statistics.median(tb)
    row("textbook LangChain retrieval alone (baseline)", tb, tb_med)
    row("bouncebot answer, free-form question", ours_free, tb_med, "<= 1.00x")
    row("bouncebot answer, code question", ours_code, tb_med, "<= 1.00x")
    row("code look-up, one code (vs textbook retrieval)", [lookup_s], tb_med, "< 50 µs")
    row("  (a dict get, for scale)", [dict_s], tb_med)
    print("\nWhole process")
    py_med = row("python -c pass (baseline)", py_t, statistics.median(py_t))
    row("bouncebot lookup '550 5.1.1'", lk_t, py_med, "< 0.5 s")
    row("bouncebot serve: start to first answered /api/ask", [served["first"]], py_med)
    print("\nHTTP (warm, loopback; the baseline is the same questions answered in-process)")
    inproc = row("answer in-process, all questions (baseline)", ours_all, statistics.median(ours_all))
    row("GET /healthz, one client", served["health"], inproc)
    row("POST /api/ask, one client", served["single"], inproc)
    errors = served["concurrent_errors"]
    name = "POST /api/ask, 8 clients at once" + (f" ({errors} errors)" if errors else "")
    if served["concurrent"]:
        row(name, served["concurrent"], inproc)
    else:
        print(f"  {name:<52} no answer")
    print(f"\nLoad: POST /api/ask on a live `bouncebot serve` (one process), each client on its own connection, "
          f"the {len(FREE_FORM + CODE_QUESTIONS)} questions in turn, {args.load_seconds:g} s per level")
    inproc_rate = len(ours_all) / sum(ours_all)
    print(f"  baseline: the same questions answered in-process, one at a time: {inproc_rate:8.1f} answers/s, "
          f"median {fmt(inproc)}")
    for r in served["loads"]:
        load_row(r, inproc, inproc_rate)
    print_figures(llm, ours_all)
    answer_figures(args.repeat, args.runs)
    bounce_rows(bounce_figures())
    return 0


if __name__ == "__main__":
    sys.exit(main())
