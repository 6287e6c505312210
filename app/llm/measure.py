"""Load time, memory, and time to first token / full answer with the prefix warm: ``python -m app.llm.measure``.

Each thread count runs in a process of its own (OpenMP's settings are read once per process),
loads the verified GGUF, computes the prefix (instructions + the whole article) and asks the
five questions below; then a question after an unrelated prompt (does the prefix's cache
survive a prompt that does not start with it?), and a question after restoring the prefix
from the file that the first warm saved (what a later start-up costs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = (
    "What does 552-5.2.2 mean?",
    "A reply bounced with 550-5.1.1. What can I do?",
    "Why was my email deferred with 421-4.7.28?",
    "How do I get an address off the bounce list?",
    "Do delivery failure notes reopen closed conversations?",
)
MAX_TOKENS = 80


def _memory_mb() -> dict:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(status[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM") if k in status}


def _timed(model, messages) -> dict:
    start, first, text, meta = time.monotonic(), None, "", {}
    for chunk in model.stream(messages):
        if chunk.content and first is None:
            first = time.monotonic() - start
        text += chunk.content
        meta = chunk.response_metadata or meta
    timings = meta.get("timings") or {}
    return {"ttft": first, "total": time.monotonic() - start, "cache_n": timings.get("cache_n"),
            "prompt_n": timings.get("prompt_n"), "predicted_n": timings.get("predicted_n"), "answer": text}


def measure(threads: int, kb_dir: Path) -> dict:
    from langchain_core.messages import HumanMessage

    from .door import make_chat_model
    from .prefix import prefix_messages
    from .settings import LLMSettings

    settings = LLMSettings.from_env().with_(mode="local", threads=threads, timeout=300.0)
    start = time.monotonic()
    model = make_chat_model(settings, max_tokens=MAX_TOKENS)
    model.load()
    out = {"threads": threads, "load": time.monotonic() - start, "memory_loaded_mb": _memory_mb()}
    prefix = prefix_messages(kb_dir)
    out["warm"] = model.warm(prefix, saved=False)
    out["questions"] = [{"question": q, **_timed(model, [*prefix, HumanMessage(q)])} for q in QUESTIONS]
    unrelated = model.model_copy(update={"max_tokens": 8})
    _timed(unrelated, [HumanMessage("Say hello.")])
    out["after_unrelated"] = _timed(model, [*prefix, HumanMessage(QUESTIONS[0])])
    _timed(unrelated, [HumanMessage("Say goodbye.")])
    out["restore"] = model.warm(prefix)
    out["after_restore"] = _timed(model, [*prefix, HumanMessage(QUESTIONS[1])])
    out["memory_end_mb"] = _memory_mb()
    return out


def _median(values: list[float]) -> float:
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def report(r: dict) -> str:
    warm, restore = r["warm"], r["restore"]
    lines = [f"threads={r['threads']}: load {r['load']:.1f} s, RSS {r['memory_loaded_mb'].get('VmRSS')} MB loaded, "
             f"peak {r['memory_end_mb'].get('VmHWM')} MB; prefix of {warm['prefix_tokens']} tokens computed in "
             f"{warm['seconds']:.1f} s ({warm['computed'] / warm['seconds']:.0f} tokens/s), restored from its "
             f"file in {restore['seconds'] * 1000:.0f} ms ({restore['source']})"]
    lines.append(f"  {'ttft s':>7} {'total s':>8} {'cached':>6} {'new':>4} {'out':>4}  question -> answer")
    for q in [*r["questions"], {**r["after_unrelated"], "question": "(after an unrelated prompt) " + QUESTIONS[0]},
              {**r["after_restore"], "question": "(after restoring the prefix) " + QUESTIONS[1]}]:
        ttft = f"{q['ttft']:.2f}" if q["ttft"] is not None else "-"
        answer = " ".join(q["answer"].split())
        lines.append(f"  {ttft:>7} {q['total']:>8.2f} {q['cache_n']!s:>6} {q['prompt_n']!s:>4} {q['predicted_n']!s:>4}"
                     f"  {q['question']} -> {answer[:90]}{'...' if len(answer) > 90 else ''}")
    qs = r["questions"]
    lines.append(f"  p50 ttft {_median([q['ttft'] for q in qs if q['ttft'] is not None]):.2f} s, "
                 f"p50 full answer {_median([q['total'] for q in qs]):.2f} s (max_tokens {MAX_TOKENS})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.llm.measure", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kb", type=Path, default=Path(__file__).resolve().parents[2] / "kb")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.threads[0], args.kb)))
        return 0
    results = []
    for threads in args.threads:
        done = subprocess.run([sys.executable, "-m", "app.llm.measure", "--child", "--threads", str(threads),
                               "--kb", str(args.kb)], capture_output=True, text=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not args.json:
            print(report(results[-1]), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
