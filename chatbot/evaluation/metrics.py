"""Evaluation metrics: small pure functions over ranked ids, decision counts, threshold choice, calibration."""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

RECALL_AT: tuple[int, ...] = (1, 3, 5, 10)


def first_relevant_rank(ranked: Sequence[str], relevant: Collection[str], k: int | None = None) -> int | None:
    """1-based rank of the first relevant id within the first k (all when k is None), else None."""
    for rank, item in enumerate(ranked[:k] if k else ranked, start=1):
        if item in relevant:
            return rank
    return None


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    rank = first_relevant_rank(ranked, relevant, k)
    return 1.0 / rank if rank else 0.0


def hit_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when a relevant id is within the first k (recall@k for one relevant item)."""
    return 1.0 if first_relevant_rank(ranked, relevant, k) else 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Binary-gain nDCG with one relevant item (equivalent FAQs are alternatives): 1/log2(rank+1)."""
    rank = first_relevant_rank(ranked, relevant, k)
    return 1.0 / math.log2(rank + 1) if rank else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def reliability_bins(p: Sequence[float], right: Sequence[bool], bins: int = 10) -> list[tuple[float, float, float, int]]:
    """Equal-width bins of P: (lower edge, mean P, share right, count) for the non-empty ones."""
    ps, ok = np.asarray(p, dtype=np.float64), np.asarray(right, dtype=np.float64)
    index = np.minimum((ps * bins).astype(int), bins - 1)
    return [(b / bins, float(ps[index == b].mean()), float(ok[index == b].mean()), int((index == b).sum()))
            for b in range(bins) if (index == b).any()]


def expected_calibration_error(p: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """Σ over bins of (share of questions) · |share right − mean P|; nan without any P."""
    if not len(p):
        return float("nan")
    return float(sum(n / len(p) * abs(acc - conf) for _, conf, acc, n in reliability_bins(p, right, bins)))


@dataclass(frozen=True)
class DecisionCounts:
    """Answer-vs-fallback outcomes at one threshold."""

    correct: int  # answered, top-1 right
    wrong: int  # answered, top-1 wrong (answerable) or answered out of scope
    answerable: int
    fallbacks: int
    fallbacks_out_of_scope: int
    out_of_scope: int

    @property
    def precision(self) -> float:
        answered = self.correct + self.wrong
        return self.correct / answered if answered else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.answerable if self.answerable else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fallback_precision(self) -> float:
        return self.fallbacks_out_of_scope / self.fallbacks if self.fallbacks else float("nan")

    @property
    def fallback_recall(self) -> float:
        return self.fallbacks_out_of_scope / self.out_of_scope if self.out_of_scope else float("nan")


def decision_counts(answered: Sequence[bool], top1_correct: Sequence[bool], answerable: Sequence[bool]) -> DecisionCounts:
    """Counts from per-question flags: was an answer given, was top-1 right, was the question in scope."""
    correct = wrong = fallbacks = fallbacks_oos = 0
    for ans, right, in_scope in zip(answered, top1_correct, answerable):
        if ans:
            if in_scope and right:
                correct += 1
            else:
                wrong += 1
        else:
            fallbacks += 1
            fallbacks_oos += not in_scope
    n_answerable = sum(bool(a) for a in answerable)
    return DecisionCounts(correct, wrong, n_answerable, fallbacks, fallbacks_oos, len(answerable) - n_answerable)


def counts_at_threshold(
    scores: Sequence[float], top1_correct: Sequence[bool], answerable: Sequence[bool], threshold: float
) -> DecisionCounts:
    return decision_counts([s >= threshold for s in scores], top1_correct, answerable)


def recommend_threshold(
    scores: Sequence[float], top1_correct: Sequence[bool], answerable: Sequence[bool]
) -> tuple[float, float]:
    """(threshold, answer F1) maximising F1; halfway between the lowest accepted and highest rejected score.

    On ties the highest threshold wins (fewer confident wrong answers for the same F1).
    """
    if not scores:
        return float("nan"), 0.0
    distinct = sorted(set(float(s) for s in scores), reverse=True)
    best_index, best_f1 = 0, -1.0
    for i, candidate in enumerate(distinct):
        f1 = counts_at_threshold(scores, top1_correct, answerable, candidate).f1
        if f1 > best_f1 + 1e-12:
            best_index, best_f1 = i, f1
    accepted = distinct[best_index]
    below = distinct[best_index + 1] if best_index + 1 < len(distinct) else None
    threshold = (accepted + below) / 2 if below is not None else accepted
    return threshold, max(best_f1, 0.0)
