"""Static-embedding retrieval: sentence vectors averaged from word vectors, built from what the store holds.

No transformer runs over a whole question: a question is split into kiwi content morphemes
(chatbot.text.morphemes: nouns, stems, roots, foreign words…), their vectors are looked up and
averaged with SIF weights, and the result is compared by cosine with every stored record. That makes
it a cheap third signal next to kiwi-BM25 and the dense encoder, with a `search()` shaped like
`Retriever.search` so the evaluator, benchmarks and tests treat it as one more mode.

Both methods weight a morpheme by SIF, a / (a + p(w)) with a = 0.01 and p(w) its share of the
morphemes of the corpus (every stored text plus each distinct FAQ answer):

* ``word2vec`` — gensim skip-gram Word2Vec trained on the corpus' morphemes; a sentence vector is the
  SIF-weighted mean of its known morphemes' vectors with the corpus' common direction (first singular
  vector of the corpus' sentence vectors) removed. It knows only the user's own corpus: an FAQ of a
  few hundred lines is far too little text to learn what words mean, so related but different words
  (택배/배송, 캔슬/취소) stay unrelated and unseen words are dropped.
* ``distilled`` (default) — model2vec-style distillation of the configured encoder over a morpheme
  vocabulary: each morpheme is encoded once on its own by the encoder (its tokenizer's special tokens
  around the morpheme's pieces, its pooling, no question prefix), and a sentence vector is the
  SIF-weighted mean of its morphemes' vectors centred on the mean vector of the corpus' distinct
  morphemes (no PCA: fewer dimensions measured slightly worse). A morpheme the corpus never uses
  counts as seen once. The vectors inherit the encoder's multilingual semantics, so synonyms and
  English loan words match. Morphemes are distilled on first sight (the corpus' when the index is
  built, a question's new ones when it is asked) and cached per encoder, in memory and on disk, so a
  build costs one short forward pass per distinct morpheme instead of distilling a whole vocabulary.

On data/questions.csv over data/faq.csv with the real e5, ``distilled`` beats ``word2vec`` clearly
(bench/retrieval_quality.py prints both), hence the default.

Scores are cosines of averaged word vectors, on another scale than the encoder's sentence cosines
(right answers sit around 0.5–1.0 on the sample data), hence `answer.static_threshold`;
`python -m chatbot.evaluate --modes static` recommends one.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from chatbot.records import Hit
from chatbot.retrieval import group_hits
from chatbot.settings import Settings
from chatbot.store import Store, StoredRecords
from chatbot.text import morphemes_batch

log = logging.getLogger(__name__)
Method = Literal["distilled", "word2vec"]
METHODS: tuple[str, ...] = ("distilled", "word2vec")
DEFAULT_METHOD: Method = "distilled"


class TextEmbedder(Protocol):
    """Turns texts into unit vectors (rows); a zero row when nothing in a text is known."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; rows of (numerically) zero length stay zero rather than amplify noise."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.where(norms > 1e-6, matrix / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


# --- (a) Word2Vec on kiwi morphemes -----------------------------------------------------------------
@dataclass
class Word2VecEmbedder:
    """gensim Word2Vec over the corpus' content morphemes; SIF-weighted mean minus the common direction."""

    vectors: dict[str, np.ndarray]
    weights: dict[str, float]
    component: np.ndarray | None
    dimension: int

    @classmethod
    def train(cls, corpus: Sequence[str], dimension: int = 128, sif: float = 1e-2, seed: int = 0) -> "Word2VecEmbedder":
        from gensim.models import Word2Vec

        sentences = [s for s in morphemes_batch(list(corpus)) if s]
        counts = Counter(tok for sentence in sentences for tok in sentence)
        total = max(sum(counts.values()), 1)
        weights = {tok: sif / (sif + n / total) for tok, n in counts.items()}
        if not sentences:
            return cls({}, weights, None, dimension)
        # A small corpus needs many passes: aim for ~150k trained tokens, within [10, 100] epochs
        # (300 epochs measured no better on data/faq.csv and cost 3× the time).
        epochs = int(min(100, max(10, math.ceil(150_000 / total))))
        model = Word2Vec(
            sentences, vector_size=dimension, window=5, min_count=1, sg=1, negative=5,
            epochs=epochs, seed=seed, workers=1,
        )
        vectors = {tok: np.asarray(model.wv[tok], dtype=np.float32) for tok in counts}
        embedder = cls(vectors, weights, None, dimension)
        pooled = embedder._pooled(sentences)
        if len(pooled) >= 2:
            _, _, vt = np.linalg.svd(pooled, full_matrices=False)
            embedder.component = vt[0].astype(np.float32)
        return embedder

    def _pooled(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        out = np.zeros((len(token_lists), self.dimension), dtype=np.float32)
        for row, tokens in enumerate(token_lists):
            known = [t for t in tokens if t in self.vectors]
            if known:
                out[row] = np.sum([self.weights[t] * self.vectors[t] for t in known], axis=0) / len(known)
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        pooled = self._pooled(morphemes_batch(list(texts)))
        if self.component is not None:
            pooled = pooled - np.outer(pooled @ self.component, self.component)
        return _unit_rows(pooled)


# --- (b) model2vec-style distillation of the configured encoder over a morpheme vocabulary ---------------
class DistilledEmbedder:
    """Word vectors distilled from the encoder for a kiwi-morpheme vocabulary (model2vec's custom vocabulary).

    Each content morpheme (chatbot.text.morphemes: nouns, stems, roots, foreign words…) is encoded once
    on its own by the encoder (``model.encode(word)``: the tokenizer's special tokens around the word's
    pieces, the model's own pooling, no question prefix). A sentence vector is the SIF-weighted mean
    a / (a + p(w)) of its morphemes' vectors, each centred on the mean vector of the corpus' distinct
    morphemes (model2vec's PCA centres too; PCA to fewer dimensions measured slightly worse here and is
    left out). p(w) is the morpheme's share of the corpus' morpheme counts; a morpheme the corpus never
    uses counts as seen once. Morphemes of a question that the corpus lacks are distilled on first
    sight (one short forward pass each) and kept, so related words that the FAQ does not use still
    pull towards the right entry.

    Word vectors are kept per encoder in memory and written to `cache_dir/words.npz` by `fit` (so a
    question's new morphemes reach the disk with the next index build).
    """

    _BATCH = 256

    def __init__(self, model: Any, cache_dir: Path | None = None, sif: float = 1e-2) -> None:
        self.model = model  # a sentence_transformers.SentenceTransformer
        self.sif = sif
        self.cache_file = cache_dir / "words.npz" if cache_dir else None
        self._vectors: dict[str, np.ndarray] = self._load_cache()
        self._saved = len(self._vectors)
        self._counts: Counter[str] = Counter()
        self._total = 1
        self._mean: np.ndarray | None = None
        self._lock = threading.Lock()

    def fit(self, corpus: Sequence[str]) -> "DistilledEmbedder":
        """Distil the corpus' morphemes and take their counts (SIF weights) and mean vector (centring)."""
        tokens = morphemes_batch(list(corpus))
        self._counts = Counter(tok for row in tokens for tok in row)
        self._total = max(sum(self._counts.values()), 1)
        self._distil(list(self._counts))
        if self._counts:
            self._mean = np.mean([self._vectors[w] for w in self._counts], axis=0).astype(np.float32)
        else:  # nothing to learn from: every text embeds to zero (scores 0, no hits)
            self._mean = np.zeros(int(self.model.get_embedding_dimension()), dtype=np.float32)
        self.save_cache()
        return self

    def _distil(self, words: Sequence[str]) -> None:
        with self._lock:
            missing = [w for w in dict.fromkeys(words) if w not in self._vectors]
            if missing:
                vectors = self.model.encode(missing, batch_size=self._BATCH, convert_to_numpy=True, show_progress_bar=False)
                self._vectors.update(zip(missing, np.asarray(vectors, dtype=np.float32)))

    def weight(self, word: str) -> float:
        return self.sif / (self.sif + max(self._counts.get(word, 0), 1) / self._total)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._mean is None:
            raise RuntimeError("DistilledEmbedder.fit(corpus) must run before embed()")
        rows = morphemes_batch(list(texts))
        self._distil([w for row in rows for w in row])
        out = np.zeros((len(rows), self._mean.shape[0]), dtype=np.float32)
        for r, words in enumerate(rows):
            if words:
                out[r] = np.mean([self.weight(w) * (self._vectors[w] - self._mean) for w in words], axis=0)
        return _unit_rows(out)

    # --- persistence: an explicit save/load pair of the distilled word vectors ----------------------
    def _load_cache(self) -> dict[str, np.ndarray]:
        if self.cache_file is None or not self.cache_file.exists():
            return {}
        try:
            with np.load(self.cache_file, allow_pickle=False) as data:
                return dict(zip(data["words"].tolist(), data["vectors"]))
        except (OSError, ValueError, KeyError):
            return {}

    def save_cache(self) -> None:
        if self.cache_file is None or len(self._vectors) == self._saved:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            words = sorted(self._vectors)
            tmp = self.cache_file.with_name(self.cache_file.stem + ".tmp.npz")
            np.savez(tmp, words=np.array(words, dtype=str), vectors=np.stack([self._vectors[w] for w in words]))
            tmp.replace(self.cache_file)
            self._saved = len(self._vectors)
        except OSError as exc:  # a read-only cache must not stop answering
            log.warning("Could not save distilled word vectors to %s: %s", self.cache_file, exc)


def distilled_cache_dir(settings: Settings, encoder: Any) -> Path:
    """Per encoder under the store's cache folder: its id, folder and the folder's modification times
    (a model retrained into the same folder gets a fresh cache)."""
    folder = Path(getattr(getattr(encoder, "resolved", None), "path", "") or "")
    stamps = sorted(f"{p.name}:{p.stat().st_mtime_ns}" for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    key = hashlib.sha1("|".join([encoder.model_id, str(folder), *stamps]).encode("utf-8")).hexdigest()[:12]
    return Path(settings.store.cache_dir) / "static" / key


def corpus_texts(records: StoredRecords) -> list[str]:
    """What the static model learns from: every stored text plus each distinct FAQ answer."""
    answers = {str(m.get("answer", "")) for m in records.metadatas if m.get("answer")}
    return [*records.texts, *sorted(answers)]


# --- the retriever ------------------------------------------------------------------------------------
@dataclass
class _StaticIndex:
    records: StoredRecords
    matrix: np.ndarray
    embedder: TextEmbedder
    fingerprint: str


class StaticRetriever:
    """Ranks stored records by cosine of static sentence vectors; same search() as Retriever (a SearchBackend)."""

    default_mode = "static"

    @property
    def top_k(self) -> int:
        return self.settings.retrieval.top_k

    def __init__(
        self,
        settings: Settings,
        store: Store,
        encoder: Any = None,
        method: Method = DEFAULT_METHOD,
        refresh_s: float = 30.0,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown static method {method!r}; use one of {', '.join(METHODS)}")
        if method == "distilled" and encoder is None:
            raise ValueError("the distilled static model needs the encoder to distil from")
        self.settings = settings
        self.store = store
        self.encoder = encoder
        self.method = method
        self.refresh_s = refresh_s
        self._index: _StaticIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    @property
    def index(self) -> _StaticIndex:
        """Built from store.all_records(); rebuilt when the store's fingerprint changes (checked at most
        every `refresh_s` seconds, or on the next use after `refresh()`)."""
        with self._lock:
            if self._index is None or time.monotonic() - self._checked_at > self.refresh_s:
                fingerprint = self.store.fingerprint()
                if self._index is None or self._index.fingerprint != fingerprint:
                    self._index = self._build(fingerprint)
                self._checked_at = time.monotonic()
            return self._index

    def refresh(self) -> None:
        with self._lock:
            self._checked_at = 0.0

    def _build(self, fingerprint: str) -> _StaticIndex:
        records = self.store.all_records()
        corpus = corpus_texts(records)
        started = time.perf_counter()
        embedder: TextEmbedder
        if self.method == "word2vec":
            embedder = Word2VecEmbedder.train(corpus)
        else:
            cache = distilled_cache_dir(self.settings, self.encoder)
            embedder = DistilledEmbedder(self.encoder.model, cache).fit(corpus)
        matrix = embedder.embed(records.texts) if records.texts else np.zeros((0, 1), dtype=np.float32)
        log.info("Built the %s static index of %d records in %.1fs", self.method, len(records.ids), time.perf_counter() - started)
        return _StaticIndex(records, matrix, embedder, fingerprint)

    def search(
        self, question: str, k: int | None = None, mode: str | None = None, category: str | None = None
    ) -> list[Hit]:
        """Top-k hits, one per FAQ (best variant wins), best first, among the `retrieval.candidates` best
        records with a positive score; `mode` is accepted and ignored."""
        k = k or self.settings.retrieval.top_k
        index = self.index
        if not index.records.ids:
            return []
        vector = index.embedder.embed([question])[0]
        scores = index.matrix @ vector
        if category:
            mask = np.array([m.get("category") == category for m in index.records.metadatas], dtype=bool)
            scores = np.where(mask, scores, -np.inf)
        order = np.argsort(-scores)[: self.settings.retrieval.candidates]
        hits = [
            Hit.of(index.records.ids[i], index.records.texts[i], index.records.metadatas[i], float(scores[i]))
            for i in order
            if np.isfinite(scores[i]) and scores[i] > 0
        ]
        return group_hits(hits, k)
