"""``make bench-scale``: Bouncebot over a help centre of N synthetic articles around the real one.

    python -m evals.bench_scale            # N = 1,000 and 10,000, embedded store and Chroma server
    BENCH_SCALE_SIZES=200 python -m evals.bench_scale           # a quick run
    BENCH_SCALE_STORES=embedded python -m evals.bench_scale     # one store only

For each N (and a reference run on the real article alone, N = 0, embedded store) and each store
(``embedded``: a PersistentClient in a temp dir; ``server``: ``chroma run`` on loopback), in a fresh
temp dir: the corpus (``evals.scale_corpus``), ``ingest`` timed (parse, embedding in batches, store
writes), index size on disk, re-ingest after one article changed, ``bouncebot serve`` from spawn to
its first answered ``POST /api/ask`` (and to ``/healthz``) with its RSS, warm ``/api/ask`` latency
over the dev split's single-turn questions, and the real article's eval figures (``evals.run``'s
metrics, dev and test splits) at that scale, with a short profile of the warm answer path.

Scoring at scale (``evals.scale_scoring``): recall@k counts the real article's passages only; beside
the figures as-is, an ``adjusted`` set excuses fair answers from synthetic articles; English cases only
unless BENCH_SCALE_MULTILINGUAL=1 (the first non-English question is timed on its own, in ``serve``).
Prints one table; writes evals/results/scale/<stamp>.json.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import scale_corpus
from .run import load_cases
from .scale_scoring import english, score
from .servers import stop_process

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "scale"
DEFAULT_SIZES = (1000, 10000)
STORES = ("embedded", "server")
TARGETS = {"ingest_10k_s": 15 * 60, "reingest_s": 5.0, "answer_p95_ms": 30.0, "startup_s": 10.0}
PROBE = "How do I get an address off the bounce list?"  # needs the search: the index is opened for it
NON_ENGLISH = "¿Cómo saco una dirección de la lista de rebotes?"


class TimedEmbedder:
    """The embedder, counting the time and texts of ``embed_documents`` (ingest's embedding)."""

    def __init__(self, inner):
        self.inner, self.seconds, self.texts = inner, 0.0, 0

    def embed_documents(self, texts, progress=False):
        t = time.perf_counter()
        out = self.inner.embed_documents(texts, progress=progress)
        self.seconds += time.perf_counter() - t
        self.texts += len(texts)
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def rss_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    got = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    return {"rss_mb": round(got.get("VmRSS", 0) / 1024, 1), "peak_rss_mb": round(got.get("VmHWM", 0) / 1024, 1)}


def pct(values: list[float], q: float) -> float | None:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2) if s else None


def timed_ingest(settings, client, embedder, progress: bool = False) -> dict:
    """One ``bouncebot ingest`` (in process), its wall time split into parsing and chunking (ingest's
    own ``plan``, timed where it runs: with the machine's article cache as a real run has it), embedding
    and the rest (the store, the manifest, the lexical index)."""
    import ingest.indexer as indexer

    timed, parse = TimedEmbedder(embedder), []
    real_plan = indexer.plan

    def timed_plan(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real_plan(*args, **kwargs)
        finally:
            parse.append(time.perf_counter() - t)

    indexer.plan = timed_plan
    try:
        report = indexer.ingest(settings, client, timed, progress=progress)  # progress: tqdm on stderr
    finally:
        indexer.plan = real_plan
    wall, parse_s = report.seconds, sum(parse)
    return {"seconds": round(wall, 2), "chunks": report.chunks, "articles": report.articles, "added": report.added,
            "embedded": timed.texts, "chunks_per_s": round(report.chunks / wall, 1) if wall else None,
            "embedded_per_s": round(timed.texts / timed.seconds, 1) if timed.seconds else None,
            "parse_s": round(parse_s, 2), "embed_s": round(timed.seconds, 2),
            "store_s": round(max(0.0, wall - parse_s - timed.seconds), 2), "batch": getattr(embedder, "batch_size", None)}


def change_one_article(kb: Path) -> str:
    """Edit one published article of the middle export page (a sentence added, updated_at moved)."""
    pages = sorted(kb.glob(scale_corpus.PAGE_GLOB))
    page = pages[len(pages) // 2]
    doc = json.loads(page.read_text(encoding="utf-8"))
    art = next(a for a in doc["articles"] if not a["draft"])
    art["body"] = art["body"].replace("</ol>", "<li>Reload the page to see the change.</li></ol>", 1)
    art["updated_at"] = "2026-11-30T12:00:00Z"
    page.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return str(art["id"])


def serve_env(settings) -> dict:
    env = {**os.environ, "BOUNCEBOT_KB_DIR": str(settings.kb_dir), "BOUNCEBOT_INDEX_DIR": str(settings.index_dir),
           "BOUNCEBOT_COLLECTION": settings.collection, "BOUNCEBOT_FEEDBACK_DB": str(settings.feedback_db)}
    env.pop("BOUNCEBOT_CHROMA_URL", None)
    if settings.chroma_url:
        env["BOUNCEBOT_CHROMA_URL"] = settings.chroma_url
    return env


def measure_serve(settings, questions: list[str], chroma_pid: int | None) -> dict:
    """``bouncebot serve`` from spawn to /healthz and to the first answered /api/ask; RSS; warm latency."""
    import httpx

    from .servers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile(mode="w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "bouncebot"), "serve", "--host", "127.0.0.1",
                             "--port", str(port)], env=serve_env(settings), stdout=log, stderr=subprocess.STDOUT)
    out: dict = {}
    try:
        with httpx.Client(timeout=120) as http:
            while "healthz_s" not in out:
                if proc.poll() is not None or time.perf_counter() - t0 > 300:
                    log.seek(0)
                    raise RuntimeError(f"bouncebot serve did not start: {log.read()[-2000:]}")
                try:
                    if http.get(f"{url}/healthz").status_code == 200:
                        out["healthz_s"] = round(time.perf_counter() - t0, 2)
                except httpx.HTTPError:
                    time.sleep(0.05)
            r = http.post(f"{url}/api/ask", json={"question": PROBE})
            out["first_answer_s"] = round(time.perf_counter() - t0, 2)
            out["first_answer_ok"] = r.status_code == 200 and r.json().get("answered") is True
            out |= rss_mb(proc.pid)
            for q in questions[:10]:  # warm
                http.post(f"{url}/api/ask", json={"question": q})
            seconds, out["errors"], statuses = [], 0, {}
            for q in questions:
                t = time.perf_counter()
                try:
                    r = http.post(f"{url}/api/ask", json={"question": q})
                    out["errors"] += r.status_code >= 500
                    statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as e:
                    out["errors"] += 1
                    statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
                seconds.append(time.perf_counter() - t)
            out |= {"http_statuses": statuses, "http_p50_ms": pct(seconds, 0.5), "http_p95_ms": pct(seconds, 0.95), "http_n": len(seconds)}
            out["rss_after_mb"] = rss_mb(proc.pid)["rss_mb"]
            out["first_non_english_s"] = first_non_english(http, url)
            if chroma_pid:
                out["chroma_server_rss_mb"] = rss_mb(chroma_pid)["rss_mb"]
    finally:
        stop_process(proc, 10)
        log.close()
    return out


def first_non_english(http, url: str) -> float | str:
    """The first non-English question of a fresh server: the multilingual encoder's first use (it
    embeds the KB's documents then); bounded, since at scale it takes minutes."""
    import httpx

    cap = float(os.environ.get("BENCH_SCALE_ML_TIMEOUT", "90"))
    t = time.perf_counter()
    try:
        http.post(f"{url}/api/ask", json={"question": NON_ENGLISH}, timeout=cap)
    except httpx.TimeoutException:
        return f"> {cap:g} (timed out)"
    return round(time.perf_counter() - t, 2)


def profile_answers(answerer, questions: list[str], top: int = 6) -> list[str]:
    prof = cProfile.Profile()
    prof.enable()
    for q in questions:
        answerer.ask(q)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
    lines = [ln.strip() for ln in s.getvalue().splitlines() if ln.strip() and ln.strip()[0].isdigit()]
    return lines[:top]


def run_store(n: int, store: str, kb: Path, work: Path, embedder, questions, ingester=None) -> dict:
    """``ingester``: the embedder ingests use (``bouncebot ingest``'s: all cores); ``embedder`` answers (serve's)."""
    ingester = ingester or embedder
    from app.answering.services import build
    from app.config import Settings
    from app.knowledge.articles import load_articles
    from app.search.chroma import make_client

    from .servers import ChromaServer

    work.mkdir(parents=True)
    settings = Settings.from_env().with_(kb_dir=kb, index_dir=work / "index", collection="scale",
                                        feedback_db=work / "feedback.sqlite3", chroma_url=None)
    server = ChromaServer(work / "chroma") if store == "server" else None
    res: dict = {"n": n, "store": store, "load_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        if server:
            server.__enter__()
            settings = settings.with_(chroma_url=server.url)
        client = make_client(settings)
        res["ingest"] = timed_ingest(settings, client, ingester, progress=n >= 1000)
        res["index_mb"] = round(disk_bytes(server.path if server else settings.index_dir) / 2**20, 1)
        res["changed_article"] = change_one_article(kb) if n else None
        res["reingest"] = timed_ingest(settings, client, ingester) if n else None
        res["serve"] = measure_serve(settings, questions, server.proc.pid if server else None)
        t = time.perf_counter()
        services = build(settings, embedder=embedder, client=client)
        real = next(a for a in load_articles(scale_corpus.REAL_ARTICLE.parent) if a.path == scale_corpus.REAL_ARTICLE.name)
        rows = {r.code: (r.meaning, r.action) for r in real.rows}
        res["eval"] = {split: score(services.answerer, split, rows, real.url) for split in ("dev", "test")}
        free_form = [q for q in questions if not any(ch.isdigit() for ch in q)][:40]
        res["profile_free_form"] = profile_answers(services.answerer, free_form)
        res["eval_seconds"] = round(time.perf_counter() - t, 1)
    finally:
        if server:
            server.__exit__()
        res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return res


def sizes_from_env() -> list[int]:
    raw = os.environ.get("BENCH_SCALE_SIZES", "").strip()
    if not raw:
        return list(DEFAULT_SIZES)
    try:
        return [int(x) for x in raw.replace(" ", "").split(",") if x]
    except ValueError:
        raise SystemExit(f"BENCH_SCALE_SIZES must be comma-separated whole numbers (e.g. 200,1000), not {raw!r}")


def stores_from_env() -> list[str]:
    stores = [s.strip() for s in os.environ.get("BENCH_SCALE_STORES", ",".join(STORES)).split(",") if s.strip()]
    bad = [s for s in stores if s not in STORES]
    if bad or not stores:
        raise SystemExit(f"BENCH_SCALE_STORES must name {' and/or '.join(STORES)}, not {bad or stores}")
    return stores


def table(results: list[dict]) -> str:
    f = lambda v: "-" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v}")  # noqa: E731
    head = ["N", "store", "chunks", "ingest s", "chunks/s", "parse/embed/store s", "index MB", "re-ingest s",
            "healthz s", "1st answer s", "RSS MB", "HTTP p50/p95 ms", "in-proc p50/p95 ms",
            "test exact/false/r@1/r@3/facts", "test refusal P/R (adj.)", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        i, s, ev = r["ingest"], r["serve"], r["eval"]["test"]
        a, j = ev["as_is"], ev["adjusted"]
        re_s = r["reingest"]["seconds"] if r.get("reingest") else None
        lines.append("| " + " | ".join([
            f(r["n"]), r["store"], f(i["chunks"]), f(i["seconds"]), f(i["chunks_per_s"]),
            f"{i['parse_s']}/{i['embed_s']}/{i['store_s']}", f(r["index_mb"]), f(re_s), f(s["healthz_s"]),
            f(s["first_answer_s"]), f(s["rss_mb"]), f"{s['http_p50_ms']}/{s['http_p95_ms']}",
            f"{a['latency_p50_ms']}/{a['latency_p95_ms']}",
            f"{a['code_exact_match']}/{a['false_exact_claims']}/{a['recall@1']}/{a['recall@3']}/{a['fact_recall']}",
            f"{a['refusal_precision']}/{a['refusal_recall']} ({j['refusal_precision']}/{j['refusal_recall']})",
            "/".join(str(x) for x in r["load_after"])]) + " |")
    return "\n".join(lines)


def targets_text(results: list[dict]) -> str:
    out = []
    for r in results:
        if not r["n"]:
            continue
        tag = f"N={r['n']:,} {r['store']}"
        per_10k = r["ingest"]["seconds"] * 10000 / r["n"]
        out.append(f"{tag}: ingest {r['ingest']['seconds']} s (scaled to 10,000: {per_10k:.0f} s; target < "
                   f"{TARGETS['ingest_10k_s']} s); re-ingest {r['reingest']['seconds']} s (target < {TARGETS['reingest_s']});"
                   f" answer p95 in-process {r['eval']['test']['as_is']['latency_p95_ms']} ms, HTTP "
                   f"{r['serve']['http_p95_ms']} ms (target < {TARGETS['answer_p95_ms']}); start-up "
                   f"{r['serve']['first_answer_s']} s (target < {TARGETS['startup_s']})")
        i, re_ = r["ingest"], r["reingest"]
        out.append(f"  what dominates: ingest = embedding {i['embed_s']} of {i['seconds']} s "
                   f"({i['embed_s'] / max(i['seconds'], 1e-9):.0%}), parsing {i['parse_s']} s, the store {i['store_s']} s; "
                   f"re-ingest = parsing and chunking {re_['parse_s']} s, embedding {re_['embed_s']} s ({re_['embedded']} "
                   f"documents), the store and the lexical index {re_['store_s']} s")
    return "\n".join(out)


def main() -> int:
    from app.config import Settings
    from app.search.embeddings import Embedder

    sizes, stores = sizes_from_env(), stores_from_env()
    env_settings = Settings.from_env()
    embedder = Embedder.from_settings(env_settings).load()  # answers: serve's threads
    ingester = Embedder.from_settings(env_settings, threads=env_settings.ingest_threads).load()  # as `bouncebot ingest`
    questions = [c["question"] for c in load_cases(["dev"]) if not c.get("history") and english(c["question"])]
    started = datetime.now(timezone.utc)
    results = []
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for n in [0] + sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-scale-{n}-") as tmp:
            kb = Path(tmp) / "kb"
            t = time.perf_counter()
            corpus = scale_corpus.write_corpus(n, kb)
            corpus["seconds"] = round(time.perf_counter() - t, 2)
            for store in (["embedded"] if n == 0 else stores):
                print(f"[bench-scale] N={n:,} {store}: ingest, serve, eval ...", file=sys.stderr, flush=True)
                r = run_store(n, store, kb, Path(tmp) / store, embedder, questions, ingester) | {"corpus": corpus}
                results.append(r)
                print(f"[bench-scale] N={n:,} {store}: ingest {r['ingest']['seconds']} s, first answer "
                      f"{r['serve']['first_answer_s']} s", file=sys.stderr, flush=True)
                (OUT / f"{stamp}.json").write_text(json.dumps(
                    {"started": started.isoformat(), "cpus": os.cpu_count(), "targets": TARGETS,
                     "embed_threads": embedder.threads if hasattr(embedder, "threads") else None,
                     "ingest_threads": ingester.threads,
                     "results": results}, indent=1, default=sorted) + "\n", encoding="utf-8")
                if store == "server":
                    shutil.rmtree(Path(tmp) / store, ignore_errors=True)
    print(table(results))
    print()
    print(targets_text(results))
    print(f"\nJSON: {OUT / f'{stamp}.json'}  (load average 1/5/15 min after each run in the last column; "
          f"{os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
