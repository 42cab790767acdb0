"""BM25 as plain numpy arrays: morpheme tokens kept per record, and the score matrix built from them.

Why not bm25s' own `index()`: it starts from token strings every time, so one new FAQ in a 1M store
would re-tokenise and re-count everything. Here the tokens of every record are kept (a CSR of token
ids over a vocabulary), a change only tokenises new records, and the term-major score matrix is
rebuilt from the kept ids with a few vectorised numpy passes. The scoring is bm25s' default (Lucene)
variant, so scores are the ones bm25s gave (tests/test_lexical_incremental.py checks that).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenTable:
    """Tokens of each record: record r's token ids are ids[ptr[r]:ptr[r + 1]] (repeats kept: they are tf)."""

    vocab: list[str]
    ptr: np.ndarray  # int64, records + 1
    ids: np.ndarray  # int32

    @classmethod
    def from_lists(cls, tokens: Sequence[Sequence[str]], vocab: list[str] | None = None) -> "TokenTable":
        """Encode token lists over `vocab` (extended with new tokens; the list passed in is not changed)."""
        vocab = list(vocab or [])
        index = {t: i for i, t in enumerate(vocab)}
        flat = [index.setdefault(t, len(index)) for toks in tokens for t in toks]
        vocab.extend(list(index)[len(vocab):])
        ptr = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in tokens], out=ptr[1:])
        return cls(vocab, ptr, np.asarray(flat, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.ptr)

    def inconsistency(self, records: int) -> str | None:
        """Why this table cannot be the tokens of `records` records (None when it can): a damaged cache."""
        if len(self) != records or self.ptr[-1] != len(self.ids) or np.any(self.lengths() < 0):
            return "does not match the records"
        if len(self.ids) and int(self.ids.max()) >= len(self.vocab):
            return "points past its vocabulary"
        return None

    def take(self, rows: np.ndarray) -> "TokenTable":
        """The given records, in that order."""
        ids, ptr = ragged_take(self.ids, self.ptr, rows)
        return TokenTable(self.vocab, ptr, ids)

    def extended(self, tokens: Sequence[Sequence[str]]) -> "TokenTable":
        """These records followed by new ones, tokens encoded over the same (grown) vocabulary."""
        new = TokenTable.from_lists(tokens, self.vocab)
        return TokenTable(new.vocab, np.concatenate([self.ptr, self.ptr[-1] + new.ptr[1:]]),
                          np.concatenate([self.ids, new.ids]))

    def compacted(self) -> "TokenTable":
        """Drops vocabulary entries no record uses any more (left behind by deleted records)."""
        used = np.zeros(len(self.vocab), dtype=bool)
        used[self.ids] = True
        if used.all():
            return self
        remap = np.cumsum(used, dtype=np.int64) - 1
        vocab = [t for t, u in zip(self.vocab, used.tolist()) if u]
        return TokenTable(vocab, self.ptr, remap[self.ids].astype(np.int32))


@dataclass(frozen=True)
class ScoreMatrix:
    """Term-major BM25 scores: token t scores data[indptr[t]:indptr[t+1]] for records indices[...]."""

    data: np.ndarray  # float32
    indices: np.ndarray  # int32 record positions
    indptr: np.ndarray  # int64, vocabulary + 1
    num_docs: int
    k1: float

    @classmethod
    def build(cls, tokens: TokenTable, k1: float, b: float) -> "ScoreMatrix":
        """Lucene BM25 (bm25s' default): idf = ln(1 + (N − df + .5)/(df + .5)), tf/(tf + k1(1 − b + b·dl/avgdl))."""
        n, vocab = len(tokens), len(tokens.vocab)
        doc_len = tokens.lengths()
        rows = np.repeat(np.arange(n, dtype=np.int64), doc_len)
        # One sort of (token, record) keys groups the pairs term-major; run lengths are the tfs.
        keys, tf = np.unique(tokens.ids.astype(np.int64) * max(n, 1) + rows, return_counts=True)
        term, doc = np.divmod(keys, max(n, 1))
        df = np.bincount(term, minlength=vocab)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avg = float(doc_len.mean()) if n else 1.0
        norm = k1 * (1 - b + b * doc_len / max(avg, 1e-9))
        data = (idf[term] * tf / (tf + norm[doc])).astype(np.float32)
        indptr = np.zeros(vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        return cls(data, doc.astype(np.int32), indptr, n, k1)

    def doc_freqs(self) -> np.ndarray:
        return np.diff(self.indptr)

    def scores(self, token_ids: Sequence[int]) -> np.ndarray:
        """Summed BM25 of the given token ids (repeats count again, as in bm25s) for every record."""
        out = np.zeros(self.num_docs, dtype=np.float32)
        for t in token_ids:
            start, end = self.indptr[t], self.indptr[t + 1]
            out[self.indices[start:end]] += self.data[start:end]  # one record appears once per token
        return out


def ragged_take(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a ragged array (row r = values[offsets[r]:offsets[r + 1]]), in the given order.

    A cache update keeps long runs of consecutive rows (only deleted records are skipped), so runs
    are copied as slices; many short runs fall back to a vectorised element gather.
    """
    rows = np.asarray(rows, dtype=np.int64)
    lengths = np.diff(offsets)[rows]
    out_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    if len(breaks) < 10_000:
        bounds = zip(np.concatenate([[0], breaks]).tolist(), np.concatenate([breaks, [len(rows)]]).tolist())
        pieces = [values[offsets[rows[a]]: offsets[rows[b - 1] + 1]] for a, b in bounds if b > a]
        return (np.concatenate(pieces) if pieces else values[:0].copy()), out_offsets
    starts = np.repeat(offsets[:-1][rows] - out_offsets[:-1], lengths)
    return values[starts + np.arange(out_offsets[-1], dtype=np.int64)], out_offsets
