"""The records a lexical index points at, stored column by column in numpy arrays.

At 1M records, Python lists of texts and metadata dicts cost seconds to load (JSON) and hundreds of
MB: here ids are one fixed-width bytes array (sorted once for lookups), texts and per-record metadata
JSON are UTF-8 blobs with offsets decoded only for the records a question shows, and the metadata
keys questions filter on are integer code columns, so a category filter is one vectorised compare.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import numpy as np

FILTER_KEYS = ("category", "kind", "source")  # metadata keys with a code column (vectorised filters)
T = TypeVar("T")


class _Lazy(Sequence[T], Generic[T]):
    """A read-only sequence whose items are decoded one at a time by `_item`."""

    def _item(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self._item(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._item(i)


@dataclass(frozen=True)
class TextColumn(_Lazy[str]):
    """UTF-8 strings in one byte blob; string i is blob[starts[i]:ends[i]], decoded when asked for.

    Start/end pairs (not offsets) let a cache update drop records without copying the blob; the
    bytes of dropped records are squeezed out by compacted() (at save time) once they are half of it.
    """

    blob: np.ndarray  # uint8
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64

    @classmethod
    def of(cls, texts: Sequence[str]) -> "TextColumn":
        encoded = [t.encode("utf-8") for t in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets[:-1], offsets[1:])

    def __len__(self) -> int:
        return len(self.starts)

    def _item(self, i: int) -> str:
        return self.blob[self.starts[i]: self.ends[i]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data = self.blob.tobytes()
        return (data[a:b].decode("utf-8") for a, b in zip(self.starts.tolist(), self.ends.tolist()))

    def take(self, rows: np.ndarray) -> "TextColumn":
        return TextColumn(self.blob, self.starts[rows], self.ends[rows])

    def extended(self, other: "TextColumn") -> "TextColumn":
        shift = len(self.blob)
        return TextColumn(np.concatenate([self.blob, other.blob]), np.concatenate([self.starts, other.starts + shift]),
                          np.concatenate([self.ends, other.ends + shift]))

    def compacted(self) -> "TextColumn":
        """Without the bytes no string points at, when they are at least half of the blob."""
        lengths = self.ends - self.starts
        if 2 * int(lengths.sum()) > len(self.blob):
            return self
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(self.starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        return TextColumn(self.blob[gather], offsets[:-1], offsets[1:])

    def inconsistency(self) -> str | None:
        if len(self.ends) != len(self.starts):
            return "text starts and ends differ in length"
        if len(self.starts) and (self.starts.min() < 0 or self.ends.max() > len(self.blob) or np.any(self.ends < self.starts)):
            return "text bounds point outside their blob"
        return None

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        column = self.compacted()
        return {f"{name}_blob": column.blob, f"{name}_starts": column.starts, f"{name}_ends": column.ends}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], name: str) -> "TextColumn":
        return cls(arrays[f"{name}_blob"], arrays[f"{name}_starts"], arrays[f"{name}_ends"])


class MetadataColumn(_Lazy[dict[str, Any]]):
    """Per-record metadata dicts, kept as JSON in a TextColumn."""

    def __init__(self, json_texts: TextColumn) -> None:
        self.json = json_texts

    def __len__(self) -> int:
        return len(self.json)

    def _item(self, i: int) -> dict[str, Any]:
        return json.loads(self.json[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (json.loads(t) for t in self.json)


class IdColumn(_Lazy[str]):
    """Record ids as a fixed-width bytes array."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    def _item(self, i: int) -> str:
        return bytes(self.raw[i]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (v.decode("utf-8") for v in self.raw.tolist())

    def take(self, rows: Sequence[int]) -> list[str]:
        """The ids at these positions, decoded in one pass (a question reads ~50 of them)."""
        return [v.decode("utf-8") for v in self.raw[np.asarray(rows, dtype=np.int64)].tolist()]


class Positions(Mapping[str, int]):
    """record id → position by binary search over 64-bit id hashes sorted once (no 1M-entry dict;
    sorting the hashes is ~20× faster than sorting the id strings). Matches are checked on the
    bytes, and a hash collision falls back to sorting the ids themselves, so lookups stay exact."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw
        self.keys = id_keys(raw)
        self.order = np.argsort(self.keys, kind="stable")
        self.sorted = self.keys[self.order]
        if np.any(np.diff(self.sorted) == 0):  # two ids, one hash (or a repeated id): compare strings
            self.keys = None
            self.order = np.argsort(raw, kind="stable")
            self.sorted = raw[self.order]

    def _find(self, record_id: object) -> int:
        """One id: hashed in Python (struct words), not through a numpy pass per word for a one-row array."""
        if not isinstance(record_id, str) or not len(self.sorted):
            return -1
        raw = record_id.encode("utf-8")
        probe = raw if self.keys is None else np.uint64(id_key(raw))
        i = min(int(np.searchsorted(self.sorted, probe)), len(self.sorted) - 1)
        row = int(self.order[i])
        return row if self.sorted[i] == probe and self.raw[row] == raw else -1

    def rows_of(self, raw_ids: np.ndarray) -> np.ndarray:
        """Position of each id (bytes array), −1 for ids not here: one vectorised binary search."""
        if not len(self.sorted):
            return np.full(len(raw_ids), -1, dtype=np.int64)
        probe = raw_ids if self.keys is None else id_keys(raw_ids)
        i = np.minimum(np.searchsorted(self.sorted, probe), len(self.sorted) - 1)
        rows = self.order[i]
        found = (self.sorted[i] == probe) & (self.raw[rows] == raw_ids)
        return np.where(found, rows, -1).astype(np.int64)

    def lookup(self, ids: Sequence[str]) -> list[int]:
        """Position of each id, −1 for ids not here: what a question needs for its ~50 candidates in one
        vectorised search (per-id lookups cost ~10 µs each in Python)."""
        return self.rows_of(id_array(ids)).tolist() if len(ids) else []

    def __contains__(self, record_id: object) -> bool:
        return self._find(record_id) >= 0

    def __getitem__(self, record_id: str) -> int:
        found = self._find(record_id)
        if found < 0:
            raise KeyError(record_id)
        return found

    def __len__(self) -> int:
        return len(self.raw)

    def __iter__(self) -> Iterator[str]:
        return iter(IdColumn(self.raw))


_OFFSET, _PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, 0xFFFFFFFFFFFFFFFF


def id_key(data: bytes) -> int:
    """id_keys() of one id."""
    padded = data + b"\0" * (-len(data) % 8)
    h = _OFFSET
    for (word,) in struct.iter_unpack("=Q", padded):
        if word:
            h = ((h ^ word) * _PRIME) & _MASK
    return h


def id_keys(raw: np.ndarray) -> np.ndarray:
    """An FNV-style hash over each id's bytes taken 8 at a time (the store's 20-byte content-hash ids:
    3 numpy passes instead of 20). All-zero words are skipped: they can only be padding, so the
    array's width does not matter."""
    width = raw.dtype.itemsize
    words = -(-width // 8)
    data = np.zeros((len(raw), words * 8), dtype=np.uint8)
    data[:, :width] = np.ascontiguousarray(raw).view(np.uint8).reshape(len(raw), width)
    data = data.view(np.uint64)
    h = np.full(len(raw), _OFFSET, dtype=np.uint64)
    prime = np.uint64(_PRIME)
    with np.errstate(over="ignore"):
        for j in range(words):
            word = data[:, j]
            h = np.where(word == 0, h, (h ^ word) * prime)
    return h


@dataclass(frozen=True)
class Codes:
    """One filterable metadata key: codes[i] indexes values (JSON of the value), −1 where the key is absent."""

    codes: np.ndarray  # int32
    values: list[str]

    @classmethod
    def of(cls, raw_values: Sequence[Any], values: list[str] | None = None) -> "Codes":
        values = list(values or [])
        index = {v: i for i, v in enumerate(values)}
        codes = [-1 if v is None else index.setdefault(json.dumps(v, ensure_ascii=False), len(index)) for v in raw_values]
        values.extend(list(index)[len(values):])
        return cls(np.asarray(codes, dtype=np.int32), values)

    def equal_to(self, value: Any) -> np.ndarray:
        key = json.dumps(value, ensure_ascii=False)
        if key not in self.values:
            return np.zeros(len(self.codes), dtype=bool)
        return self.codes == self.values.index(key)


@dataclass(frozen=True)
class RecordColumns:
    """ids, texts and metadata of the indexed records, parallel and positional."""

    ids: np.ndarray  # bytes, fixed width
    texts: TextColumn
    metadata_json: TextColumn
    filters: dict[str, Codes]

    @classmethod
    def of(cls, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> "RecordColumns":
        dumped = [json.dumps(dict(m), ensure_ascii=False, separators=(",", ":")) for m in metadatas]
        filters = {key: Codes.of([m.get(key) for m in metadatas]) for key in FILTER_KEYS}
        return cls(id_array(ids), TextColumn.of(texts), TextColumn.of(dumped), filters)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> "RecordColumns":
        filters = {k: Codes(c.codes[rows], c.values) for k, c in self.filters.items()}
        return RecordColumns(self.ids[rows], self.texts.take(rows), self.metadata_json.take(rows), filters)

    def extended(self, other: Sequence[str], texts: Sequence[str], metadatas: Sequence[Mapping[str, Any]]) -> "RecordColumns":
        """These records followed by new ones (filter codes extended over the same value lists)."""
        new = RecordColumns.of(other, texts, metadatas)
        filters = {}
        for key, codes in self.filters.items():
            grown = Codes.of([m.get(key) for m in metadatas], codes.values)
            filters[key] = Codes(np.concatenate([codes.codes, grown.codes]), grown.values)
        width = max(self.ids.dtype.itemsize, new.ids.dtype.itemsize, 1)
        ids = np.concatenate([self.ids.astype(f"S{width}"), new.ids.astype(f"S{width}")])
        return RecordColumns(ids, self.texts.extended(new.texts), self.metadata_json.extended(new.metadata_json), filters)

    def mask(self, where: Mapping[str, Any]) -> np.ndarray:
        """Records whose metadata equals every key of `where`; keys without a code column decode all metadata."""
        out = np.ones(len(self), dtype=bool)
        for key, value in where.items():
            if key in self.filters:
                out &= self.filters[key].equal_to(value)
            else:
                out &= np.fromiter((m.get(key) == value for m in MetadataColumn(self.metadata_json)), bool, len(self))
        return out

    # --- persistence as named arrays (numpy .npz) ---------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"ids": self.ids, **self.texts.arrays("texts"), **self.metadata_json.arrays("meta")}
        for key, codes in self.filters.items():
            out[f"filter_{key}_codes"] = codes.codes
            out.update(TextColumn.of(codes.values).arrays(f"filter_{key}"))
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "RecordColumns":
        filters = {key: Codes(arrays[f"filter_{key}_codes"], list(TextColumn.from_arrays(arrays, f"filter_{key}")))
                   for key in FILTER_KEYS}
        return cls(arrays["ids"], TextColumn.from_arrays(arrays, "texts"), TextColumn.from_arrays(arrays, "meta"), filters)

    def inconsistency(self) -> str | None:
        n = len(self.ids)
        if len(self.texts) != n or len(self.metadata_json) != n or any(len(c.codes) != n for c in self.filters.values()):
            return "record columns of different lengths"
        problem = self.texts.inconsistency() or self.metadata_json.inconsistency()
        if problem:
            return problem
        if any(len(c.codes) and int(c.codes.max(initial=-1)) >= len(c.values) for c in self.filters.values()):
            return "filter codes point past their values"
        return None


def id_array(ids: Sequence[str]) -> np.ndarray:
    """Ids as fixed-width bytes (ASCII ids, the usual content hashes, convert without a Python loop)."""
    if not len(ids):
        return np.array([], dtype="S1")
    try:
        return np.asarray(ids, dtype=str).astype(bytes)
    except UnicodeEncodeError:
        encoded = [i.encode("utf-8") for i in ids]
        return np.array(encoded, dtype=f"S{max(len(e) for e in encoded) or 1}")
