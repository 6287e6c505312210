"""The language-model mode's part of ``make bench`` (``BOUNCEBOT_LLM=local``), printed beside the default mode.

A real ``bouncebot serve`` with ``BOUNCEBOT_LLM=local`` (the verified GGUF in its process, the
prefix warmed at start-up) answers a fixed batch of mixed questions through ``POST
/api/ask/stream``, one at a time, as the chat does. For each: time to the first token event and
to the final event as the client sees them, the model's own time to first token and to its
whole text (the answer's ``llm.ttft_s`` / ``llm.total_s``), and whether the guard kept the text
or why it fell back. Then the serving process's memory (``VmRSS`` and its peak ``VmHWM``, from
``/proc``), warm. The same questions on the default mode (in-process, the bench's own answerer)
are the baseline. Asserts nothing.

When the model file is not installed (or not verified) it prints a line naming ``make llm`` and
skips; it never fails the bench. ``python -m evals.bench_llm`` runs this part alone (the index
of ``BOUNCEBOT_INDEX_DIR`` must be built: ``bouncebot ingest``).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from evals.servers import stop_process

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 300.0  # seconds for serve to load the model, warm the prefix and answer (a cold prefix is ~1 min)
MEMORY_TARGET_MB = 2560

# (question, history): codes, free-form, a follow-up, small talk, a draft, and off-topic (the default refuses).
BATCH: list[tuple[str, list[dict]]] = [
    ("What does 552-5.2.2 mean?", []),
    ("A reply bounced with 550-5.1.1. What can I do?", []),
    ("Why was my email deferred with 421-4.7.28?", []),
    ("How do I get an address off the bounce list?", []),
    ("Do delivery failure notes reopen closed conversations?", []),
    ("how can we reduce delivery failures?", []),
    ("her mailbox is full, what can I do?", []),
    ("ok so what now?", [{"role": "user", "content": "What does 552-5.2.2 mean?"},
                         {"role": "assistant", "content": "552-5.2.2: the recipient's mailbox is full."}]),
    ("can you write something I can text the customer about this?",
     [{"role": "user", "content": "What does 552-5.2.2 mean?"},
      {"role": "assistant", "content": "552-5.2.2: the recipient's mailbox is full."}]),
    ("hi", []),
    ("How do I change the colour of the chat widget?", []),
    ("what should I check if the error keeps happening?", []),
]


@dataclass
class Asked:
    question: str
    first_event: float  # the skeleton (rows and citations), client side
    first_token: float | None  # the first token event, client side (None: the model was not asked)
    final: float  # the final event, client side
    ttft: float | None  # the model's own, from the answer's llm report
    total: float | None
    used: bool
    fallback: str | None
    mode: str


@dataclass
class Figures:
    asked: list[Asked] = field(default_factory=list)
    start_s: float = 0.0
    memory_mb: dict = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None


def model_missing(env: dict) -> str | None:
    """Why the local model cannot run here (a sentence naming ``make llm``), or ``None``."""
    from app.config import LLMSettings
    from app.llm.model_file import is_verified, model_path

    cache = LLMSettings.from_env(env).model_cache
    if importlib.util.find_spec("xllamacpp") is None:  # not imported here: its OpenMP belongs to serve
        return "the local model's runtime (xllamacpp) is not installed: run `make llm`"
    if not is_verified(model_path(cache)):
        return f"no verified model file in {cache}: run `make llm` (it joins and verifies it once)"
    return None


def _memory_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {k: int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM") if k in fields}


def _ask(client, question: str, history: list[dict]) -> Asked:
    t0 = time.perf_counter()
    first_event = first_token = None
    final: dict = {}
    with client.stream("POST", "/api/ask/stream", json={"question": question, "history": history}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.strip():
                continue
            event, now = json.loads(line), time.perf_counter() - t0
            first_event = now if first_event is None else first_event
            if event["type"] == "token" and first_token is None:
                first_token = now
            elif event["type"] == "final":
                final = event["answer"]
            elif event["type"] == "error":
                raise RuntimeError(event["error"])
    llm = final.get("llm") or {}
    return Asked(question, first_event or 0.0, first_token, time.perf_counter() - t0, llm.get("ttft_s"),
                 llm.get("total_s"), bool(llm.get("used")), llm.get("fallback"), final.get("mode", "?"))


def llm_figures(env: dict, rounds: int = 1) -> Figures:
    """Start ``bouncebot serve`` with the local model, ask ``BATCH`` ``rounds`` times, read its memory."""
    import httpx

    from evals.servers import free_port

    if why := model_missing(env):
        return Figures(skipped=why)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "BOUNCEBOT_LLM": "local", "OMP_WAIT_POLICY": "PASSIVE"}
    argv = [str(Path(sys.executable).parent / "bouncebot"), "serve", "--port", str(port)]
    out = Figures()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:  # the model is loaded and its prefix warmed before serve answers
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                out.error = f"bouncebot serve with BOUNCEBOT_LLM=local exited: {proc.stderr.read()[-600:]}"
                return out
            if time.perf_counter() - t0 > START_TIMEOUT:
                out.error = f"bouncebot serve with BOUNCEBOT_LLM=local did not answer within {START_TIMEOUT:g} s"
                return out
            time.sleep(0.1)
        out.start_s = time.perf_counter() - t0
        with httpx.Client(base_url=url, timeout=120) as client:
            _ask(client, "What does 550-5.1.1 mean?", [])  # warm: the slot holds the prefix and a question
            for _ in range(rounds):
                out.asked += [_ask(client, q, h) for q, h in BATCH]
        out.memory_mb = _memory_mb(proc.pid)
        return out
    except (httpx.HTTPError, RuntimeError, OSError) as e:
        out.error = f"the LLM server failed: {e}"
        return out
    finally:
        stop_process(proc, 30)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _line(name: str, values: list[float], target: str = "") -> None:
    from evals.bench import fmt

    if not values:
        print(f"  {name:<52} no samples")
        return
    tgt = f"  target {target}" if target else ""
    print(f"  {name:<52} p50 {fmt(_pct(values, 0.5))}  p95 {fmt(_pct(values, 0.95))}  (n={len(values)}){tgt}")


def print_figures(f: Figures, default_samples: list[float] | None = None) -> None:
    """The LLM mode's rows, beside the default mode's answer time (``default_samples``, in-process)."""
    print(f"\nLanguage-model mode (BOUNCEBOT_LLM=local, a live `bouncebot serve`, POST /api/ask/stream, "
          f"{len(BATCH)} mixed questions one at a time; load average {os.getloadavg()[0]:.2f})")
    if f.skipped:
        print(f"  skipped: {f.skipped}")
        return
    if f.error:
        print(f"  not measured: {f.error}")
        return
    if default_samples:
        _line("default mode: whole answer, in-process (baseline)", default_samples)
    asked = [a for a in f.asked if a.first_token is not None]
    print(f"  serve start (model loaded, prefix warm) to ready       {f.start_s:8.2f} s")
    _line("rows and citations shown (first event)", [a.first_event for a in f.asked])
    _line("model's time to first token", [a.ttft for a in asked if a.ttft is not None], "p50 <= 1.0 s")
    _line("first token event, client side", [a.first_token for a in asked])
    _line("model's whole text", [a.total for a in asked if a.total is not None])
    _line("full answer (final event), client side", [a.final for a in asked], "p50 <= 5 s")
    fallbacks = collections.Counter(a.fallback for a in asked if not a.used)
    print(f"  guard: model asked {len(asked)} of {len(f.asked)}, kept {sum(a.used for a in asked)}, "
          f"fell back {sum(fallbacks.values())} {dict(fallbacks) if fallbacks else ''}")
    rss, hwm = f.memory_mb.get("VmRSS"), f.memory_mb.get("VmHWM")
    print(f"  serve memory with the model loaded, warm: RSS {rss} MB, peak {hwm} MB  target <= {MEMORY_TARGET_MB} MB")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m evals.bench_llm", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1, help="times the batch is asked")
    args = ap.parse_args(argv)
    print_figures(llm_figures(dict(os.environ), args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
