"""Small metrics for adaptation: grouped question retrieval (top-1, MRR@10) and STS Spearman, plus evaluators.

Grouped retrieval is the product's task in miniature: one question per group is asked, every other
question is an FAQ variant, hits are grouped by group (best variant wins), as Retriever.search does.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from chatbot.evaluation.metrics import hit_at, reciprocal_rank
from chatbot.fusion import group_hits
from chatbot.records import Hit
from chatbot.training.pairs import pick_queries

EncodeFn = Callable[[list[str]], np.ndarray]


def encode_fn(model, prepare: Callable[[str], str], batch_size: int = 64) -> EncodeFn:
    """Texts → unit vectors with the product's prefix/normalisation applied by `prepare`."""

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            [prepare(t) for t in texts], batch_size=batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return encode


def rank_metrics(ranked_groups: Sequence[Sequence[str]], gold: Sequence[str], k: int = 10) -> dict[str, float]:
    """top-1 and MRR@k from per-query ranked group lists (the evaluation's own metric functions)."""
    n = max(len(gold), 1)
    top1 = sum(hit_at(ranked, {want}, 1) for ranked, want in zip(ranked_groups, gold))
    mrr = sum(reciprocal_rank(ranked, {want}, k) for ranked, want in zip(ranked_groups, gold))
    return {"top1": top1 / n, f"mrr@{k}": mrr / n, "queries": float(len(gold))}


def rank_by_group(scores: np.ndarray, groups: Sequence[str], k: int = 10) -> list[str]:
    """Best-scoring variant per group, best first, cut to k groups: the product's ``group_hits``.

    Rows go in best first (equal scores keep row order), and only a prefix of them: once a prefix holds k
    groups, no later row can change the top k, so long corpora cost a few dozen hits per query, not one per row.
    """
    order = np.argsort(-scores, kind="stable")
    size = 4 * k
    while True:
        hits = [Hit(groups[int(i)], "", "faq", float(scores[i]), {}) for i in order[:size]]  # grouped by record_id
        top = group_hits(hits, k)
        if len(top) >= k or size >= len(order):
            return [hit.record_id for hit in top]
        size *= 2


def grouped_retrieval(
    encode: EncodeFn, texts: Sequence[str], groups: Sequence[str], k: int = 10
) -> dict[str, float]:
    """One query per group with ≥ 2 questions against all other questions (singletons are distractors)."""
    queries = pick_queries(groups, texts)
    if not queries:
        return {"top1": 0.0, f"mrr@{k}": 0.0, "queries": 0.0}
    vectors = encode(list(texts))
    corpus = np.ones(len(texts), dtype=bool)
    corpus[queries] = False
    corpus_idx = np.flatnonzero(corpus)
    corpus_groups = [groups[i] for i in corpus_idx]
    sims = vectors[queries] @ vectors[corpus_idx].T
    ranked = [rank_by_group(row, corpus_groups, k) for row in sims]
    return rank_metrics(ranked, [groups[i] for i in queries], k)


def sts_spearman(encode: EncodeFn, first: Sequence[str], second: Sequence[str], scores: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    a, b = encode(list(first)), encode(list(second))
    cosines = np.sum(a * b, axis=1)
    return float(spearmanr(cosines, np.asarray(scores, dtype=np.float64)).statistic)


class GroupedRetrievalEvaluator(BaseEvaluator):
    """Trainer evaluator: top-1 and MRR@10 on held-out groups; MRR@10 picks the best checkpoint."""

    def __init__(self, texts: Sequence[str], groups: Sequence[str], prepare: Callable[[str], str], name: str = "grouped",
                 batch_size: int = 64) -> None:
        super().__init__()
        self.texts, self.groups, self.prepare = list(texts), list(groups), prepare
        self.name, self.batch_size = name, batch_size
        self.primary_metric = "mrr@10"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        metrics = grouped_retrieval(encode_fn(model, self.prepare, self.batch_size), self.texts, self.groups)
        metrics.pop("queries", None)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


class StsEvaluator(BaseEvaluator):
    """Trainer evaluator: Spearman of cosine against gold scores (e.g. KorSTS dev), same prefix as questions."""

    def __init__(self, first: Sequence[str], second: Sequence[str], scores: Sequence[float],
                 prepare: Callable[[str], str], name: str = "sts", batch_size: int = 64) -> None:
        super().__init__()
        self.first, self.second, self.scores = list(first), list(second), list(scores)
        self.prepare, self.name, self.batch_size = prepare, name, batch_size
        self.primary_metric = "spearman"

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        value = sts_spearman(encode_fn(model, self.prepare, self.batch_size), self.first, self.second, self.scores)
        metrics = self.prefix_name_to_metrics({"spearman": value}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
