"""Turns what the Answerer returned into a QuestionEntry, so every channel logs the same fields."""
from __future__ import annotations

from typing import Any

from chatbot.questionlog.entries import QuestionEntry

OUTCOMES = {"faq": "answer", "doc": "passage", "clarify": "clarify", "fallback": "fallback"}


def entry_from_answer(
    question: str,
    answer: Any,
    *,
    channel: str,
    normalised: str | None = None,
    mode: str | None = None,
    latency_ms: float | None = None,
    category: str | None = None,
    session: str | None = None,
) -> QuestionEntry:
    """`answer` is a chatbot.records.Answer; top holds the three best distinct FAQ/passage ids with scores."""
    top: list[tuple[str, float]] = []
    for hit in getattr(answer, "hits", ()):
        if hit.answer_id not in {rid for rid, _ in top}:
            top.append((hit.answer_id, float(hit.score)))
        if len(top) == 3:
            break
    return QuestionEntry(
        question=question,
        outcome=OUTCOMES.get(answer.type, str(answer.type)),
        channel=channel,
        normalised=normalised,
        mode=mode,
        top=top,
        p=getattr(answer, "p", None),
        latency_ms=latency_ms,
        category=category,
        session=session,
    )
