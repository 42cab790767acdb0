"""Dense (Chroma), lexical (kiwi-BM25) and hybrid retrieval, grouped by FAQ id: the one Retriever API."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from chatbot.encoder import Encoder
from chatbot.lexical import LexicalIndex, load_or_build, top_positions
from chatbot.records import Hit
from chatbot.settings import Settings
from chatbot.store import Store
from chatbot.text import correct_spacing

log = logging.getLogger(__name__)
Mode = Literal["lexical", "dense", "hybrid"]
MODES: tuple[str, ...] = ("lexical", "dense", "hybrid")


class Retriever:
    """Ranks stored records for a question; every entry point goes through search()."""

    def __init__(self, settings: Settings, encoder: Encoder, store: Store, refresh_s: float = 30.0) -> None:
        self.settings = settings
        self.encoder = encoder
        self.store = store
        self.refresh_s = refresh_s
        self._lexical: LexicalIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._side = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lexical")

    # --- lexical cache ----------------------------------------------------------------------------
    @property
    def lexical(self) -> LexicalIndex:
        """Rechecked against Chroma every refresh_s, so replicas sharing one server agree."""
        with self._lock:
            if self._lexical is None or time.monotonic() - self._checked_at > self.refresh_s:
                self._lexical = load_or_build(self.store, self.settings.lexical, self.settings.text.typo_tolerant)
                self._checked_at = time.monotonic()
            return self._lexical

    def refresh(self) -> None:
        """Force a fingerprint check now (after an ingestion in this process)."""
        with self._lock:
            self._checked_at = 0.0

    # --- search -----------------------------------------------------------------------------------
    def search(
        self, question: str, k: int | None = None, mode: Mode | None = None, category: str | None = None
    ) -> list[Hit]:
        """Top-k hits, one per FAQ (best variant wins) or document chunk, best first."""
        k = k or self.settings.retrieval.top_k
        mode = mode or self.settings.retrieval.mode
        where = {"category": category} if category else None
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        if mode == "lexical":
            hits = self.lexical.search(self._lexical_text(question), self.settings.retrieval.candidates, where)
        elif mode == "dense":
            hits = self._dense(question, where)
        else:
            hits = self._hybrid(question, where, k)
        if mode != "lexical" and self.settings.retrieval.doc_offset:
            hits = [with_doc_offset(h, self.settings.retrieval.doc_offset) for h in hits]
        return group_hits(hits, k)

    def _lexical_text(self, question: str) -> str:
        return correct_spacing(question) if self.settings.text.spacing_correction else question

    def _dense(self, question: str, where: dict[str, Any] | None) -> list[Hit]:
        vector = self.encoder.encode_questions([question])[0]
        return self.store.query(vector, self.settings.retrieval.candidates, where)

    def _hybrid(self, question: str, where: dict[str, Any] | None, k: int) -> list[Hit]:
        """(1 − w)·cosine + w·BM25 coverage over the union of both candidate lists."""
        weight, candidates = self.settings.retrieval.lexical_weight, self.settings.retrieval.candidates
        index = self.lexical
        # The kiwi + BM25 side runs in a thread while the encoder works (torch computes outside the GIL).
        lexical_job = self._side.submit(self._lexical_scores, index, question, where)
        vector = self.encoder.encode_questions([question])[0]
        nearest = self.store.nearest(vector, candidates, where)
        dense = self._dense_from_cache(index, nearest)
        lexical_scores = lexical_job.result()
        position = index.position

        def fuse(hit: Hit, cosine: float) -> Hit:
            lexical = float(lexical_scores[position[hit.record_id]]) if hit.record_id in position else 0.0
            return replace(hit, score=(1.0 - weight) * cosine + weight * min(lexical, 1.0))

        fused = {record_id: fuse(hit, hit.score) for record_id, hit in dense.items()}
        # A record Chroma did not return has a cosine ≤ the last one it did, so a keyword-only candidate
        # whose best possible score cannot reach the current k-th group never needs its vector fetched.
        ceiling = nearest[-1][1] if len(nearest) >= candidates else 1.0
        floor = kth_score(list(fused.values()), k) - max(self.settings.retrieval.doc_offset, 0.0)
        worth = [
            index.hit(i, float(lexical_scores[i])) for i in top_positions(lexical_scores, candidates)
            if index.records.ids[i] not in fused
            and (1.0 - weight) * ceiling + weight * min(float(lexical_scores[i]), 1.0) >= floor
        ]
        cosines = self._cosines([h.record_id for h in worth], vector)
        fused.update({h.record_id: fuse(h, cosines[h.record_id]) for h in worth if h.record_id in cosines})
        return list(fused.values())

    def _dense_from_cache(self, index: LexicalIndex, nearest: list[tuple[str, float]]) -> dict[str, Hit]:
        """Chroma's nearest ids with their texts from the derived cache (same content: ids are content
        hashes); records written after the cache was last checked are read from Chroma."""
        position = index.position
        fetched = self.store.hits([i for i, _ in nearest if i not in position])
        out = {}
        for record_id, cosine in nearest:
            if record_id in position:
                out[record_id] = index.hit(position[record_id], cosine)
            elif record_id in fetched:
                out[record_id] = replace(fetched[record_id], score=cosine)
        return out

    def _lexical_scores(self, index: LexicalIndex, question: str, where: dict[str, Any] | None) -> np.ndarray:
        scores = index.scores(index.query_tokens(self._lexical_text(question)))
        return scores * index.mask(where) if where else scores

    def _cosines(self, ids: list[str], vector: np.ndarray) -> dict[str, float]:
        if not ids:
            return {}
        got = self.store.collection.get(ids=ids, include=["embeddings"])
        embeddings = np.asarray(got["embeddings"], dtype=np.float32)
        return dict(zip(got["ids"], (embeddings @ vector).tolist()))


def with_doc_offset(hit: Hit, offset: float) -> Hit:
    """e5 rates query↔query pairs (FAQ questions) higher than query↔passage pairs (document chunks);
    the offset puts passages on the FAQ scale so a relevant passage can beat a loosely related FAQ."""
    return replace(hit, score=hit.score + offset) if hit.kind == "doc" else hit


def kth_score(hits: list[Hit], k: int) -> float:
    """Score of the k-th best group (−inf when there are fewer than k groups)."""
    top = group_hits(hits, k)
    return top[-1].score if len(top) >= k else float("-inf")


def group_hits(hits: list[Hit], k: int) -> list[Hit]:
    """Best-scoring variant per FAQ (source + id; documents: per chunk), sorted, cut to k."""
    best: dict[str, Hit] = {}
    for hit in hits:
        current = best.get(hit.group_key)
        if current is None or hit.score > current.score:
            best[hit.group_key] = hit
    return sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]
