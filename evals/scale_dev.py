"""The real article's eval figures at scale, measured in a minute per change (issue 14).

    python -m evals.scale_dev build 0 200 1000        # corpus + ingest once per N, under $SCALE_DEV_DIR
    python -m evals.scale_dev score 0 200 1000        # dev split, as-is and adjusted, per N
    python -m evals.scale_dev score 1000 --split test --failures
    python -m evals.scale_dev ablate 200 1000         # each issue-14 rule added in turn (dev)

Each N gets ``$SCALE_DEV_DIR/<N>/kb`` (``evals.scale_corpus``: N synthetic articles around the
real one; N = 0: the real article alone) and ``<N>/index`` (collection ``scaledev``). ``score``
builds the services over the existing index (no re-ingest) and scores with
``evals.scale_scoring.score``: the same figures as ``make bench-scale``'s eval, without its
ingest, serve and latency runs. ``--failures`` lists the failed cases' ids and what they ranked;
``--diff`` the cases whose outcome at N differs from the one with the real article alone (N = 0,
scored in the same run when it is not among the sizes), measure by measure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("SCALE_DEV_DIR", "/tmp/scaledev"))
COLLECTION = "scaledev"
SHOWN = ("code_exact_match", "false_exact_claims", "recall@1", "recall@3", "fact_recall",
         "refusal_precision", "refusal_recall")


def settings_for(n: int):
    from app.config import Settings

    work = ROOT / str(n)
    return Settings.from_env().with_(kb_dir=work / "kb", index_dir=work / "index", collection=COLLECTION,
                                     feedback_db=work / "feedback.sqlite3", chroma_url=None)


def build_index(n: int, embedder) -> dict:
    from ingest.indexer import ingest
    from app.search.chroma import make_client

    from . import scale_corpus

    settings = settings_for(n)
    corpus = scale_corpus.write_corpus(n, settings.kb_dir)
    t = time.perf_counter()
    report = ingest(settings, make_client(settings), embedder, progress=False)
    return {"n": n, "articles": corpus["articles"], "chunks": report.chunks, "ingest_s": round(time.perf_counter() - t, 1)}


class ExactDense:
    """A collection whose ``query`` is an exact nearest-neighbour search (every vector, by numpy), the rest
    the collection's own: ``--exact`` tells the ranking's losses from the vector index's (HNSW's) misses."""

    def __init__(self, collection, page: int = 5000):
        import numpy as np

        self._c = collection
        ids, vecs = [], []
        for start in range(0, collection.count(), page):
            got = collection.get(include=["embeddings"], limit=page, offset=start)
            ids += got["ids"]
            vecs.append(np.asarray(got["embeddings"], dtype=np.float32))
        self._ids, self._m = ids, np.concatenate(vecs) if vecs else np.zeros((0, 1), dtype=np.float32)

    def __getattr__(self, name):
        return getattr(self._c, name)

    def query(self, query_embeddings, n_results=10, where=None, include=("metadatas", "documents", "distances")):
        import numpy as np

        if where is not None:
            return self._c.query(query_embeddings=query_embeddings, n_results=n_results, where=where, include=include)
        sims = self._m @ np.asarray(query_embeddings[0], dtype=np.float32)
        top = np.argsort(-sims, kind="stable")[:n_results]
        ids = [self._ids[j] for j in top]
        out = {"ids": [ids], "distances": [[float(1.0 - sims[j]) for j in top]]}
        rest = [k for k in include if k in ("metadatas", "documents")]
        if rest:
            got = self._c.get(ids=ids, include=rest)
            at = {i: n for n, i in enumerate(got["ids"])}
            out.update({k: [[got[k][at[i]] for i in ids]] for k in rest})
        return out


EXACT = False  # --exact: the retrievers' dense search is exact (ExactDense)


def _answerer(n: int, embedder):
    from app.answering.services import build
    from app.search.chroma import make_client

    settings = settings_for(n)
    answerer = build(settings, embedder=embedder, client=make_client(settings)).answerer
    if EXACT:
        answerer.retriever.collection = ExactDense(answerer.retriever.collection)
    return answerer


def score_split(n: int, split: str, embedder) -> dict:
    from app.knowledge.articles import load_articles

    from . import scale_corpus
    from .scale_scoring import score

    answerer = _answerer(n, embedder)
    real = next(a for a in load_articles(scale_corpus.REAL_ARTICLE.parent) if a.path == scale_corpus.REAL_ARTICLE.name)
    rows = {r.code: (r.meaning, r.action) for r in real.rows}
    return score(answerer, split, rows, real.url)


MEASURES = ("code_exact", "false_claims", "recall@1", "recall@3", "facts_found", "answered_got")


def outcomes(n: int, split: str, embedder) -> dict[str, dict]:
    """Each case's outcome at N (adjusted scoring), measure by measure, with what it ranked."""
    from app.knowledge.articles import load_articles

    from . import scale_corpus
    from .metrics import check_case
    from .run import load_cases
    from .scale_scoring import adjusted, english, predict

    answerer = _answerer(n, embedder)
    real = next(a for a in load_articles(scale_corpus.REAL_ARTICLE.parent) if a.path == scale_corpus.REAL_ARTICLE.name)
    rows = {r.code: (r.meaning, r.action) for r in real.rows}
    out = {}
    for case in load_cases([split]):
        if not english(case["question"]):
            continue
        pred, _ = adjusted(case, predict(answerer, case["question"], case.get("history"), real.url))
        got = check_case(case, pred, rows)
        out[case["id"]] = {**{k: got.get(k) for k in MEASURES}, "ranked": pred["ranked"][:3],
                           "question": case["question"][:90]}
    return out


def diff(base: dict, now: dict) -> list[str]:
    lines = []
    for cid, o in now.items():
        b = base.get(cid, {})
        changed = [f"{k}: {b.get(k)} -> {o[k]}" for k in MEASURES if o[k] != b.get(k)]
        if changed:
            lines.append(f"   {cid:<22} {'; '.join(changed)}\n      {o['question']!r}\n      ranked {o['ranked']}")
    return lines


# The issue-14 rules, each added in turn by ``ablate`` (cumulative): name, what switches it on.
RULES = ("none", "enhanced code alone: every row", "answering article's similarity",
         "shared words shared out", "answering article ranked alone")


def switch(upto: int) -> None:
    """Turn the first ``upto`` of RULES' rules on (after "none") and the others off, process-wide."""
    from app.codes import table
    from app.search.retrieval import HybridRetriever, SearchResult

    if not hasattr(table.CodeTable, "_match_all_rows"):
        table.CodeTable._match_all_rows = table.CodeTable.match

    def one_reply_code(self, found, context=None, providers=None):  # the rule before: exact only with one
        if upto < 1 and found.reply is None and found.enhanced:
            replies = {table._split(r.code)[0] for r in self._by_enhanced.get(found.enhanced, [])}
            if len(replies) > 1:
                general = table.explain(found.reply, found.enhanced, context, providers)
                return table.CodeMatch(found, None, general, self.related(found), general.reason if general else None)
        return self._match_all_rows(found, context, providers)

    table.CodeTable.match = one_reply_code
    SearchResult.answering_similarity = property(
        lambda r: r.best_similarity if upto < 2 or r.answer_similarity is None else r.answer_similarity)
    HybridRetriever.article_shared = int(upto >= 3)
    HybridRetriever.article_alone = int(upto >= 4)


def ablate(n: int, split: str) -> None:
    """``score`` once per rule added (a fresh process each: nothing cached from another setting)."""
    import subprocess

    for upto, name in enumerate(RULES):
        out = subprocess.run([sys.executable, "-m", "evals.scale_dev", "score", str(n), "--split", split,
                              "--rules", str(upto)], capture_output=True, text=True, check=True).stdout
        for row in out.splitlines():
            if row.startswith("N="):
                print(f"{row}  + {name}", flush=True)


def line(n: int, split: str, kind: str, m: dict) -> str:
    return f"N={n:<5} {split:<4} {kind:<8} " + " ".join(f"{k}={m[k]}" for k in SHOWN)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.scale_dev", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("build", "score", "ablate"))
    ap.add_argument("sizes", type=int, nargs="+", help="numbers of synthetic articles (0: the real article alone)")
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--failures", action="store_true", help="list the failed cases")
    ap.add_argument("--diff", action="store_true", help="the cases whose outcome differs from N = 0's")
    ap.add_argument("--rules", type=int, default=len(RULES) - 1,
                    help=f"score with only the first K of the issue-14 rules on ({', '.join(RULES[1:])})")
    ap.add_argument("--json", type=Path, help="write the full results here")
    ap.add_argument("--exact", action="store_true",
                    help="exact dense search (numpy over every vector) instead of the vector index's")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="set a HybridRetriever ranking attribute for this run (e.g. article_margin=0.05)")
    args = ap.parse_args(argv)
    global EXACT
    EXACT = args.exact
    for item in args.set:
        name, _, value = item.partition("=")
        from app.search.retrieval import HybridRetriever

        if not hasattr(HybridRetriever, name):
            ap.error(f"--set {item}: HybridRetriever has no attribute {name!r}")
        setattr(HybridRetriever, name, type(getattr(HybridRetriever, name))(float(value)))
    from app.config import Settings
    from app.search.embeddings import Embedder

    if args.command == "ablate":
        for n in args.sizes:
            ablate(n, args.split)
        return 0
    switch(args.rules)
    embedder = Embedder.from_settings(Settings.from_env()).load()
    out = {}
    if args.diff:
        base = outcomes(0, args.split, embedder)
        for n in [x for x in args.sizes if x]:
            lines = diff(base, outcomes(n, args.split, embedder))
            print(f"N={n}: {len(lines)} cases differ from N=0", *lines, sep="\n", flush=True)
        return 0
    for n in args.sizes:
        if args.command == "build":
            print(json.dumps(build_index(n, embedder)), flush=True)
            continue
        res = score_split(n, args.split, embedder)
        out[n] = res
        for kind in ("as_is", "adjusted"):
            print(line(n, args.split, kind, res[kind]), flush=True)
        if args.failures:
            for f in res["failures"]:
                print(f"   {f['id']:<22} {','.join(f['failed']):<16} claimed={f['claimed']} ranked={f['ranked']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=sorted) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
