"""The evaluation's output: the table, the failures CSV (formula-safe) and the score / reliability plots."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.evaluation.metrics import reliability_bins
from chatbot.evaluation.run import ModeReport
from chatbot.spreadsheet_safety import safe_csv_writer


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_table(reports: Sequence[ModeReport], k: int = 10) -> str:
    header = ["mode", "top-1", f"MRR@{k}", "R@1", "R@3", "R@5", "R@10", f"nDCG@{k}", "fallback P", "fallback R",
              "answer F1", "answer P", "coverage", "clarify", "OOS answered", "ECE of P", "threshold", "recommended (F1)",
              "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in reports:
        m = r.metrics
        cells = [r.mode, _fmt(m["top1"]), _fmt(m[f"mrr@{k}"]), _fmt(m["r@1"]), _fmt(m["r@3"]), _fmt(m["r@5"]),
                 _fmt(m["r@10"]), _fmt(m[f"ndcg@{k}"]), _fmt(m["fallback_precision"]), _fmt(m["fallback_recall"]),
                 _fmt(m["f1"]), _fmt(m["answer_precision"]), _fmt(m["coverage"]), _fmt(m["clarify_rate"]),
                 _fmt(m["oos_answered"]), _fmt(m["ece"]), _fmt(r.threshold), f"{_fmt(r.recommended)} ({_fmt(r.recommended_f1)})",
                 _fmt(m["p50_ms"], 1), _fmt(m["p95_ms"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_failures(reports: Sequence[ModeReport], path: Path) -> int:
    """Questions whose decision at the configured threshold was wrong, one row per mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = safe_csv_writer(handle)  # questions and FAQ ids come from uploads: no formulas in Excel
        writer.writerow(["mode", "question", "expected", "got", "outcome", "p", "score", "top1", "top1_correct"])
        for report in reports:
            for o in report.outcomes:
                if o.right:
                    continue
                got = o.answer_id if o.answered else ("|".join(o.offered) if o.answer_type == "clarify" else "fallback")
                writer.writerow([report.mode, o.case.question, o.case.expected_label or "fallback", got, o.answer_type,
                                 "" if o.p is None else f"{o.p:.4f}", f"{o.top_score:.4f}",
                                 o.ranked[0] if o.ranked else "", int(o.top1_correct)])
                rows += 1
    return rows


def plot_scores(reports: Sequence[ModeReport], path: Path) -> None:
    """Histograms of best-hit scores (right / wrong / out of scope) per mode, with the thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    calibrated = any(o.p is not None for r in reports for o in r.outcomes)
    fig, axes = plt.subplots(len(reports), 2 if calibrated else 1, figsize=(13 if calibrated else 8, 2.6 * len(reports) + 0.6),
                             squeeze=False)
    for row, report in enumerate(reports):
        ax = axes[row, 0]
        if calibrated:
            plot_reliability(axes[row, 1], report)
        groups = {
            "correct top-1": [o.top_score for o in report.outcomes if o.case.answerable and o.top1_correct],
            "wrong top-1": [o.top_score for o in report.outcomes if o.case.answerable and not o.top1_correct],
            "out of scope": [o.top_score for o in report.outcomes if not o.case.answerable],
        }
        values = [v for vs in groups.values() for v in vs]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 31)
        for (label, data), colour in zip(groups.items(), ("tab:green", "tab:red", "tab:gray")):
            if data:
                ax.hist(data, bins=bins, alpha=0.55, color=colour, label=f"{label} ({len(data)})")
        if not math.isnan(report.recommended):
            ax.axvline(report.recommended, color="black", linewidth=2,
                       label=f"recommended {report.recommended:.3f} (F1 {report.recommended_f1:.2f})")
        ax.axvline(report.threshold, color="tab:blue", linestyle="--", label=f"configured {report.threshold:.3f}")
        ax.set_title(f"{report.mode}: best-hit score", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_ylabel("questions")
    axes[-1, 0].set_xlabel("score of the best hit (answer when ≥ threshold)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(ax: Any, report: ModeReport) -> None:
    """Reliability diagram of the decision model's P (right = in scope and top-1 right), with its ECE."""
    with_p = [o for o in report.outcomes if o.p is not None]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    if not with_p:
        ax.set_title(f"{report.mode}: no decision model P (threshold decision)", fontsize=10)
        return
    bins = reliability_bins([o.p for o in with_p], [o.case.answerable and o.top1_correct for o in with_p])
    ax.plot([b[1] for b in bins], [b[2] for b in bins], marker="o", color="tab:purple")
    for _, conf, acc, n in bins:
        ax.annotate(str(n), (conf, acc), fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("mean P of the bin"), ax.set_ylabel("share right")
    ax.set_title(f"{report.mode}: reliability of P (ECE {report.metrics.get('ece', float('nan')):.3f})", fontsize=10)
