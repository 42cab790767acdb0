"""Matplotlib figures of the analytics (report PNGs and the operator page's plot); headless backend."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from chatbot.operator.analytics import Analytics  # noqa: E402

OUTCOMES = [("answer", "answer", "#4caf50"), ("passage", "passage", "#2196f3"),
            ("clarify", "clarify", "#ff9800"), ("fallback", "fallback", "#f44336")]


def outcomes_figure(data: Analytics) -> Figure:
    """Questions per day, stacked by outcome (English labels: no Korean font is assumed on the server)."""
    days = list(data.per_day)
    figure, axes = plt.subplots(figsize=(8, 3.5))
    bottom = [0] * len(days)
    for key, label, colour in OUTCOMES:
        values = [data.per_day[d].get(key, 0) for d in days]
        axes.bar(days, values, bottom=bottom, label=label, color=colour)
        bottom = [b + v for b, v in zip(bottom, values)]
    axes.set_ylabel("questions")
    axes.set_title("Questions per day by outcome")
    axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", rotation=45, labelsize="small")
    figure.tight_layout()
    return figure


def latency_figure(latencies_ms: list[float]) -> Figure:
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.hist(latencies_ms or [0], bins=40, color="#607d8b")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("questions")
    axes.set_title("Answer latency")
    figure.tight_layout()
    return figure
