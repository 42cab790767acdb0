"""Kiwi-morpheme BM25 (bm25s): a derived cache of what Chroma holds, keyed by the store's fingerprint."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from chatbot.records import Hit
from chatbot.settings import LexicalSettings, StoreSettings
from chatbot.store import Store, StoredRecords
from chatbot.text import morphemes, morphemes_batch

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import
_FORMAT = 1


@dataclass
class LexicalIndex:
    """BM25 over morpheme tokens plus the records it points at (ids, texts, metadata)."""

    bm25: bm25s.BM25 | None
    records: StoredRecords
    doc_freq: dict[str, int]
    fingerprint: str
    typos: bool = False

    @classmethod
    def build(cls, records: StoredRecords, settings: LexicalSettings, fingerprint: str, typos: bool = False) -> "LexicalIndex":
        tokens = morphemes_batch(records.texts, typos=typos) if records.texts else []
        bm25 = None
        if tokens:
            bm25 = bm25s.BM25(k1=settings.k1, b=settings.b)
            bm25.index([t or [""] for t in tokens], show_progress=False)
        doc_freq = Counter(tok for toks in tokens for tok in set(toks))
        return cls(bm25, records, dict(doc_freq), fingerprint, typos)

    # --- persistence: an explicit save/load pair ---------------------------------------------
    def save(self, folder: Path) -> None:
        """Atomic: written into a temp folder, then renamed over the old cache."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=folder.parent))
        try:
            if self.bm25 is not None:
                self.bm25.save(str(tmp / "bm25"), show_progress=False)
            payload = {
                "format": _FORMAT,
                "fingerprint": self.fingerprint,
                "typos": self.typos,
                "ids": self.records.ids,
                "texts": self.records.texts,
                "metadatas": self.records.metadatas,
                "doc_freq": self.doc_freq,
            }
            (tmp / "records.json").write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            old = folder.with_name(folder.name + ".old")
            if folder.exists():
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex | None":
        """None when there is no usable cache (missing, other format, half-written)."""
        try:
            payload = json.loads((folder / "records.json").read_text(encoding="utf-8"))
            if payload.get("format") != _FORMAT:
                return None
            bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False) if payload["ids"] else None
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt, never a failed question
            log.warning("Ignoring the unreadable BM25 cache in %s: %s: %s", folder, type(exc).__name__, exc)
            return None
        records = StoredRecords(payload["ids"], payload["texts"], payload["metadatas"])
        index = cls(bm25, records, payload["doc_freq"], payload["fingerprint"], payload.get("typos", False))
        problem = index.inconsistency()
        if problem:
            log.warning("Ignoring the BM25 cache in %s: %s", folder, problem)
            return None
        return index

    def inconsistency(self) -> str | None:
        """Why the BM25 arrays do not belong to these records (None when they do).

        A `bm25/` folder copied from another index beside a valid records.json would otherwise
        index past the records (IndexError on every question, until someone deletes the cache).
        """
        n = len(self.records.ids)
        if not (len(self.records.texts) == len(self.records.metadatas) == n):
            return "records.json has lists of different lengths"
        if self.bm25 is None:
            return "no BM25 arrays for a non-empty index" if n else None
        try:
            scores = self.bm25.scores
            num_docs, indptr, indices = int(scores["num_docs"]), np.asarray(scores["indptr"]), np.asarray(scores["indices"])
            vocab = self.bm25.vocab_dict
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            return f"unreadable BM25 arrays ({type(exc).__name__}: {exc})"
        if num_docs != n:
            return f"BM25 has {num_docs} documents, records.json {n}"
        if set(self.doc_freq) - set(vocab) or set(vocab) - set(self.doc_freq) - {""}:
            return "BM25 vocabulary differs from the records' tokens"
        columns = len(indptr) - 1  # bm25s may keep its "" token (last id) out of the matrix
        if columns not in (len(vocab), len(vocab) - ("" in vocab)) or (len(indices) and int(indices.max()) >= n):
            return "BM25 score matrix does not match its vocabulary or document count"
        per_token = np.diff(indptr)
        wrong = [t for t, i in vocab.items() if t and (i >= columns or per_token[i] != self.doc_freq[t])]
        if wrong:
            return f"document frequencies disagree for {len(wrong)} tokens (e.g. {wrong[0]!r})"
        probe = next(iter(self.doc_freq), None)
        if probe is not None and len(self.bm25.get_scores([probe])) != n:
            return "BM25 score vector length differs from the record count"
        return None

    # --- search -------------------------------------------------------------------------------
    def query_tokens(self, question: str) -> list[str]:
        return morphemes(question, typos=self.typos)

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Coverage-normalised BM25 for every record: the share of the question's IDF mass matched.

        Raw BM25 has no fixed scale; dividing by what a record of average length containing every
        query term once would score (bm25s' Lucene variant: Σ idf / (1 + k1); unknown terms count
        with the largest IDF) gives about 1.0 for a full match and much less for a question that
        only shares a common word, which keeps the hybrid score calibrated.
        """
        n = len(self.records.ids)
        if n == 0 or self.bm25 is None or not tokens:
            return np.zeros(n, dtype=np.float32)
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        raw = self.bm25.get_scores(known) if known else np.zeros(n, dtype=np.float32)
        full_match = sum(self._idf(t) for t in tokens) / (1.0 + self.bm25.k1)
        return np.asarray(raw, dtype=np.float32) / max(full_match, 1e-9)

    def _idf(self, token: str) -> float:
        n = len(self.records.ids)
        df = self.doc_freq.get(token, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, question: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        scores = self.scores(self.query_tokens(question))
        if where:
            scores = scores * self.mask(where)
        return [self.hit(i, float(scores[i])) for i in top_positions(scores, k)]

    def mask(self, where: dict[str, Any]) -> np.ndarray:
        return np.array(
            [all(m.get(key) == value for key, value in where.items()) for m in self.records.metadatas], dtype=np.float32
        )

    @cached_property
    def position(self) -> dict[str, int]:
        return {record_id: i for i, record_id in enumerate(self.records.ids)}

    def hit(self, i: int, score: float) -> Hit:
        meta = self.records.metadatas[i]
        return Hit(self.records.ids[i], self.records.texts[i], meta.get("kind", "faq"), score, meta)


def top_positions(scores: np.ndarray, k: int) -> list[int]:
    """Positions of the k best positive scores, best first; argpartition keeps 100k records cheap."""
    if k < len(scores):
        candidates = np.argpartition(-scores, k)[:k]
    else:
        candidates = np.arange(len(scores))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [int(i) for i in order if scores[i] > 0]


def cache_folder(settings: StoreSettings) -> Path:
    """Beside the embedded Chroma folder; in server mode, a cache folder named for the server."""
    if settings.host:
        name = f"bm25-{settings.host}-{settings.port}-{settings.collection}".replace(":", "_").replace("/", "_")
        return settings.cache_dir / name
    return settings.path.parent / f"{settings.path.name}-bm25" / settings.collection


def load_or_build(
    store: Store, settings: LexicalSettings, typos: bool = False, current: LexicalIndex | None = None,
    rebuild: bool = False,
) -> LexicalIndex:
    """The index for what THIS process's store holds now: `current` (in memory) or the disk cache when
    their fingerprint matches the store's count and revision, else a rebuild from Chroma (then cached).

    The disk cache is only a shortcut: it is accepted when its fingerprint is the one computed from
    this process's store and it holds exactly that many consistent records. rebuild skips both.
    """
    count, revision = store.state()
    fingerprint = f"{count}-{revision}-k1={settings.k1}-b={settings.b}-typos={typos}"
    if not rebuild and current is not None and current.fingerprint == fingerprint:
        return current
    folder = cache_folder(store.settings)
    cached = None if rebuild else LexicalIndex.load(folder)
    if cached is not None and cached.fingerprint == fingerprint and len(cached.records.ids) == count:
        return cached
    log.info("Building the kiwi-BM25 index from %d stored records", count)
    index = LexicalIndex.build(store.all_records(), settings, fingerprint, typos)
    try:
        index.save(folder)
    except OSError as exc:  # a read-only cache folder must not stop answering
        log.warning("Could not save the BM25 cache to %s: %s", folder, exc)
    return index
