"""Read side for the inbox and analytics: recent questions, the feedback on one, counts per outcome and day.

Reads see what the background writer has flushed (at most one batch interval behind).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Iterable

from sqlalchemy import Engine, func, select

from chatbot.questionlog.entries import FeedbackRow, QuestionRow, Stats
from chatbot.questionlog.rows import to_feedback, to_question
from chatbot.questionlog.schema import feedback, questions


def questions_since(
    engine: Engine, since: datetime, outcomes: Iterable[str] | None = None, limit: int = 100
) -> list[QuestionRow]:
    """Questions asked at or after `since`, newest first, optionally only some outcomes."""
    query = select(questions).where(questions.c.time >= since)
    if outcomes is not None:
        query = query.where(questions.c.outcome.in_(list(outcomes)))
    query = query.order_by(questions.c.time.desc(), questions.c.id).limit(limit)
    with engine.connect() as conn:
        return [to_question(row) for row in conn.execute(query).mappings()]


def feedback_for(engine: Engine, question_id: str) -> list[FeedbackRow]:
    """Every feedback row linked to one question, oldest first."""
    query = select(feedback).where(feedback.c.question_id == question_id).order_by(feedback.c.time, feedback.c.id)
    with engine.connect() as conn:
        return [to_feedback(row) for row in conn.execute(query).mappings()]


def stats(engine: Engine, since: datetime) -> Stats:
    """Counts since `since`: per outcome, per UTC day and outcome, and 👍/👎 ratings."""
    day = func.date(questions.c.time)  # PostgreSQL sessions run in UTC (db.py), SQLite stores UTC
    per_day_query = (
        select(day.label("day"), questions.c.outcome, func.count().label("n"))
        .where(questions.c.time >= since)
        .group_by(day, questions.c.outcome)
    )
    ratings_query = (
        select(feedback.c.rating, func.count().label("n"))
        .where(feedback.c.time >= since, feedback.c.kind == "rating", feedback.c.rating.is_not(None))
        .group_by(feedback.c.rating)
    )
    per_day: dict[str, dict[str, int]] = defaultdict(dict)
    per_outcome: dict[str, int] = defaultdict(int)
    with engine.connect() as conn:
        for row in conn.execute(per_day_query):
            key = row.day.isoformat() if isinstance(row.day, date) else str(row.day)
            per_day[key][row.outcome] = row.n
            per_outcome[row.outcome] += row.n
        ratings = {row.rating: row.n for row in conn.execute(ratings_query)}
    return Stats(
        total=sum(per_outcome.values()),
        per_outcome=dict(per_outcome),
        per_day=dict(sorted(per_day.items())),
        ratings=ratings,
    )
