"""Write an eval run as Markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

SHOWN = [
    ("code_exact_match", "code exact-match"),
    ("false_exact_claims", "false exact claims"),
    ("codes_found_correctly", "codes found correctly"),
    ("recall@1", "recall@1"),
    ("recall@3", "recall@3"),
    ("mrr", "MRR"),
    ("fact_recall", "fact recall"),
    ("citation_correct", "citation correct"),
    ("refusal_precision", "refusal precision"),
    ("refusal_recall", "refusal recall"),
    ("intent_correct", "intent correct"),
    ("carried_codes_correct", "carried codes correct"),
    ("draft_correct", "draft correct"),
    ("handoff_correct", "hand-off correct"),
    ("handoff_field_recall", "hand-off field recall"),
    ("small_talk_not_idk", "small talk not IDK"),
    ("answer_words_p50", "answer words p50"),
    ("answer_words_p95", "answer words p95"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
]
NOT_RATES = ("false_exact_claims", "latency_p50_ms", "latency_p95_ms", "answer_words_p50", "answer_words_p95")
CHARTED = [k for k, _ in SHOWN if k not in NOT_RATES]


def _cell(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(run: dict) -> str:
    names = list(run["pipelines"])
    lines = [
        f"# Eval: {', '.join(run['datasets'])} ({run['cases']} cases)",
        "",
        "| metric | target | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for key, label in SHOWN:
        target = run["targets"].get(key)
        tgt = "n/a" if target is None else (f"= {target}" if key == "false_exact_claims" else f">= {target}")
        vals = [_cell(run["pipelines"][n]["metrics"].get(key)) for n in names]
        lines.append(f"| {label} | {tgt} | " + " | ".join(vals) + " |")
    lines.append("")
    lines.append("Baselines have no code look-up, never refuse and get the message alone (no history); a row counts "
                 "as claimed by them when its meaning is in the top passage. `bouncebot-nohistory` is the same "
                 "answerer with the history dropped. Answer words: the Markdown answer, counting the whitespace-separated tokens that hold a letter or digit.")
    lines += _groups(run, "by_turns", "By turns")
    lines += _groups(run, "by_category", "By category")
    listed = "bouncebot" if "bouncebot" in names else names[0]
    for name in names:
        failures = [c for c in run["pipelines"][name]["cases"] if c["failed"]]
        lines += ["", f"## Failures: {name} ({len(failures)} of {run['cases']})", ""]
        if name != listed:
            lines.append("_Listed in full in the JSON report; counted above._")
            continue
        for c in failures:
            got = c["got"]
            history = c.get("history") or []
            lines += [
                f"### {c['id']} ({c['category']}): {'; '.join(c['failed'])}",
                "",
            ] + [f"- **history {i + 1}** ({t['role']}): `{t['content'][:160]!r}`" for i, t in enumerate(history)] + [
                f"- **question**: `{c['question'][:300]!r}`",
                f"- **expected**: `{json.dumps(c['expect'], ensure_ascii=False)[:400]}`",
                f"- **got**: answered={got['answered']}, codes={got['codes']}, cited={got['cited']}, "
                f"ranked={got['ranked']}, intent={got.get('intent')}, carried={got.get('carried')}",
                *([f"- **draft**: `{json.dumps(got['draft'], ensure_ascii=False)[:300]}`"] if got.get("draft") else []),
                *([f"- **hand-off**: `{json.dumps(got['handoff'].get('fields'), ensure_ascii=False)[:300]}`"]
                  if got.get("handoff") else []),
                f"- **retrieved**: {got['sources'][:3]}",
                f"- **answer**: {got['answer'][:300]!r}",
                "",
            ]
    return "\n".join(lines) + "\n"


def _groups(run: dict, key: str, title: str) -> list[str]:
    """One table per group (category, or single- vs multi-turn): the metrics that apply to it, per pipeline."""
    names = list(run["pipelines"])
    groups = list(dict.fromkeys(g for n in names for g in run["pipelines"][n].get(key, {})))
    if not groups:
        return []
    lines = ["", f"## {title}"]
    for g in groups:
        per = [run["pipelines"][n].get(key, {}).get(g, {}) for n in names]
        lines += ["", f"### {g} ({per[0].get('cases', 0)} cases)", "",
                  "| metric | " + " | ".join(names) + " |", "| --- | " + " | ".join("---" for _ in names) + " |"]
        for k, label in SHOWN:
            if k.startswith("latency"):
                continue
            vals = [m.get(k) for m in per]
            if all(v is None for v in vals) or (k in ("false_exact_claims",) and not any(vals)):
                continue
            lines.append(f"| {label} | " + " | ".join(_cell(v) for v in vals) + " |")
    return lines


def chart(run: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(run["pipelines"])
    fig, ax = plt.subplots(figsize=(13, 5.4), dpi=110)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        m = run["pipelines"][name]["metrics"]
        vals = [m.get(k) or 0.0 for k in CHARTED]
        xs = [j + i * width for j in range(len(CHARTED))]
        ax.bar(xs, vals, width, label=f"{name} (p50 {m.get('latency_p50_ms')} ms)")
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(CHARTED))])
    ax.set_xticklabels([dict(SHOWN)[k] for k in CHARTED], rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher is better)")
    ax.set_title(f"Bouncebot eval: {', '.join(run['datasets'])}, {run['cases']} cases")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(names), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(run: dict, out: Path, stem: str = "report") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "chart": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(run, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(run), encoding="utf-8")
    chart(run, paths["chart"])
    return paths
