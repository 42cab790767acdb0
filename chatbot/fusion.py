"""Hybrid fusion as pure functions over plain numbers and hits (no Chroma, no threads, no caches).

score = (1 − w)·cosine + w·min(BM25 coverage, 1), over the union of the dense and lexical candidate
lists, then the best variant per FAQ. The pruning bound decides which keyword-only candidates could
still reach the top k and are therefore worth scoring; it is exact, never a heuristic.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from chatbot.records import OPERATOR_SOURCE, Hit


def fuse(cosine: np.ndarray | float, lexical: np.ndarray | float, weight: float) -> np.ndarray:
    """Convex mix of the encoder cosine and the (capped) coverage-normalised BM25 score."""
    return (1.0 - weight) * np.asarray(cosine, dtype=np.float64) + weight * np.minimum(
        np.asarray(lexical, dtype=np.float64), 1.0
    )


def cosine_ceiling(nearest: Sequence[tuple[str, float]], candidates: int) -> float:
    """The best cosine a record Chroma did not return can have: its last one when it returned a full list."""
    return nearest[-1][1] if len(nearest) >= candidates else 1.0


def pruning_floor(hits: Sequence[Hit], k: int, doc_offset: float) -> float:
    """The score a new candidate must reach to matter: the current k-th group's, less what a passage may still gain."""
    return kth_score(hits, k) - max(doc_offset, 0.0)


def reachable(lexical: np.ndarray, weight: float, ceiling: float | Sequence[float], floor: float) -> np.ndarray:
    """Mask of keyword-only candidates whose fused score reaches the floor: their best possible one (a cosine
    ceiling) before their vectors are read, their real one (their cosines) after."""
    return fuse(np.asarray(ceiling, dtype=np.float64), lexical, weight) >= floor


def with_doc_offset(hit: Hit, offset: float) -> Hit:
    """e5 rates query↔query pairs (FAQ questions) higher than query↔passage pairs (document chunks);
    the offset puts passages on the FAQ scale so a relevant passage can beat a loosely related FAQ."""
    return hit.rescored(hit.score + offset) if hit.kind == "doc" else hit


def kth_score(hits: Sequence[Hit], k: int) -> float:
    """Score of the k-th best group (−inf when there are fewer than k groups)."""
    top = group_hits(hits, k)
    return top[-1].score if len(top) >= k else float("-inf")


def group_hits(hits: Sequence[Hit], k: int) -> list[Hit]:
    """Best-scoring variant per FAQ (source + id; documents: per chunk), sorted, cut to k.

    An FAQ of the operator source (OPERATOR_SOURCE) shadows the FAQ with the same id in other sources:
    the operator's copy takes the group's best score, the file's copy is dropped."""
    best: dict[str, Hit] = {}
    for hit in hits:
        current = best.get(hit.answer_key)
        if current is None or hit.score > current.score:
            best[hit.answer_key] = hit
    return sorted(_shadowed(best.values()), key=lambda h: h.score, reverse=True)[:k]


def _shadowed(groups: Iterable[Hit]) -> list[Hit]:
    groups = list(groups)
    operator = {h.answer_id: h for h in groups if h.kind == "faq" and h.metadata.get("source") == OPERATOR_SOURCE}
    if not operator:
        return groups
    top: dict[str, float] = {}
    for hit in groups:
        if hit.kind == "faq" and hit.answer_id in operator:
            top[hit.answer_id] = max(top.get(hit.answer_id, hit.score), hit.score)
    kept = [h for h in groups if not (h.kind == "faq" and h.answer_id in operator)]
    return kept + [h.rescored(top[faq_id]) for faq_id, h in operator.items()]
