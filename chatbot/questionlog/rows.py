"""Entries ⇄ table rows. Masking happens here, on the way in, so no path stores raw text."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from chatbot.questionlog.entries import FeedbackEntry, FeedbackRow, QuestionEntry, QuestionRow

Mask = Callable[[str | None], str | None]


def _short(value: str | None, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def question_row(qid: str, entry: QuestionEntry, mask: Mask) -> dict[str, Any]:
    return {
        "id": qid,
        "time": entry.time,
        "question": mask(entry.question) or "",
        "normalised": mask(entry.normalised),
        "mode": _short(entry.mode, 16),
        "outcome": _short(entry.outcome, 16),
        "top": [{"id": str(rid), "score": float(score)} for rid, score in list(entry.top)[:3]],
        "p": entry.p,
        "latency_ms": entry.latency_ms,
        "category": _short(entry.category, 200),
        "session": _short(entry.session, 64),
        "channel": _short(entry.channel, 16),
    }


def feedback_row(fid: str, entry: FeedbackEntry, mask: Mask, source: str = "live") -> dict[str, Any]:
    return {
        "id": fid,
        "question_id": entry.question_id,
        "time": entry.time,
        "kind": _short(entry.kind, 16),
        "rating": _short(entry.rating, 8),
        "target_id": _short(entry.target_id, 200),
        "question": mask(entry.question),
        "answer_type": _short(entry.answer_type, 16),
        "score": entry.score,
        "mode": _short(entry.mode, 16),
        "channel": _short(entry.channel, 16),
        "session": _short(entry.session, 64),
        "source": source,
    }


def to_question(row: Mapping[str, Any]) -> QuestionRow:
    values = dict(row)
    values["top"] = tuple((item["id"], item["score"]) for item in values.get("top") or ())
    return QuestionRow(**values)


def to_feedback(row: Mapping[str, Any]) -> FeedbackRow:
    return FeedbackRow(**dict(row))
