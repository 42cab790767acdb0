"""Dense (Chroma), lexical (kiwi-BM25) and hybrid retrieval, grouped by FAQ id: the one Retriever API."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

import numpy as np

from chatbot import fusion
from chatbot.batching import MicroBatcher
from chatbot.encoder import Encoder
from chatbot.fusion import group_hits, kth_score, with_doc_offset
from chatbot.lexical import LexicalIndex, load_or_build, top_positions
from chatbot.modes import MODES, Mode
from chatbot.records import Hit
from chatbot.settings import Settings
from chatbot.store import Store
from chatbot.text import correct_spacing, is_foreign, is_unspaced

__all__ = ["MODES", "Candidate", "Candidates", "Mode", "Retriever", "group_hits", "kth_score", "with_doc_offset"]
log = logging.getLogger(__name__)
VECTOR_CACHE_SIZE = 50_000  # ≈ 75 MB of e5-small vectors
NEAREST_WAIT_MS = 0.5  # the questions of one encoder batch reach Chroma within a fraction of a millisecond


@dataclass(frozen=True)
class Candidate:
    """One ranked record with its score parts: hit.score is the fused score (doc offset applied)."""

    hit: Hit
    cosine: float  # encoder cosine with the question
    lexical: float  # coverage-normalised BM25, capped at 1 (0 outside the lexical candidates' reach)

    @property
    def fused(self) -> float:
        return self.hit.score


@dataclass(frozen=True)
class Candidates:
    """What hybrid retrieval ranked for one question: its content morphemes (the lexical query) and the
    ungrouped candidates with their parts, best first. grouped() gives what search() returns."""

    question: str
    tokens: tuple[str, ...]
    hits: tuple[Candidate, ...]

    def grouped(self, k: int = 10, exclude: Collection[str] = ()) -> list[Candidate]:
        """Best candidate per FAQ (documents: per chunk), best first, after dropping the excluded record
        ids (leave-one-out without re-indexing)."""
        by_id = {c.hit.record_id: c for c in self.hits if c.hit.record_id not in exclude}
        return [Candidate(h, by_id[h.record_id].cosine, by_id[h.record_id].lexical)
                for h in group_hits([c.hit for c in by_id.values()], k)]


class SearchBackend(Protocol):
    """What the Answerer needs of a ranker: the Retriever, or the static-vector baseline of the evaluation."""

    @property
    def default_mode(self) -> str: ...

    @property
    def top_k(self) -> int: ...

    def search(self, question: str, k: int | None = None, mode: Any = None, category: str | None = None) -> list[Hit]: ...


class Retriever:
    """Ranks stored records for a question; every entry point goes through search()."""

    @property
    def default_mode(self) -> str:
        return self.settings.retrieval.mode

    @property
    def top_k(self) -> int:
        return self.settings.retrieval.top_k

    def __init__(self, settings: Settings, encoder: Encoder, store: Store, refresh_s: float = 30.0) -> None:
        self.settings = settings
        self.encoder = encoder
        self.store = store
        self.refresh_s = refresh_s
        self._lexical: LexicalIndex | None = None
        self._checked_at = 0.0
        self._stale = False
        self._rebuilt_at = float("-inf")
        self._lock = threading.Lock()
        self._vectors: tuple[str, dict[str, np.ndarray]] = ("", {})  # (lexical cache fingerprint, vectors)
        self._unreadable: tuple[LexicalIndex | None, set[str]] = (None, set())  # ids this lexical cache named in vain
        self._nearest_batcher: tuple[int, MicroBatcher] | None = None
        self._batcher_lock = threading.Lock()
        self._side = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lexical")

    # --- lexical cache ----------------------------------------------------------------------------
    @property
    def lexical(self) -> LexicalIndex:
        """Rechecked against this process's store every refresh_s, so replicas sharing one server agree;
        rebuilt from the store when a question found ids in it that the store cannot read."""
        with self._lock:
            stale = self._stale
            if stale or self._lexical is None or time.monotonic() - self._checked_at > self.refresh_s:
                self._lexical = load_or_build(
                    self.store, self.settings.lexical, self.settings.text.typo_tolerant, current=self._lexical,
                    rebuild=stale,
                )
                self._checked_at = time.monotonic()
                if stale:
                    self._stale, self._rebuilt_at = False, self._checked_at
            return self._lexical

    def refresh(self) -> None:
        """Force a fingerprint check now (after an ingestion in this process)."""
        with self._lock:
            self._checked_at = 0.0

    def mark_stale(self) -> None:
        """The cache named ids the store cannot read (another process wrote the embedded folder, or a
        cache from elsewhere): rebuild it from the store at the next question. At most once per
        refresh_s, so a store that stays inconsistent does not cost a rebuild on every question."""
        with self._lock:
            if time.monotonic() - self._rebuilt_at >= self.refresh_s:
                self._stale = True

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
        if mode == "hybrid":
            return [c.hit for c in self.candidates(question, k, where).grouped(k)]
        if mode == "lexical":
            hits = self.lexical.search(self.lexical_text(question), self.settings.retrieval.candidates, where)
        else:
            hits = self._dense(question, where)
        offset = self.doc_offset(question)
        if mode != "lexical" and offset:
            hits = [with_doc_offset(h, offset) for h in hits]
        return group_hits(hits, k)

    def doc_offset(self, question: str) -> float:
        """retrieval.doc_offset for this question; none for a question in another language ("How much is
        shipping?"). The offset lifts Korean passages to the scale of Korean question-to-question cosines; a
        question in another language meets both across languages, where e5 leaves no such gap, and the offset put
        long passages above the right FAQ (the English check questions in data/checks/)."""
        return 0.0 if is_foreign(question) else self.settings.retrieval.doc_offset

    def candidates(self, question: str, k: int | None = None, where: dict[str, Any] | None = None,
                   vector: np.ndarray | None = None) -> Candidates:
        """Hybrid candidates, ungrouped, with each one's cosine and lexical part (doc offset applied to
        the fused score): what search() groups, and what the decision model reads. k is the number of
        groups the keyword-only candidates are pruned against (search()'s k). vector: the question's,
        when the caller encoded it already (in a batch with others)."""
        k = k or self.settings.retrieval.top_k
        offset = self.doc_offset(question)
        tokens, found = self._hybrid(question, where, k, offset, vector)
        if offset:
            found = [c if (hit := with_doc_offset(c.hit, offset)) is c.hit else Candidate(hit, c.cosine, c.lexical)
                     for c in found]
        found.sort(key=lambda c: c.hit.score, reverse=True)
        return Candidates(question, tuple(tokens), tuple(found))

    def lexical_text(self, question: str) -> str:
        """The question as the keyword side reads it: typos repaired, and respaced by kiwi only when it was
        typed without spaces (text.spacing_correction). Kiwi tokenises a spaced question the same with or
        without respacing for 99.6 % of 6,399 questions (sample, checks, public sets); for the rest
        respacing split store words ("반품비" → 반품 + 비), and the call held the GIL on every question."""
        return self._read(question, self.settings.text.spacing_correction)

    def repaired(self, question: str) -> str:
        """The question with typos in the store's own words repaired (text.typo_repair; "배숑 기간" →
        "배송 기간", see chatbot/spelling.py), as both sides read it."""
        return self.lexical.speller.repair(question) if self.settings.text.typo_repair else question

    def dense_text(self, question: str) -> str:
        """The question as the encoder reads it: typos in store words repaired, and respaced by kiwi when it
        was typed without spaces (text.respace_unspaced; "배송비얼마예요" → "배송비 얼마예요"). Well-spaced
        questions go in as typed: respacing every question cost dense top-1 on the public chatbot split."""
        return self._read(question, self.settings.text.respace_unspaced)

    def _read(self, question: str, respace: bool) -> str:
        """The question repaired, and respaced when asked to and typed without spaces: both sides' rule."""
        question = self.repaired(question)
        return correct_spacing(question) if respace and is_unspaced(question) else question

    def question_vectors(self, questions: list[str]) -> np.ndarray:
        """Vectors of several questions in one batched call (one question: the encoder's cache or micro-batch),
        read as dense_text reads them."""
        return self.encoder.encode_questions([self.dense_text(q) for q in questions])

    def _dense(self, question: str, where: dict[str, Any] | None) -> list[Hit]:
        vector = self.question_vectors([question])[0]
        return self.store.query(vector, self.settings.retrieval.candidates, where)

    def _hybrid(self, question: str, where: dict[str, Any] | None, k: int, offset: float,
                vector: np.ndarray | None = None) -> tuple[list[str], list[Candidate]]:
        """(1 − w)·cosine + w·BM25 coverage over the union of both candidate lists (see chatbot.fusion);
        the lexical query tokens and the candidates with their parts (no doc offset yet: the caller adds
        ``offset``, the question's doc_offset, which the pruning floor allows for)."""
        weight, candidates = self.settings.retrieval.lexical_weight, self.settings.retrieval.candidates
        index = self.lexical
        # Typo repair first, on this thread: both sides read the text it gives, and the keyword side then finds
        # the question's Kiwi analysis made (started together, both threads analysed it now and then).
        self.repaired(question)
        # The kiwi + BM25 side runs in a thread while the encoder works (it computes outside the GIL).
        lexical_job = self._side.submit(self._lexical_side, index, question, where, candidates)
        if vector is None:
            vector = self.question_vectors([question])[0]
        nearest = self._nearest(vector, candidates) if where is None else self.store.nearest(vector, candidates, where)
        rows, dense = self.dense_rows(index, nearest)
        tokens, scores, lexical_top = lexical_job.result()
        cosines = [cosine for _, cosine in dense]
        lexical = [float(scores[row]) if row >= 0 else 0.0 for row in rows]  # 0: a record the cache lacks yet
        fused_scores = fusion.fuse(cosines, lexical, weight).tolist()
        fused = self.scored_hits(index, rows, dense, fused_scores)
        out = [Candidate(h, c, min(x, 1.0)) for h, c, x in zip(fused, cosines, lexical)]
        # A keyword-only candidate is worth scoring only if its best possible score reaches the k-th group.
        seen = set(rows)
        extra = [i for i in lexical_top if i not in seen]
        ceiling = fusion.cosine_ceiling(nearest, candidates)
        floor = fusion.pruning_floor(fused, k, offset)
        extra = [i for i, ok in zip(extra, fusion.reachable(scores[extra], weight, ceiling, floor)) if ok]
        ids = dict(zip(extra, index.records.ids.take(extra)))
        extra_cosines = self.cosines(list(ids.values()), vector)
        found = [i for i in extra if ids[i] in extra_cosines]
        # with its real cosine, a candidate below the floor cannot reach the k-th group either: it is dropped
        # before its record is decoded (at 100k records most of the ~50 that pass the bound are)
        cosines_found = [extra_cosines[ids[i]] for i in found]
        kept = [(i, c) for i, c, ok in zip(found, cosines_found, fusion.reachable(scores[found], weight, cosines_found, floor))
                if ok]
        more = fusion.fuse([c for _, c in kept], scores[[i for i, _ in kept]], weight).tolist()
        out += [Candidate(index.hit(i, f), c, min(float(scores[i]), 1.0)) for (i, c), f in zip(kept, more)]
        return tokens, out

    @property
    def nearest_batcher(self) -> MicroBatcher | None:
        """The running Chroma-query micro-batcher (``calls``/``items`` show how much batching happened), if any."""
        return self._nearest_batcher[1] if self._nearest_batcher else None

    def _nearest(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Store.nearest, with the vectors of concurrent questions sent to Chroma in one call (the
        encoder's micro-batch hands them out together)."""
        if self.settings.encoder.micro_batch_max <= 1:
            return self.store.nearest(vector, k)
        with self._batcher_lock:
            if self._nearest_batcher is None or self._nearest_batcher[0] != k:
                self._nearest_batcher = (k, MicroBatcher(
                    lambda vectors: self.store.nearest_many(vectors, k), self.settings.encoder.micro_batch_max,
                    NEAREST_WAIT_MS, name="chroma-batcher"))
            batcher = self._nearest_batcher[1]
        return batcher(vector)

    # --- the steps of a hybrid question (public so bench/speed.py can time them) -------------------
    def dense_rows(self, index: LexicalIndex, nearest: list[tuple[str, float]]) -> tuple[list[int], list[tuple[Hit | None, float]]]:
        """Chroma's nearest records as cache positions (−1: written after the cache was last checked) with their
        cosines; the records the cache lacks are read from Chroma (same content: ids are content hashes) and
        come as hits, the rest as None, made into hits once their fused score is known. Ids the store no longer
        has are left out."""
        rows = index.position.lookup([i for i, _ in nearest])
        fetched = self.store.hits([i for (i, _), row in zip(nearest, rows) if row < 0])  # none: no Chroma call
        kept = [(row, (None if row >= 0 else fetched[i], cosine)) for (i, cosine), row in zip(nearest, rows)
                if row >= 0 or i in fetched]
        return [row for row, _ in kept], [pair for _, pair in kept]

    def dense_hits(self, index: LexicalIndex, nearest: list[tuple[str, float]]) -> dict[str, Hit]:
        """Chroma's nearest records as hits scored by their cosines, by id (dense_rows made into hits)."""
        rows, dense = self.dense_rows(index, nearest)
        hits = self.scored_hits(index, rows, dense, [cosine for _, cosine in dense])
        return {h.record_id: h for h in hits}

    @staticmethod
    def scored_hits(index: LexicalIndex, rows: list[int], dense: list[tuple[Hit | None, float]], scores: list[float]
                    ) -> list[Hit]:
        """dense_rows' records as hits with these scores: from the cache, or the hit read from Chroma."""
        return [index.hit(row, score) if row >= 0 else hit.rescored(score)  # type: ignore[union-attr]
                for row, (hit, _), score in zip(rows, dense, scores)]

    def lexical_scores(self, index: LexicalIndex, question: str, where: dict[str, Any] | None) -> np.ndarray:
        """Coverage-normalised BM25 of every cached record (0 outside the category filter)."""
        return self._query_scores(index, question, where)[1]

    def _lexical_side(self, index: LexicalIndex, question: str, where: dict[str, Any] | None, n: int
                      ) -> tuple[list[str], np.ndarray, list[int]]:
        """Query tokens, BM25 scores and the n best positions; the vectors of those n records are read
        into the cache now, while the encoder works, so the keyword-only candidates that survive
        pruning need no store call after it (one Chroma get costs ~0.6 ms + 0.025 ms per id at 100k)."""
        tokens, scores = self._query_scores(index, question, where)
        top = top_positions(scores, n)
        self._cached_vectors(index.records.ids.take(top))
        return tokens, scores, top

    def _query_scores(self, index: LexicalIndex, question: str, where: dict[str, Any] | None) -> tuple[list[str], np.ndarray]:
        tokens = index.query_tokens(self.lexical_text(question))
        scores = index.scores(tokens)
        return tokens, scores * index.mask(where) if where else scores

    def cosines(self, ids: list[str], vector: np.ndarray) -> dict[str, float]:
        """Cosines of stored records with the question vector; ids the store cannot read are skipped
        (logged) and the lexical cache that named them is marked stale."""
        cache = self._cached_vectors(ids)
        vectors = {i: cache[i] for i in ids if i in cache}
        if not vectors:
            return {}
        matrix = np.stack(list(vectors.values()))
        return dict(zip(vectors, (matrix @ vector).tolist()))

    def _cached_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The vector cache, after reading the ids it lacks from the store (none missing: no store call).
        An id the store could not read is not asked for again until the lexical cache changes, so a
        stale cache costs one read and one warning, not one per step of every question."""
        cache = self._vector_cache()
        if self._unreadable[0] is not self._lexical:  # a rebuilt cache may name them rightly
            self._unreadable = (self._lexical, set())
        unreadable = self._unreadable[1]
        missing = [i for i in ids if i not in cache and i not in unreadable]
        fetched = self.store.vectors(missing) if missing else {}
        if len(fetched) < len(missing):
            unreadable.update(i for i in missing if i not in fetched)
            log.warning("%d ids from the lexical cache are unknown to the store; skipped, cache marked stale",
                        len(missing) - len(fetched))
            self.mark_stale()
        if len(cache) + len(fetched) > VECTOR_CACHE_SIZE:  # drop the older half (dicts keep insertion order)
            for record_id in list(islice(cache, len(cache) // 2)):
                cache.pop(record_id, None)
        cache.update(fetched)
        return cache

    def _vector_cache(self) -> dict[str, np.ndarray]:
        """Vectors of keyword-only candidates already read from the store, kept until the store changes
        (the same candidates come back question after question; a Chroma get costs milliseconds)."""
        index = self._lexical
        fingerprint = index.fingerprint if index is not None else ""
        if self._vectors[0] != fingerprint:
            self._vectors = (fingerprint, {})
        return self._vectors[1]
