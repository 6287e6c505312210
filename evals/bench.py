"""``make bench``: speed figures, each beside a baseline measured in the same
run on this machine. Prints figures and ratios; asserts nothing.

    python -m evals.bench [--repeat N]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FREE_FORM = [
    "How do I get an address off the bounce list?",
    "what should I check if the error keeps happening?",
    "her mailbox is full, what can I do?",
    "does a failure note reopen a closed conversation?",
    "how can we reduce delivery failures?",
]
CODE_QUESTIONS = ["What does 550-5.1.1 mean?", "bounced with 421 4.7.28", "got 5.2.2 from their server"]


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_figures(env: dict, repeat: int) -> dict:
    """Start `bouncebot serve` as a user would; time to the first answered
    /api/ask, then /api/ask latency warm, one client and 8 at once."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(Path(sys.executable).parent / "bouncebot"), "serve", "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.post(f"{url}/api/ask", json={"question": FREE_FORM[0]}, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError("bouncebot serve did not answer")
            time.sleep(0.05)
        first = time.perf_counter() - t0
        questions = FREE_FORM + CODE_QUESTIONS
        with httpx.Client(base_url=url, timeout=30) as c:
            single = per_call(lambda q: c.post("/api/ask", json={"question": q}).raise_for_status(), questions, repeat)
            health = per_call(lambda q: c.get("/healthz").raise_for_status(), questions, repeat)

        def timed(q):
            with httpx.Client(base_url=url, timeout=30) as c:
                t = time.perf_counter()
                c.post("/api/ask", json={"question": q}).raise_for_status()
                return time.perf_counter() - t

        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(timed, questions * repeat))
        return {"first": first, "single": single, "health": health, "concurrent": concurrent}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    from app.config import Settings
    from app.embeddings import Embedder
    from app.lookup import CodeTable
    from app.startup import build
    from app.store import make_client
    from evals.baselines import TextbookPipeline
    from ingest.indexer import ingest

    print(f"Bouncebot bench on {os.cpu_count()} cores, Python {sys.version.split()[0]}, repeat={args.repeat}")

    # --- look-up of one code, in-process
    table = CodeTable.from_kb(ROOT / "kb")
    n = 20_000
    lookup_s = timeit.timeit(lambda: table.lookup("What does 550-5.1.1 mean?"), number=n) / n
    dict_s = timeit.timeit(lambda: {"550-5.1.1": 1}.get("550-5.1.1"), number=n) / n

    # --- answers vs the textbook pipeline's retrieval alone, same model, same machine, warm
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env().with_(index_dir=Path(tmp) / "index", collection="bench")
        embedder = Embedder.from_settings(settings).load()
        ingest(settings, make_client(settings), embedder, progress=False)
        answerer = build(settings, embedder=embedder).answerer
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
        served = serve_figures(env, max(3, args.repeat // 4))

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
    row("POST /api/ask, 8 clients at once", served["concurrent"], inproc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
