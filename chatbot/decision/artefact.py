"""The decision model as a derived artefact beside the store, keyed by its fingerprint (like the BM25 cache).

Training asks every FAQ variant and the bundled questions through the retriever (seconds for the
sample, bounded by sampling for big stores), so it runs in a background thread: until a model for
the current store exists, current() returns the previous one or None and the Answerer falls back
to the score threshold. Replicas sharing one Chroma server compute the same fingerprint and reuse
each other's saved model.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

from chatbot.decision.examples import build_examples
from chatbot.decision.features import NAMES
from chatbot.decision.model import FORMAT, DecisionModel, mix_weights
from chatbot.decision.negatives import bundled_digest, bundled_out_of_scope
from chatbot.dictionary import dictionary_fingerprint
from chatbot.lexical import cache_folder
from chatbot.retrieval import Retriever
from chatbot.settings import StoreSettings

log = logging.getLogger(__name__)


def artefact_path(settings: StoreSettings) -> Path:
    """Next to the BM25 cache folder of the same collection."""
    bm25 = cache_folder(settings)
    return bm25.parent / f"{bm25.name}.decision.json"


class DecisionProvider:
    """Hands out the decision model for the store as it is now; (re)builds it in the background."""

    def __init__(
        self, retriever: Retriever, max_variants: int = 1500, refresh_s: float = 30.0, in_scope_share: float = 0.8
    ) -> None:
        self.retriever = retriever
        self.max_variants = max_variants
        self.in_scope_share = in_scope_share
        self.refresh_s = refresh_s
        self.path = artefact_path(retriever.store.settings)
        self._model: DecisionModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed: str | None = None
        self.last_build_s: float | None = None

    def fingerprint(self) -> str:
        """Store content + everything that changes the features (fusion settings, encoder, the operator's
        synonym dictionary, bundled set, traffic mix)."""
        s = self.retriever.settings
        parts = [
            self.retriever.store.fingerprint(), self.retriever.encoder.model_id,
            f"w={s.retrieval.lexical_weight}", f"off={s.retrieval.doc_offset}", f"cand={s.retrieval.candidates}",
            f"sp={s.text.spacing_correction}", f"k1={s.lexical.k1}", f"b={s.lexical.b}",
            f"dict={dictionary_fingerprint()}", bundled_digest(), f"v{FORMAT}", ",".join(NAMES), f"max={self.max_variants}", f"share={self.in_scope_share}",
        ]
        return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:20]

    def current(self) -> DecisionModel | None:
        """Never blocks on training: the fresh model, else the previous one while a new one builds, else None."""
        with self._lock:
            if time.monotonic() - self._checked_at < self.refresh_s:
                return self._model
            self._checked_at = time.monotonic()
            wanted = self.fingerprint()
            if self._model is not None and self._model.fingerprint == wanted:
                return self._model
            saved = DecisionModel.load(self.path)
            if saved is not None and saved.fingerprint == wanted:
                self._model = saved
            elif self._failed != wanted and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._build, args=(wanted,), name="decision-model", daemon=True)
                self._thread.start()
            return self._model

    def wait(self, timeout: float | None = None) -> DecisionModel | None:
        """Block until the model for the current store is there (evaluation, tests, warm-up)."""
        with self._lock:
            self._checked_at = float("-inf")
        self.current()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._checked_at = float("-inf")
        return self.current()

    def build(self, fingerprint: str | None = None) -> DecisionModel:
        """Train from the store now (in the caller's thread) and save beside the store."""
        fingerprint = fingerprint or self.fingerprint()
        started = time.perf_counter()
        examples = build_examples(self.retriever, bundled_out_of_scope(), self.max_variants)
        if len(set(examples.y.tolist())) < 2:
            raise ValueError(f"need both right and wrong top candidates to train; got {len(examples.y)} rows of one kind")
        weights = mix_weights(examples.in_scope, self.in_scope_share)
        model = DecisionModel.fit(examples.X, examples.y, examples.groups, fingerprint, weights=weights, fused=examples.fused)
        self.last_build_s = time.perf_counter() - started
        model.info.update({"build_s": round(self.last_build_s, 2),
                           **{f"rows_{k}": examples.kinds.count(k) for k in set(examples.kinds)}})
        try:
            model.save(self.path)
        except OSError as exc:  # a read-only cache folder must not stop answering
            log.warning("Could not save the decision model to %s: %s", self.path, exc)
        log.info("Decision model: %d rows (%d right tops) in %.1fs", len(examples.y), int(examples.y.sum()), self.last_build_s)
        return model

    def _build(self, fingerprint: str) -> None:
        try:
            model = self.build(fingerprint)
        except Exception as exc:  # noqa: BLE001 - training is optional: the threshold decision stays
            log.warning("No decision model (the score threshold decides): %s", exc)
            with self._lock:
                self._failed = fingerprint
            return
        with self._lock:
            self._model = model
            self._checked_at = float("-inf")
