"""Groups similar questions: agglomerative clustering on cosine distance, in two stages for large inboxes.

Average-linkage clustering needs the full distance matrix (n² memory, ~n² log n time), fine for a
few thousand questions. Beyond `sample` questions a random sample is clustered, every other question
joins the nearest sample cluster centroid when it is within the distance threshold, and what stays
unassigned goes through the same step again (a fresh sample of the rest) a few times; leftovers are
singletons. 10,000 questions cluster in a couple of seconds this way (bench/inbox.py).
"""
from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering

MAX_ROUNDS = 4


def cluster_vectors(vectors: np.ndarray, distance: float, sample: int = 2000, seed: int = 0) -> np.ndarray:
    """A cluster label (0..m-1) for every row of `vectors` (L2-normalised); labels are numbered by first row."""
    n = len(vectors)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    vectors = _normalised(vectors)
    rng = np.random.default_rng(seed)
    next_label = 0
    for _ in range(MAX_ROUNDS):
        rest = np.flatnonzero(labels < 0)
        if len(rest) == 0:
            break
        chosen = rest if len(rest) <= sample else np.sort(rng.choice(rest, size=sample, replace=False))
        local = _agglomerate(vectors[chosen], distance)
        labels[chosen] = local + next_label
        centroids = _normalised(np.stack([vectors[chosen][local == c].mean(axis=0) for c in range(local.max() + 1)]))
        others = np.setdiff1d(rest, chosen, assume_unique=True)
        if len(others):
            similarity = vectors[others] @ centroids.T
            best = similarity.argmax(axis=1)
            near = 1.0 - similarity[np.arange(len(others)), best] <= distance
            labels[others[near]] = best[near] + next_label
        next_label += int(local.max()) + 1
        if len(chosen) == len(rest):
            break
    left = np.flatnonzero(labels < 0)
    labels[left] = np.arange(next_label, next_label + len(left))
    return _renumbered(labels)


def _agglomerate(vectors: np.ndarray, distance: float) -> np.ndarray:
    if len(vectors) == 1:
        return np.zeros(1, dtype=np.int64)
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    return model.fit_predict(vectors).astype(np.int64)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _renumbered(labels: np.ndarray) -> np.ndarray:
    """Labels in order of first appearance, so the same input always gives the same numbering."""
    _, first = np.unique(labels, return_index=True)
    order = {int(labels[i]): new for new, i in enumerate(sorted(first))}
    return np.array([order[int(label)] for label in labels], dtype=np.int64)
