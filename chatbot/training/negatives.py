"""Hard negatives mined with the current model, never from the anchor's own paraphrase group.

sentence_transformers.util.mine_hard_negatives only knows (anchor, positive) rows, so a paraphrase
from another row of the same FAQ could be picked as a "negative". Here the candidates come from the
same pool the positives come from (questions for question pairs, answers for answer pairs) and
every candidate of the anchor's component is excluded; a candidate scoring above the positive is
skipped too (most likely an unlabelled paraphrase).
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

from chatbot.training.pairs import Pair


def mine(
    pairs: Sequence[Pair],
    encode: Callable[[list[str]], np.ndarray],
    component_of: Callable[[str], str],
    skip_top: int = 0,
    pool: int = 10,
    margin: float = 0.0,
    seed: int = 42,
    chunk: int = 1024,
) -> list[str | None]:
    """One negative per pair, sampled from the top `pool` qualifying candidates (a random other-group text when
    none qualifies; None only when the pool has no other group at all)."""
    rng = random.Random(seed)
    out: list[str | None] = [None] * len(pairs)
    by_kind: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_kind.setdefault(pair.kind, []).append(i)
    for kind, rows in by_kind.items():
        anchors = sorted({pairs[i].anchor for i in rows})
        corpus = sorted({pairs[i].positive for i in rows} | ({pairs[i].anchor for i in rows} if kind != "answer" else set()))
        texts = sorted(set(anchors) | set(corpus))
        position = {t: j for j, t in enumerate(texts)}
        vectors = encode(texts)
        corpus_idx = np.array([position[t] for t in corpus])
        corpus_vectors = vectors[corpus_idx]
        corpus_comp = np.array([component_of(t) for t in corpus], dtype=object)
        for start in range(0, len(rows), chunk):
            block = rows[start : start + chunk]
            a_vec = vectors[[position[pairs[i].anchor] for i in block]]
            p_vec = vectors[[position[pairs[i].positive] for i in block]]
            sims = a_vec @ corpus_vectors.T
            positive_sims = np.sum(a_vec * p_vec, axis=1)
            wanted = min(skip_top + pool + 64, sims.shape[1])
            top = np.argpartition(-sims, wanted - 1, axis=1)[:, :wanted] if wanted < sims.shape[1] else np.tile(
                np.arange(sims.shape[1]), (len(block), 1)
            )
            for row, i in enumerate(block):
                own = component_of(pairs[i].anchor)
                order = top[row][np.argsort(-sims[row, top[row]], kind="stable")]
                ok = [j for j in order if corpus_comp[j] != own and sims[row, j] < positive_sims[row] - margin]
                choices = ok[skip_top : skip_top + pool]
                if choices:
                    out[i] = corpus[int(rng.choice(choices))]
                    continue
                for _ in range(20):  # nothing close enough: any text of another group still teaches something
                    j = rng.randrange(len(corpus))
                    if corpus_comp[j] != own:
                        out[i] = corpus[j]
                        break
    return out
