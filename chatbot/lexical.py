"""Kiwi-morpheme BM25: a derived cache of what Chroma holds, keyed by the store's fingerprint.

The cache keeps every record's tokens by id (ids are content hashes), so when the store changes only
new records are read from Chroma and tokenised; the score matrix is then rebuilt from the kept token
ids in numpy (chatbot/bm25.py). It also keeps the tokens of each FAQ record's main question and answer
(not scored): the answer decision reads them for every candidate, and tokenising them per question
cost ~1.5 ms in a big store, where a question's candidates are seldom ones seen before. Records live
in numpy columns (chatbot/columns.py) saved as .npz, which load in well under a second per 100k
records, unlike JSON.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from chatbot.bm25 import ScoreMatrix, TokenTable
from chatbot.columns import IdColumn, MetadataColumn, Positions, RecordColumns, TextColumn, id_array
from chatbot.dictionary import dictionary_fingerprint
from chatbot.records import Hit, related_texts
from chatbot.settings import LexicalSettings, StoreSettings
from chatbot.spelling import Speller
from chatbot.store import Store, StoredRecords
from chatbot.text import morphemes, morphemes_batch

log = logging.getLogger(__name__)
_FORMAT = 3
_FETCH_BATCH = 2000  # ids per Chroma get when reading new records
_MASKS_KEPT = 64  # category filters remembered per index
_STAMP_MARGIN_NS = 5 * 10**9  # records written up to 5 s before the last sync are read again (held ids are skipped)
_DECODED_KEPT = 20_000  # decoded records remembered per index for building hits
_SAVE_AFTER = 1000  # big caches: records tokenised since the disk cache was written before it is rewritten
_SAVE_ALWAYS_BELOW = 100_000  # smaller caches are rewritten after every change (well under a second)


def tokeniser_key(typos: bool) -> str:
    """What decides a record's tokens: cached tokens made under another key are not reused.

    The operator dictionary (chatbot.dictionary) rewrites tokens, so an edit rebuilds them."""
    return f"typos={typos}-dict={dictionary_fingerprint()}"


@dataclass(frozen=True)
class IndexedRecords:
    """The indexed records as parallel sequences (decoded item by item, never all at once)."""

    ids: IdColumn
    texts: Sequence[str]
    metadatas: Sequence[dict[str, Any]]


@dataclass
class LexicalIndex:
    """BM25 over morpheme tokens plus the records it points at (ids, texts, metadata)."""

    columns: RecordColumns
    tokens: TokenTable
    entries: TokenTable  # per record: the tokens of its FAQ's main question and answer (records.related_texts)
    matrix: ScoreMatrix
    fingerprint: str
    typos: bool = False
    token_key: str = ""
    build_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    unsaved: int = 0  # records tokenised since the disk cache was last written (they would be redone after a restart)
    revision: str = ""  # the store revision read before this index was last synced with it

    def __post_init__(self) -> None:
        self.token_key = self.token_key or tokeniser_key(self.typos)
        self._masks: dict[str, np.ndarray] = {}
        self._decoded: dict[int, Hit] = {}
        self._token_sets: dict[int, tuple[frozenset[str], frozenset[str]]] = {}  # kept like _decoded: the same candidates recur

    @classmethod
    def build(cls, records: StoredRecords | IndexedRecords, settings: LexicalSettings, fingerprint: str,
              typos: bool = False) -> "LexicalIndex":
        """Every record tokenised (a full rebuild)."""
        texts, metadatas = list(records.texts), list(records.metadatas)
        columns = RecordColumns.of(list(records.ids), texts, metadatas)
        own, entries = _tokenise_records(texts, metadatas, typos)
        return cls.assemble(columns, TokenTable.from_lists(own), TokenTable.from_lists(entries), settings, fingerprint, typos)

    @classmethod
    def assemble(cls, columns: RecordColumns, tokens: TokenTable, entries: TokenTable, settings: LexicalSettings,
                 fingerprint: str, typos: bool) -> "LexicalIndex":
        tokens = tokens.compacted()
        return cls(columns, tokens, entries.compacted(), ScoreMatrix.build(tokens, settings.k1, settings.b), fingerprint,
                   typos)

    def updated(self, store_ids: Sequence[str], fetch: Callable[[list[str]], StoredRecords],
                settings: LexicalSettings, fingerprint: str) -> "LexicalIndex":
        """This index brought to `store_ids`: gone ids dropped, new ids fetched and tokenised, the rest kept
        (same id = same content). Scores equal a full rebuild's (tests/test_lexical_incremental.py)."""
        wanted = id_array(store_ids)
        rows = self.position.rows_of(wanted)
        keep = np.sort(rows[rows >= 0])  # ascending: kept records stay in runs (cheap to copy)
        keep = keep[np.diff(keep, prepend=-1) != 0]  # an id listed twice (paging during a write) once
        new_ids = list(dict.fromkeys(store_ids[i] for i in np.flatnonzero(rows < 0).tolist()))
        new = fetch(new_ids) if new_ids else StoredRecords([], [], [])
        log.info("BM25 cache update: %d records kept, %d removed, %d new tokenised",
                 len(keep), len(self.columns) - len(keep), len(new.ids))
        columns = self.columns.take(keep).extended(new.ids, new.texts, new.metadatas)
        own, entry = _tokenise_records(list(new.texts), new.metadatas, self.typos)
        tokens, entries = self.tokens.take(keep).extended(own), self.entries.take(keep).extended(entry)
        index = LexicalIndex.assemble(columns, tokens, entries, settings, fingerprint, self.typos)
        index.unsaved = self.unsaved + len(new.ids)
        return index

    def appended(self, new: StoredRecords, settings: LexicalSettings, fingerprint: str) -> "LexicalIndex":
        """This index plus the records of `new` it does not hold yet (a held id is the same content)."""
        fresh = [j for j, row in enumerate(self.position.lookup(new.ids)) if row < 0]
        ids, texts, metadatas = [new.ids[j] for j in fresh], [new.texts[j] for j in fresh], [new.metadatas[j] for j in fresh]
        log.info("BM25 cache update: %d records written since the last check, %d new tokenised", len(new.ids), len(ids))
        columns = self.columns.extended(ids, texts, metadatas)
        own, entry = _tokenise_records(texts, metadatas, self.typos)
        tokens, entries = self.tokens.extended(own), self.entries.extended(entry)
        index = LexicalIndex.assemble(columns, tokens, entries, settings, fingerprint, self.typos)
        index.unsaved = self.unsaved + len(ids)
        return index

    def __len__(self) -> int:
        return len(self.columns)

    # --- derived views ---------------------------------------------------------------------------
    @cached_property
    def records(self) -> IndexedRecords:
        return IndexedRecords(IdColumn(self.columns.ids), self.columns.texts, MetadataColumn(self.columns.metadata_json))

    @cached_property
    def vocab_dict(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens.vocab)}

    @cached_property
    def doc_freq(self) -> dict[str, int]:
        return dict(zip(self.tokens.vocab, self.matrix.doc_freqs().tolist()))

    @cached_property
    def speller(self) -> Speller:
        """Typo repair against this index's words (chatbot/spelling.py)."""
        return Speller(self.doc_freq)

    @cached_property
    def position(self) -> Positions:
        return Positions(self.columns.ids)

    # --- persistence: an explicit save/load pair ---------------------------------------------
    def save(self, folder: Path) -> None:
        """Atomic: written into a temp folder, then renamed over the old cache. records.npz and bm25/ carry
        the same build id, so a bm25/ folder from another index is never paired with these records."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=folder.parent))
        old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            meta = {"format": _FORMAT, "fingerprint": self.fingerprint, "typos": self.typos,
                    "token_key": self.token_key, "build_id": self.build_id, "k1": self.matrix.k1, "revision": self.revision}
            np.savez(tmp / "records.npz", meta=_json_array(meta), token_ptr=self.tokens.ptr, token_ids=self.tokens.ids,
                     **TextColumn.of(self.tokens.vocab).arrays("vocab"), entry_ptr=self.entries.ptr,
                     entry_ids=self.entries.ids, **TextColumn.of(self.entries.vocab).arrays("entry_vocab"),
                     **self.columns.arrays())
            (tmp / "bm25").mkdir()
            np.savez(tmp / "bm25" / "matrix.npz", build_id=_json_array(self.build_id), data=self.matrix.data,
                     indices=self.matrix.indices, indptr=self.matrix.indptr, num_docs=np.int64(self.matrix.num_docs))
            try:
                os.replace(folder, old)
            except FileNotFoundError:
                pass
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex | None":
        """None when there is no usable cache (missing, other format, half-written, foreign bm25/)."""
        try:
            with np.load(folder / "records.npz") as arrays:
                meta = _from_json_array(arrays["meta"])
                if meta.get("format") != _FORMAT:
                    return None
                data = {k: arrays[k] for k in arrays.files}
            with np.load(folder / "bm25" / "matrix.npz") as m:
                if _from_json_array(m["build_id"]) != meta["build_id"]:
                    log.warning("Ignoring the BM25 cache in %s: bm25/ belongs to another index", folder)
                    return None
                matrix = ScoreMatrix(m["data"], m["indices"], m["indptr"], int(m["num_docs"]), float(meta["k1"]))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt, never a failed question
            log.warning("Ignoring the unreadable BM25 cache in %s: %s: %s", folder, type(exc).__name__, exc)
            return None
        tokens = TokenTable(list(TextColumn.from_arrays(data, "vocab")), data["token_ptr"], data["token_ids"])
        entries = TokenTable(list(TextColumn.from_arrays(data, "entry_vocab")), data["entry_ptr"], data["entry_ids"])
        index = cls(RecordColumns.from_arrays(data), tokens, entries, matrix, meta["fingerprint"], bool(meta["typos"]),
                    meta["token_key"], meta["build_id"], revision=str(meta.get("revision", "")))
        problem = index.inconsistency()
        if problem:
            log.warning("Ignoring the BM25 cache in %s: %s", folder, problem)
            return None
        return index

    def inconsistency(self) -> str | None:
        """Why the arrays do not belong together (None when they do): a damaged or mixed cache would
        otherwise index past the records (IndexError on every question, until someone deletes it)."""
        n, vocab, m = len(self.columns), len(self.tokens.vocab), self.matrix
        problem = self.columns.inconsistency()
        if problem:
            return problem
        for name, table in (("token table", self.tokens), ("FAQ entry token table", self.entries)):
            problem = table.inconsistency(n)
            if problem:
                return f"{name} {problem}"
        if m.num_docs != n:
            return f"BM25 has {m.num_docs} documents, the records {n}"
        if len(m.indptr) != vocab + 1 or m.indptr[-1] != len(m.indices) or len(m.data) != len(m.indices):
            return "BM25 score matrix does not match its vocabulary"
        if len(m.indices) and int(m.indices.max()) >= n:
            return "BM25 score matrix points past the records"
        return None

    # --- search -------------------------------------------------------------------------------
    def query_tokens(self, question: str) -> list[str]:
        return morphemes(question, typos=self.typos)

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Coverage-normalised BM25 for every record: the share of the question's IDF mass matched.

        Raw BM25 has no fixed scale; dividing by what a record of average length containing every
        query term once would score (Lucene variant: Σ idf / (1 + k1); unknown terms count with the
        largest IDF) gives about 1.0 for a full match and much less for a question that only shares
        a common word, which keeps the hybrid score calibrated.
        """
        n = len(self.columns)
        if n == 0 or not tokens:
            return np.zeros(n, dtype=np.float32)
        vocab = self.vocab_dict
        raw = self.matrix.scores([vocab[t] for t in tokens if t in vocab])
        full_match = sum(self._idf(t) for t in tokens) / (1.0 + self.matrix.k1)
        return raw / np.float32(max(full_match, 1e-9))

    def _idf(self, token: str) -> float:
        n = len(self.columns)
        df = self.doc_freq.get(token, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, question: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        scores = self.scores(self.query_tokens(question))
        if where:
            scores = scores * self.mask(where)
        return [self.hit(i, float(scores[i])) for i in top_positions(scores, k)]

    def mask(self, where: Mapping[str, Any]) -> np.ndarray:
        """Read-only boolean mask of the records matching `where`, computed once per filter and index."""
        key = json.dumps(where, sort_keys=True, ensure_ascii=False, default=str)
        found = self._masks.get(key)
        if found is None:
            found = self.columns.mask(where)
            found.flags.writeable = False
            if len(self._masks) >= _MASKS_KEPT:
                self._masks.pop(next(iter(self._masks)))
            self._masks[key] = found
        return found

    def token_sets(self, record_ids: Sequence[str]) -> list[tuple[frozenset[str], frozenset[str]] | None]:
        """Each record's own tokens, and those together with its FAQ's main question's and answer's, as the
        decision reads them (None for a record this index does not hold yet)."""
        out: list[tuple[frozenset[str], frozenset[str]] | None] = []
        for row in self.position.lookup(record_ids):
            if row < 0:
                out.append(None)
                continue
            out.append(_kept(self._token_sets, row, self._token_sets_of))
        return out

    def _token_sets_of(self, row: int) -> tuple[frozenset[str], frozenset[str]]:
        own = self.tokens.ids[self.tokens.ptr[row]:self.tokens.ptr[row + 1]].tolist()
        entry = self.entries.ids[self.entries.ptr[row]:self.entries.ptr[row + 1]].tolist()
        words = frozenset(self.tokens.vocab[t] for t in own)
        return words, words.union(self.entries.vocab[t] for t in entry)

    def hit(self, i: int, score: float) -> Hit:
        """Record i as a hit. Decoded hits are kept (bounded): the same few hundred records come back
        question after question, and decoding one costs more than copying it with a new score. The
        metadata dict is shared between hits of the same record, which never change it."""
        decoded = _kept(self._decoded, i, lambda row: Hit.of(self.records.ids[row], self.columns.texts[row],
                                                               self.records.metadatas[row], 0.0))
        return decoded.rescored(score)


K = TypeVar("K")
V = TypeVar("V")


def _kept(cache: dict[K, V], key: K, make: Callable[[K], V]) -> V:
    """cache[key], made and kept on first use; a cache of _DECODED_KEPT entries is emptied first (bounded memory)."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _DECODED_KEPT:
            cache.clear()
        found = cache[key] = make(key)
    return found


def _tokenise(texts: list[str], typos: bool) -> list[list[str]]:
    """Kiwi once per distinct text (the slow step: a few thousand texts per second per core)."""
    distinct = [t for t in dict.fromkeys(texts) if t]
    tokens = dict(zip(distinct, morphemes_batch(distinct, typos=typos))) if distinct else {}
    return [tokens.get(t, []) for t in texts]


def _tokenise_records(texts: list[str], metadatas: Sequence[Mapping[str, Any]], typos: bool
                      ) -> tuple[list[list[str]], list[list[str]]]:
    """Each record's own tokens, and the distinct tokens of its FAQ's main question and answer (the decision
    reads them as a set; a long answer repeats many), from one _tokenise call: the variants of an FAQ share
    both, and its main question is usually one of the variants' own text."""
    pairs = [related_texts(meta or {}) for meta in metadatas]
    flat = _tokenise(texts + [text for pair in pairs for text in pair], typos)
    n = len(texts)
    return flat[:n], [list(dict.fromkeys(flat[n + 2 * i] + flat[n + 2 * i + 1])) for i in range(len(pairs))]


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def _from_json_array(array: np.ndarray) -> Any:
    return json.loads(array.tobytes().decode("utf-8"))


def top_positions(scores: np.ndarray, k: int) -> list[int]:
    """Positions of the k best positive scores, best first.

    At 1M records a full argpartition costs ~10 ms; the k-th best of a strided sample is a floor that
    at least k scores reach, so one vectorised compare leaves a few thousand candidates (exact).
    """
    candidates = np.flatnonzero(scores > 0) if len(scores) <= 64 * k else None
    if candidates is None:
        sample = scores[:: len(scores) // (32 * k)]
        floor = float(np.partition(sample, len(sample) - k)[len(sample) - k])
        candidates = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    if len(candidates) > k:
        candidates = candidates[np.argpartition(-scores[candidates], k)[:k]]
    return [int(i) for i in candidates[np.argsort(-scores[candidates], kind="stable")]]


def cache_folder(settings: StoreSettings) -> Path:
    """Beside the embedded Chroma folder; in server mode, a cache folder named for the server."""
    if settings.host:
        name = f"bm25-{settings.host}-{settings.port}-{settings.collection}".replace(":", "_").replace("/", "_")
        return settings.cache_dir / name
    return settings.path.parent / f"{settings.path.name}-bm25" / settings.collection


def fetch_records(store: Store, ids: list[str]) -> StoredRecords:
    """Records by id from Chroma, in batches (one `get` with 100k ids overflows SQLite's variable limit)."""
    out = StoredRecords([], [], [])
    for start in range(0, len(ids), _FETCH_BATCH):
        for hit in store.hits(ids[start: start + _FETCH_BATCH]).values():
            out.ids.append(hit.record_id)
            out.texts.append(hit.text)
            out.metadatas.append(hit.metadata)
    return out


def _appended_since(base: LexicalIndex, store: Store, settings: LexicalSettings, fingerprint: str) -> LexicalIndex | None:
    """base plus the records written since its revision: one filtered read instead of listing every id
    (seconds at 1M records). Enough when it accounts for the store's count (nothing deleted meanwhile);
    None for a store written before records carried stamps."""
    if not base.revision.isdigit():
        return None
    since = int(base.revision) - _STAMP_MARGIN_NS  # writes in flight at the last sync, and another replica's slower clock
    return base.appended(store.written_since(since), settings, fingerprint)


def load_or_build(
    store: Store, settings: LexicalSettings, typos: bool = False, current: LexicalIndex | None = None,
    rebuild: bool = False,
) -> LexicalIndex:
    """The index for what THIS process's store holds now: `current` (in memory) or the disk cache when
    their fingerprint matches the store's count and revision; else `current` (or the disk cache) brought
    up to date with the store's ids (only new records tokenised); else a full build. Then cached.

    The disk cache is only a shortcut: it is accepted when its fingerprint is the one computed from
    this process's store and it holds exactly that many consistent records. rebuild skips both.
    """
    count, revision = store.state()
    key = tokeniser_key(typos)
    fingerprint = f"{count}-{revision}-k1={settings.k1}-b={settings.b}-{key}"
    if not rebuild and current is not None and current.fingerprint == fingerprint:
        return current
    folder = cache_folder(store.settings)
    cached = None if rebuild else LexicalIndex.load(folder)
    if cached is not None and cached.fingerprint == fingerprint and len(cached) == count:
        return cached
    base = next((i for i in (current, cached) if i is not None and i.token_key == key), None) if not rebuild else None
    started = time.perf_counter()
    if base is None:
        log.info("Building the kiwi-BM25 index from %d stored records", count)
        index = LexicalIndex.build(store.all_records(), settings, fingerprint, typos)
    else:
        index = _appended_since(base, store, settings, fingerprint)
        if index is None or len(index) != count:  # no stamps, or something was deleted too: list every id
            index = (base if index is None else index).updated(store.ids(), lambda ids: fetch_records(store, ids), settings, fingerprint)
    index.revision = revision
    log.info("BM25 index of %d records ready in %.2fs", len(index), time.perf_counter() - started)
    # A few new records are not worth rewriting a 1M-record cache (~2 s) inside a question: a process
    # starting from the older cache tokenises just those again.
    if base is None or len(index) <= _SAVE_ALWAYS_BELOW or index.unsaved >= _SAVE_AFTER:
        try:
            index.save(folder)
            index.unsaved = 0
        except OSError as exc:  # a read-only cache folder (or a replica saving at the same moment) must not stop answering
            log.warning("Could not save the BM25 cache to %s: %s", folder, exc)
    return index
