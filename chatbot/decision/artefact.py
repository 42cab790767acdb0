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
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import json

import numpy as np

from chatbot.decision import verifier as verifying
from chatbot.decision.calibration import CalibrationFiles
from chatbot.decision.examples import MAX_LABELLED, build_examples
from chatbot.decision.features import NAMES
from chatbot.decision.model import FORMAT, DecisionModel, mix_weights
from chatbot.decision.negatives import bundled_digest, bundled_out_of_scope
from chatbot.dictionary import dictionary_fingerprint
from chatbot.lexical import cache_folder
from chatbot.retrieval import Retriever
from chatbot.settings import StoreSettings

log = logging.getLogger(__name__)


ROW_MODULES = ("text", "spelling", "lexical", "bm25", "retrieval", "fusion")  # beside this package: what makes the rows


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Part of the fingerprint: the source of the modules that make the training rows and the model (this
    package, tokenisation, typo repair, keyword scoring, retrieval, fusion), so a model saved by another
    version of them is rebuilt, not reused (FORMAT caught only changes someone remembered to mark). Replicas
    running the same code agree."""
    package = Path(__file__).resolve().parent
    files = sorted(package.glob("*.py")) + [package.parent / f"{name}.py" for name in ROW_MODULES]
    digest = hashlib.sha1()
    for path in files:
        try:
            digest.update(path.read_bytes())
        except OSError:  # not readable as files (an unusual install): the other parts still key the model
            digest.update(path.name.encode("utf-8"))
    return digest.hexdigest()[:12]


def artefact_path(settings: StoreSettings) -> Path:
    """Next to the BM25 cache folder of the same collection."""
    bm25 = cache_folder(settings)
    return bm25.parent / f"{bm25.name}.decision.json"


def verifier_path(settings: StoreSettings) -> Path:
    """The verifier's model folder, beside the decision JSON."""
    bm25 = cache_folder(settings)
    return bm25.parent / f"{bm25.name}.verifier"


def verifier_base(folder: Path) -> Path:
    """The transformer folder inside a sentence-transformers folder (its first module), else the folder."""
    if (folder / "config.json").exists():
        return folder
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        return folder / modules[0]["path"]
    except (OSError, ValueError, LookupError):
        return folder


class DecisionProvider:
    """Hands out the decision model for the store as it is now; (re)builds it in the background."""

    def __init__(
        self, retriever: Retriever, max_variants: int = 1500, refresh_s: float = 30.0, in_scope_share: float = 0.8,
        verifier: bool | None = None,
    ) -> None:
        self.retriever = retriever
        # answer.verifier unless told: a cross-encoder trained from the store adds its logit to the features
        self.verifier = retriever.settings.answer.verifier if verifier is None else verifier
        self.verifier_folder = verifier_path(retriever.store.settings)
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
        self._labels: Callable[[], Sequence[tuple[str, str]]] | None = None
        self._label_cache: list[tuple[str, str]] = []
        self._labels_at = float("-inf")
        self._label_reader: threading.Thread | None = None
        files = retriever.settings.answer.calibration_files
        self.calibration = CalibrationFiles(files, retriever.store.all_records) if files else None

    def use_labels(self, source: Callable[[], Sequence[tuple[str, str]]]) -> None:
        """Learn from the operators' labels too: source() gives (question, FAQ id meant; "" = not for us),
        oldest first (the question log). A new label changes the fingerprint, so the model is rebuilt."""
        self._labels, self._labels_at = source, float("-inf")

    def labels(self, fresh: bool = False) -> list[tuple[str, str]]:
        """The labelled questions of answer.calibration_files, then the operators' labels as last read (those
        are re-read in a background thread every refresh_s, so a slow or unreachable log never holds up a
        question; fresh=True reads them now)."""
        files = self.calibration.labels() if self.calibration is not None else []
        return files + self.operator_labels(fresh)

    def operator_labels(self, fresh: bool = False) -> list[tuple[str, str]]:
        if self._labels is None:
            return []
        if fresh:
            self._read_labels()
        elif time.monotonic() - self._labels_at > self.refresh_s and not (
            self._label_reader is not None and self._label_reader.is_alive()
        ):
            self._label_reader = threading.Thread(target=self._read_labels, name="decision-labels", daemon=True)
            self._label_reader.start()
        return self._label_cache

    def _read_labels(self) -> None:
        source = self._labels
        if source is None:
            return
        try:
            self._label_cache = list(source())[-MAX_LABELLED:]
        except Exception as exc:  # noqa: BLE001 - the last labels read stay in use
            log.warning("Could not read the operators' labels for the decision model: %s: %s", type(exc).__name__, exc)
        self._labels_at = time.monotonic()

    def fingerprint(self) -> str:
        """Store content + everything that changes the features (fusion settings, encoder, the operator's
        synonym dictionary, bundled set, traffic mix)."""
        s = self.retriever.settings
        parts = [
            self.retriever.store.fingerprint(), self.retriever.encoder.model_id,
            f"w={s.retrieval.lexical_weight}", f"off={s.retrieval.doc_offset}", f"cand={s.retrieval.candidates}",
            f"sp={s.text.spacing_correction}", f"respace={s.text.respace_unspaced}", f"typo={s.text.typo_repair}", f"k1={s.lexical.k1}", f"b={s.lexical.b}",
            f"dict={dictionary_fingerprint()}", bundled_digest(), f"v{FORMAT}", f"code={code_digest()}", ",".join(NAMES), f"max={self.max_variants}", f"share={self.in_scope_share}",
        ]
        labels = self.labels()
        if labels:
            parts.append("labels=" + hashlib.sha1(repr(labels).encode("utf-8")).hexdigest())
        if self.verifier:
            parts.append(f"verifier={verifying.MAX_LENGTH},{','.join(verifying.NAMES)},{verifying.VERSION}")
        return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()[:20]

    @property
    def status(self) -> str:
        """building (a model is being trained now) | ready (one answers) | waiting (none yet): for /api/health."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return "building"
        return "ready" if self._model is not None else "waiting"

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
            if saved is not None and saved.fingerprint == wanted and saved.uses_verifier:
                saved.verifier = verifying.Verifier.load(self.verifier_folder)
                if saved.verifier is None:
                    saved = None
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
        examples = build_examples(self.retriever, bundled_out_of_scope(), self.max_variants, labelled=self.labels())
        if len(set(examples.y.tolist())) < 2:
            raise ValueError(f"need both right and wrong top candidates to train; got {len(examples.y)} rows of one kind")
        weights = mix_weights(examples.in_scope, self.in_scope_share)
        X, names, verifier, timing = examples.X, NAMES, None, {}
        if self.verifier:
            verifier, columns, timing = self.train_verifier(examples)
            X, names = np.hstack([X, columns]), NAMES + verifying.NAMES
        model = DecisionModel.fit(X, examples.y, examples.groups, fingerprint, weights=weights, fused=examples.fused,
                                  judged=examples.judged,
                                  names=names)
        model.verifier = verifier
        self.last_build_s = time.perf_counter() - started
        model.info.update(timing)
        model.info.update({"build_s": round(self.last_build_s, 2),
                           **{f"rows_{k}": examples.kinds.count(k) for k in set(examples.kinds)}})
        try:
            if verifier is not None:
                verifier.save(self.verifier_folder)  # before the JSON that names it
            model.save(self.path)
        except OSError as exc:  # a read-only cache folder must not stop answering
            log.warning("Could not save the decision model to %s: %s", self.path, exc)
        log.info("Decision model: %d rows (%d right tops) in %.1fs", len(examples.y), int(examples.y.sum()), self.last_build_s)
        return model

    def train_verifier(self, examples) -> tuple["verifying.Verifier", np.ndarray, dict[str, float]]:  # noqa: ANN001
        """The verifier for serving (all pairs) and the verifier columns of the training rows, each row scored by
        a verifier trained without its FAQ (two folds by FAQ key / bundled question), so the decision model
        learns how far to trust it on questions it has not seen."""
        started = time.perf_counter()
        base = verifier_base(self.retriever.encoder.resolved.path)
        pairs = verifying.training_pairs(self.retriever, bundled_out_of_scope(), verifying.MAX_PAIRS)
        kinds = {p.label for p in pairs}
        if kinds != {0, 1}:
            raise ValueError(f"verifier: need positive and negative pairs, got {len(pairs)} of labels {kinds}")
        pairs_s = time.perf_counter() - started
        row_fold = np.array([verifying.fold_of(str(g)) for g in examples.groups])
        z = np.zeros((len(examples.y), verifying.VERIFIED_MAX))
        for fold in (0, 1):
            train = [p for p in pairs if verifying.fold_of(p.group) != fold]
            fold_verifier = verifying.Verifier.train(base, train)
            rows = np.flatnonzero(row_fold == fold)
            asked = [(i, j, examples.pairs[i][0], verifying.candidate_text(text, kind))
                     for i in rows for j, (text, kind) in enumerate(examples.tops[i]) if kind != "doc"]
            logits = fold_verifier.logits([(q, c) for _, _, q, c in asked])
            for (i, j, _, _), value in zip(asked, logits):
                z[i, j] = value
        columns = np.vstack([
            verifying.feature_rows(z[i, : len(examples.tops[i])], [kind != "doc" for _, kind in examples.tops[i]])[0]
            for i in range(len(examples.y))])
        folds_s = time.perf_counter() - started - pairs_s
        final = verifying.Verifier.train(base, pairs)
        timing = {"verifier_pairs": len(pairs), "verifier_pairs_s": round(pairs_s, 2), "verifier_folds_s": round(folds_s, 2),
                  "verifier_s": round(time.perf_counter() - started, 2)}
        log.info("Verifier: %d pairs, trained in %.1fs", len(pairs), timing["verifier_s"])
        return final, columns, timing

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
