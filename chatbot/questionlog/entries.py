"""What callers hand to the log and what the readers hand back: plain dataclasses, no database types."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, Sequence

Channel = Literal["web", "api", "terminal"]
Outcome = Literal["answer", "passage", "clarify", "fallback"]
FeedbackKind = Literal["rating", "suggestion", "clarify"]
Rating = Literal["up", "down"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class QuestionEntry:
    """One question as asked; `question`/`normalised` are raw here and masked by the writer."""

    question: str
    outcome: str
    channel: str = "web"
    normalised: str | None = None
    mode: str | None = None
    top: Sequence[tuple[str, float]] = ()
    p: float | None = None
    latency_ms: float | None = None
    category: str | None = None
    session: str | None = None
    time: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class FeedbackEntry:
    """A reaction to one logged question: a 👍/👎 rating, a clicked suggestion or clarify candidate.

    `target_id` is the FAQ/record id rated or clicked. `question_id` is what QuestionLog.record
    returned; an id the database does not know (dropped, purged, made up) is stored as NULL.
    """

    kind: str
    question_id: str | None = None
    rating: str | None = None
    target_id: str | None = None
    question: str | None = None
    answer_type: str | None = None
    score: float | None = None
    mode: str | None = None
    channel: str = "web"
    session: str | None = None
    time: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class QuestionRow:
    """A stored question (already masked); `time` is timezone-aware UTC."""

    id: str
    time: datetime
    question: str
    normalised: str | None
    mode: str | None
    outcome: str
    top: tuple[tuple[str, float], ...]
    p: float | None
    latency_ms: float | None
    category: str | None
    session: str | None
    channel: str


@dataclass(frozen=True)
class FeedbackRow:
    id: str
    question_id: str | None
    time: datetime
    kind: str
    rating: str | None
    target_id: str | None
    question: str | None
    answer_type: str | None
    score: float | None
    mode: str | None
    channel: str
    session: str | None
    source: str


@dataclass(frozen=True)
class Stats:
    """Question counts since a time: in all, per outcome, and per UTC day (ISO date) and outcome."""

    total: int
    per_outcome: dict[str, int]
    per_day: dict[str, dict[str, int]]
    ratings: dict[str, int]
