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
# What the language-model mode did (metrics.summarise_llm), for the pipelines that have it.
LLM_SHOWN = [
    ("llm_asked", "answers the model was asked for"),
    ("llm_asked_rate", "share of cases the model was asked for"),
    ("llm_used_rate", "model's text kept (of asked)"),
    ("fallback_rate", "fallback rate (of asked)"),
    ("fallbacks", "fallbacks by reason"),
    ("intervention_rate", "answers with a guard intervention (of asked)"),
    ("interventions", "guard interventions by kind"),
    ("unsupported_sentences_caught", "unsupported sentences caught"),
    ("ttft_p50_ms", "time to first token p50 ms"),
    ("ttft_p95_ms", "time to first token p95 ms"),
    ("llm_total_p50_ms", "model's whole text p50 ms"),
    ("llm_total_p95_ms", "model's whole text p95 ms"),
]


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in v.items()) or "none"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(run: dict) -> str:
    names = list(run["pipelines"])
    subset = f", the first {run['limit']} of each dataset file" if run.get("limit") else ""
    lines = [
        f"# Eval: {', '.join(run['datasets'])} ({run['cases']} cases{subset})",
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
    lines += _llm(run)
    lines += _groups(run, "by_turns", "By turns")
    lines += _groups(run, "by_category", "By category")
    listed = {"bouncebot", "llm"} & set(names) or {names[0]}
    for name in names:
        failures = [c for c in run["pipelines"][name]["cases"] if c["failed"]]
        lines += ["", f"## Failures: {name} ({len(failures)} of {run['cases']})", ""]
        if name not in listed:
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


def _llm(run: dict) -> list[str]:
    """What the language-model mode did, per pipeline that has it, and every answer the guard touched."""
    names = [n for n in run["pipelines"] if "llm" in run["pipelines"][n]]
    if not names:
        return []
    lines = ["", "## Language-model mode", "", "| measure | " + " | ".join(names) + " |",
             "| --- | " + " | ".join("---" for _ in names) + " |"]
    for key, label in LLM_SHOWN:
        lines.append(f"| {label} | " + " | ".join(_cell(run["pipelines"][n]["llm"].get(key)) for n in names) + " |")
    lines += ["", "Every metric above is computed on the answer as shown (the model's text above the rows and "
              "passages when it is kept, the default answer marked when it falls back); a code the shown model "
              "text names without an exact match counts as a false exact claim. Latency p50/p95 above is the "
              "whole answer; the model's own times are here."]
    for name in names:
        touched = [c for c in run["pipelines"][name]["cases"] if (c["got"].get("llm") or {}).get("interventions")]
        lines += ["", f"### Guard interventions: {name} ({len(touched)} answers)", ""]
        for c in touched:
            r = c["got"]["llm"]
            lines.append(f"- **{c['id']}** fallback={r.get('fallback')} interventions={r['interventions']}: "
                         f"{' '.join((r.get('generated') or '').split())[:240]!r}")
    return lines


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
    llm = [n for n in names if "llm" in run["pipelines"][n]]
    if llm:
        fig, (ax, side) = plt.subplots(1, 2, figsize=(16, 5.6), dpi=110, gridspec_kw={"width_ratios": [3, 1]})
        _llm_panel(side, {n: run["pipelines"][n]["llm"] for n in llm})
    else:
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
    ax.set_title(f"Bouncebot eval: {', '.join(run['datasets'])}, {run['cases']} cases"
                 + (f" (first {run['limit']} per file)" if run.get("limit") else ""))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(names), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _llm_panel(ax, llm: dict[str, dict]) -> None:
    """The language-model mode's outcomes: kept, and each fallback reason, as answers the model was asked for."""
    for i, (name, m) in enumerate(llm.items()):
        bars = {"kept": round((m.get("llm_used_rate") or 0) * m["llm_asked"])} | m.get("fallbacks", {})
        ys = [j + i * 0.8 / len(llm) for j in range(len(bars))]
        ax.barh(ys, list(bars.values()), 0.8 / len(llm), label=f"{name}: TTFT p50 {m.get('ttft_p50_ms')} ms, "
                f"text p50 {m.get('llm_total_p50_ms')} ms")
        ax.set_yticks(ys, [f"{k} ({v})" for k, v in bars.items()])
    ax.invert_yaxis()
    ax.set_xlabel("answers the model was asked for")
    ax.set_title("language-model mode: kept or fell back")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)


def write_report(run: dict, out: Path, stem: str = "report") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "chart": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(run, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(run), encoding="utf-8")
    chart(run, paths["chart"])
    return paths
