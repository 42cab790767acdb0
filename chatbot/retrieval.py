"""Dense (Chroma), lexical (kiwi-BM25) and hybrid retrieval, grouped by FAQ id: the one Retriever API."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from chatbot.encoder import Encoder
from chatbot.lexical import LexicalIndex, load_or_build
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
            hits = self._hybrid(question, where)
        if mode != "lexical" and self.settings.retrieval.doc_offset:
            hits = [with_doc_offset(h, self.settings.retrieval.doc_offset) for h in hits]
        return group_hits(hits, k)

    def _lexical_text(self, question: str) -> str:
        return correct_spacing(question) if self.settings.text.spacing_correction else question

    def _dense(self, question: str, where: dict[str, Any] | None, vector: np.ndarray | None = None) -> list[Hit]:
        vector = self.encoder.encode_questions([question])[0] if vector is None else vector
        return self.store.query(vector, self.settings.retrieval.candidates, where)

    def _hybrid(self, question: str, where: dict[str, Any] | None) -> list[Hit]:
        """(1 − w)·cosine + w·BM25 coverage over the union of both candidate lists."""
        weight = self.settings.retrieval.lexical_weight
        vector = self.encoder.encode_questions([question])[0]
        dense = {h.record_id: h for h in self._dense(question, where, vector)}
        index = self.lexical
        lexical_scores = index.scores(index.query_tokens(self._lexical_text(question)))
        if where:
            lexical_scores = lexical_scores * index.mask(where)
        position = index.position
        top_lexical = [
            index.hit(int(i), float(lexical_scores[i]))
            for i in np.argsort(-lexical_scores)[: self.settings.retrieval.candidates]
            if lexical_scores[i] > 0
        ]
        missing = [h.record_id for h in top_lexical if h.record_id not in dense]
        cosines = {**{i: h.score for i, h in dense.items()}, **self._cosines(missing, vector)}
        candidates = {**{h.record_id: h for h in top_lexical}, **dense}
        fused = []
        for record_id, hit in candidates.items():
            lexical = float(lexical_scores[position[record_id]]) if record_id in position else 0.0
            score = (1.0 - weight) * cosines.get(record_id, 0.0) + weight * min(lexical, 1.0)
            fused.append(replace(hit, score=score))
        return fused

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


def group_hits(hits: list[Hit], k: int) -> list[Hit]:
    """Best-scoring variant per FAQ (source + id; documents: per chunk), sorted, cut to k."""
    best: dict[str, Hit] = {}
    for hit in hits:
        current = best.get(hit.group_key)
        if current is None or hit.score > current.score:
            best[hit.group_key] = hit
    return sorted(best.values(), key=lambda h: h.score, reverse=True)[:k]
