"""How well insights group refused questions, at each threshold: the figures behind
``app.insights.grouping.EMBED_THRESHOLD`` and ``TOKEN_THRESHOLD``.

    python -m evals.insights_grouping [--thresholds 0.3,0.35,...]

The questions are the eval dev split's refusals (``answered: false``) and the seed's paraphrases of
them (``evals.insights_seed.REFUSAL_VARIANTS``), each labelled below with the request it makes (our
labels; several dev refusals are one request asked in another language). For each threshold, both
similarities (MiniLM embeddings, shared words) are scored by pairs: precision (of the pairs put in
one group, how many share a label), recall (of the pairs sharing a label, how many were put in one
group) and F1, with the number of groups against the number of labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import combinations

from app.insights.grouping import clusters, similarity
from evals.insights_seed import DEV, REFUSAL_VARIANTS

# dev id -> request (the dev split's refusal cases)
DEV_TOPICS = {
    "dev-unans-001": "pricing", "dev-unans-028": "pricing", "dev-unans-031": "pricing", "dev-decoy-004": "pricing",
    "dev-unans-016": "seats", "dev-unans-017": "cancel", "dev-unans-002": "slack",
    "dev-unans-003": "export", "dev-unans-029": "export", "dev-unans-025": "export",
    "dev-unans-005": "trivia", "dev-unans-024": "poem", "dev-unans-034": "poem", "dev-unans-027": "chit-chat",
    "dev-unans-006": "sla", "dev-unans-007": "autoresponder", "dev-unans-008": "widget", "dev-unans-030": "widget",
    "dev-unans-009": "macros", "dev-unans-010": "merge", "dev-unans-011": "workflow", "dev-unans-012": "csat",
    "dev-unans-037": "csat", "dev-unans-013": "ai-agent", "dev-unans-014": "segments", "dev-unans-015": "domain",
    "dev-unans-018": "jira", "dev-unans-019": "whatsapp", "dev-unans-032": "whatsapp", "dev-unans-020": "sso",
    "dev-unans-021": "roles", "dev-unans-035": "roles", "dev-unans-022": "newsletter", "dev-unans-033": "newsletter",
    "dev-unans-023": "ip-warmup", "dev-unans-026": "bounce-report", "dev-unans-036": "password",
    "dev-decoy-002": "app-version", "dev-decoy-003": "retention", "dev-decoy-005": "log-calls",
    "dev-decoy-007": "push-notifications", "dev-decoy-009": "sms",
}
# the seed's paraphrases, in REFUSAL_VARIANTS' order
VARIANT_TOPICS = ["pricing", "pricing", "pricing", "export", "export", "widget", "widget", "whatsapp", "whatsapp",
                  "slack", "slack", "sso", "sso", "cancel", "cancel", "merge", "csat"]


def labelled() -> list[tuple[str, str, bool]]:
    """(question, request, English) for every labelled refusal."""
    dev = {c["id"]: c for c in map(json.loads, DEV.read_text(encoding="utf-8").splitlines())}
    assert len(VARIANT_TOPICS) == len(REFUSAL_VARIANTS)
    english_only = {"dev-unans-028", "dev-unans-029", "dev-unans-030", "dev-unans-031", "dev-unans-032",
                    "dev-unans-033", "dev-unans-034", "dev-unans-035", "dev-unans-036", "dev-unans-037"}
    out = [(dev[i]["question"], t, i not in english_only) for i, t in DEV_TOPICS.items()]
    return out + [(q, t, True) for q, t in zip(REFUSAL_VARIANTS, VARIANT_TOPICS)]


def score(sim, labels: list[str], threshold: float) -> dict:
    groups = clusters(sim, [1] * len(labels), threshold)
    where = {m: g for g, (_, members) in enumerate(groups) for m in members}
    tp = fp = fn = 0
    for a, b in combinations(range(len(labels)), 2):
        same_label, same_group = labels[a] == labels[b], where[a] == where[b]
        tp += same_label and same_group
        fp += same_group and not same_label
        fn += same_label and not same_group
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"threshold": threshold, "groups": len(groups), "labels": len(set(labels)), "precision": round(p, 3),
            "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.insights_grouping", description=__doc__.split("\n\n")[0])
    ap.add_argument("--thresholds", default="0.2,0.25,0.3,0.34,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8")
    a = ap.parse_args(argv)
    thresholds = [float(t) for t in a.thresholds.split(",")]
    from app.config import Settings
    from app.search.embeddings import Embedder

    data = labelled()
    embed = Embedder.from_settings(Settings.from_env()).embed_documents
    for name, subset in (("all refusals", data), ("English refusals", [d for d in data if d[2]])):
        texts, labels = [d[0] for d in subset], [d[1] for d in subset]
        t0 = time.perf_counter()
        sims = {"embeddings": similarity(texts, embed), "words": similarity(texts)}
        took = time.perf_counter() - t0
        print(f"\n{name}: {len(texts)} questions, {len(set(labels))} requests (similarities in {took:.2f} s)")
        print(f"  {'similarity':<11}{'threshold':>10}{'groups':>8}{'precision':>11}{'recall':>8}{'F1':>7}")
        for kind, sim in sims.items():
            for t in thresholds:
                s = score(sim, labels, t)
                print(f"  {kind:<11}{t:>10.2f}{s['groups']:>8}{s['precision']:>11.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
