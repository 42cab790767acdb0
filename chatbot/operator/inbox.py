"""The inbox: logged questions the bot did not handle well, not yet dealt with, grouped into clusters.

A question is in the inbox when, since a date, it got the fallback (unless the message asked nothing:
a greeting, a thank-you, emoji only) or a clarify ("did you mean"), or an answer with low confidence
(P below operator.low_p, or without P a score below the threshold plus operator.score_margin), or a
👎 — and the operator has not labelled it yet. Identical texts are encoded once; clusters come from
chatbot.operator.clustering.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, or_, select

from chatbot.message import asks_something
from chatbot.operator.clustering import cluster_vectors
from chatbot.questionlog.schema import feedback, question_labels, questions
from chatbot.settings import OperatorSettings

Encode = Callable[[list[str]], np.ndarray]
EXAMPLES = 5


@dataclass(frozen=True)
class InboxQuestion:
    id: str
    time: datetime
    question: str
    outcome: str
    p: float | None
    score: float | None
    reason: str  # fallback | clarify | low | down


@dataclass
class Cluster:
    """Similar inbox questions; `nearest` is the best FAQ for the most common text (faq_id, question, score)."""

    id: str
    questions: list[InboxQuestion]
    examples: list[str]
    first_seen: datetime
    last_seen: datetime
    nearest: tuple[str, str, float] | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.questions)

    @property
    def question_ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def as_dict(self) -> dict[str, Any]:
        nearest = None if self.nearest is None else dict(zip(("faq_id", "question", "score"), self.nearest))
        return {
            "id": self.id, "size": self.size, "examples": self.examples, "question_ids": self.question_ids,
            "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
            "nearest": nearest, "reasons": self.reasons,
        }


def inbox_questions(engine: Engine, since: datetime, cfg: OperatorSettings, threshold: float) -> list[InboxQuestion]:
    """The unlabelled questions since `since` that need the operator, newest first (at most cfg.max_questions)."""
    downvoted = select(feedback.c.question_id).where(
        feedback.c.kind == "rating", feedback.c.rating == "down", feedback.c.question_id.is_not(None)
    )
    labelled = select(question_labels.c.question_id)
    query = (
        select(questions.c.id, questions.c.time, questions.c.question, questions.c.outcome, questions.c.p, questions.c.top)
        .where(
            questions.c.time >= since,
            questions.c.id.not_in(labelled),
            or_(
                questions.c.outcome.in_(["fallback", "clarify"]),
                and_(questions.c.outcome == "answer", or_(questions.c.p < cfg.low_p, questions.c.p.is_(None))),
                questions.c.id.in_(downvoted),
            ),
        )
        .order_by(questions.c.time.desc(), questions.c.id)
        .limit(cfg.max_questions * 4)  # answered rows without P are filtered below
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
        down = set(conn.execute(downvoted.where(feedback.c.time >= since)).scalars())
    out: list[InboxQuestion] = []
    for row in rows:
        score = float(row.top[0]["score"]) if row.top else None
        reason = _reason(row.id in down, row.outcome, row.p, score, cfg, threshold)
        if reason == "fallback" and not asks_something(row.question):
            continue  # "안녕하세요", "감사합니다", "🙏": answered with a word back, nothing to fix
        if reason:
            out.append(InboxQuestion(row.id, row.time, row.question, row.outcome, row.p, score, reason))
        if len(out) >= cfg.max_questions:
            break
    return out


def _reason(down: bool, outcome: str, p: float | None, score: float | None, cfg: OperatorSettings, threshold: float) -> str:
    if down:
        return "down"
    if outcome in ("fallback", "clarify"):
        return outcome
    if outcome == "answer" and p is not None and p < cfg.low_p:
        return "low"
    if outcome == "answer" and p is None and score is not None and score < threshold + cfg.score_margin:
        return "low"
    return ""


def build_clusters(items: Sequence[InboxQuestion], encode: Encode, distance: float, sample: int) -> list[Cluster]:
    """Clusters of the questions, biggest (then most recent) first; each text is encoded once."""
    if not items:
        return []
    texts = list(dict.fromkeys(q.question for q in items))
    labels = cluster_vectors(encode(texts), distance, sample)
    label_of = dict(zip(texts, labels.tolist()))
    members: dict[int, list[InboxQuestion]] = {}
    for item in items:
        members.setdefault(label_of[item.question], []).append(item)
    clusters = [_cluster(group) for group in members.values()]
    return sorted(clusters, key=lambda c: (-c.size, -c.last_seen.timestamp()))


def _cluster(group: list[InboxQuestion]) -> Cluster:
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for item in group:
        counts[item.question] = counts.get(item.question, 0) + 1
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    examples = sorted(counts, key=lambda t: -counts[t])[:EXAMPLES]
    ids = sorted(q.id for q in group)
    return Cluster(
        id=hashlib.sha1("|".join(ids).encode()).hexdigest()[:12],
        questions=group,
        examples=examples,
        first_seen=min(q.time for q in group),
        last_seen=max(q.time for q in group),
        reasons=reasons,
    )
