"""Numbers for the report and the operator page: questions per day, outcome rates, 👍/👎, top FAQs, latency.

Built on the question log's own stats (chatbot.questionlog.reader) plus two reads of its columns:
the top FAQ of answered questions and the latency of every question in the period.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from chatbot.questionlog.reader import stats
from chatbot.questionlog.schema import questions

TOP_FAQS = 10


@dataclass(frozen=True)
class Analytics:
    since: datetime
    total: int
    per_day: dict[str, dict[str, int]]
    rates: dict[str, float]  # outcome → share of all questions
    ratings: dict[str, int]  # up / down
    top_faqs: list[tuple[str, int]]  # most-answered FAQ ids
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def up_share(self) -> float | None:
        rated = self.ratings.get("up", 0) + self.ratings.get("down", 0)
        return self.ratings.get("up", 0) / rated if rated else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        data["top_faqs"] = [{"faq_id": f, "count": n} for f, n in self.top_faqs]
        data["up_share"] = self.up_share
        return data


def compute_analytics(engine: Engine, since: datetime) -> Analytics:
    base = stats(engine, since)
    answered: Counter[str] = Counter()
    latencies: list[float] = []
    query = select(questions.c.outcome, questions.c.top, questions.c.latency_ms).where(questions.c.time >= since)
    with engine.connect() as conn:
        for outcome, top, latency in conn.execute(query):
            if outcome == "answer" and top:
                answered[str(top[0]["id"])] += 1
            if latency is not None:
                latencies.append(float(latency))
    p50, p95 = (np.percentile(latencies, [50, 95]).tolist() if latencies else (None, None))
    return Analytics(
        since=since,
        total=base.total,
        per_day=base.per_day,
        rates={k: v / base.total for k, v in sorted(base.per_outcome.items())} if base.total else {},
        ratings=base.ratings,
        top_faqs=answered.most_common(TOP_FAQS),
        latency_p50_ms=None if p50 is None else round(p50, 1),
        latency_p95_ms=None if p95 is None else round(p95, 1),
    )


def summary_markdown(data: Analytics) -> str:
    """A few Markdown lines (Korean labels) shared by the report and the operator page."""
    rate = lambda name: f"{data.rates.get(name, 0.0):.1%}"  # noqa: E731
    up = "—" if data.up_share is None else f"{data.up_share:.0%} (👍 {data.ratings.get('up', 0)} · 👎 {data.ratings.get('down', 0)})"
    latency = "—" if data.latency_p50_ms is None else f"p50 {data.latency_p50_ms:.0f} ms · p95 {data.latency_p95_ms:.0f} ms"
    return (
        f"- 질문 수: **{data.total:,}** ({data.since:%Y-%m-%d} 이후)\n"
        f"- 답변 {rate('answer')} · 문서 인용 {rate('passage')} · 되묻기 {rate('clarify')} · 답 없음 {rate('fallback')}\n"
        f"- 👍 비율: {up}\n"
        f"- 응답 시간: {latency}"
    )
