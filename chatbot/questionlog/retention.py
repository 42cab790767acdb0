"""Retention: rows older than log.retention_days are deleted, so the log does not grow without bound."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete

from chatbot.questionlog.db import write_transaction
from chatbot.questionlog.schema import feedback, questions


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    questions: int
    feedback: int


def purge(engine: Engine, days: int, now: datetime | None = None) -> PurgeResult:
    """Deletes questions and feedback older than `days`; newer feedback on a purged question is unlinked."""
    if days < 0:
        raise ValueError("days must be ≥ 0")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    with write_transaction(engine) as conn:
        n_feedback = conn.execute(delete(feedback).where(feedback.c.time < cutoff)).rowcount
        n_questions = conn.execute(delete(questions).where(questions.c.time < cutoff)).rowcount
    return PurgeResult(cutoff=cutoff, questions=n_questions, feedback=n_feedback)
