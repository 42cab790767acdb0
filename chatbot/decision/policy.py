"""Answer, clarify or fall back, from the decision model's P of the top candidates.

answer    P(top) ≥ the answer level, and no second candidate is nearly as likely;
clarify   P(top) in the band [clarify_min_p, answer level), or two candidates too close to tell:
          "혹시 이 질문을 찾으셨나요?" with the top candidates;
fallback  below the band.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Outcome = Literal["answer", "clarify", "fallback"]


def choose(ps: Sequence[float], answer_p: float, clarify_min_p: float, close_gap: float) -> Outcome:
    """ps: P of the ranked candidates, best-ranked first (the ranking is by retrieval score, not P)."""
    if not ps:
        return "fallback"
    top = ps[0]
    rival = max(ps[1:], default=0.0)
    if top >= answer_p and not (rival >= clarify_min_p and top - rival < close_gap):
        return "answer"
    if max(top, rival) >= clarify_min_p:
        return "clarify"
    return "fallback"
