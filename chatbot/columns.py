"""The records a lexical index points at, stored column by column in numpy arrays.

At 1M records, Python lists of texts and metadata dicts cost seconds to load (JSON) and hundreds of
MB: here ids are one fixed-width bytes array (sorted once for lookups), texts and per-record metadata
JSON are UTF-8 blobs with offsets decoded only for the records a question shows, and the metadata
keys questions filter on are integer code columns, so a category filter is one vectorised compare.
"""
from __future__ import annotations

import json
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
    """UTF-8 strings as one byte blob plus offsets; item i is decoded when asked for."""

    blob: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len + 1

    @classmethod
    def of(cls, texts: Sequence[str]) -> "TextColumn":
        encoded = [t.encode("utf-8") for t in texts]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _item(self, i: int) -> str:
        return self.blob[self.offsets[i]: self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data = self.blob.tobytes()
        bounds = self.offsets.tolist()
        return (data[a:b].decode("utf-8") for a, b in zip(bounds, bounds[1:]))

    def take(self, rows: np.ndarray) -> "TextColumn":
        return TextColumn(*ragged_take(self.blob, self.offsets, rows))

    def extended(self, other: "TextColumn") -> "TextColumn":
        return TextColumn(np.concatenate([self.blob, other.blob]),
                          np.concatenate([self.offsets, self.offsets[-1] + other.offsets[1:]]))


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


class Positions(Mapping[str, int]):
    """record id → position, by binary search over the ids sorted once (no 1M-entry dict)."""

    def __init__(self, raw: np.ndarray, order: np.ndarray) -> None:
        self.raw, self.order, self.sorted = raw, order, raw[order]

    def _find(self, record_id: object) -> int:
        if not isinstance(record_id, str):
            return -1
        return int(self.rows_of(np.array([record_id.encode("utf-8")]))[0])

    def rows_of(self, raw_ids: np.ndarray) -> np.ndarray:
        """Position of each id (bytes array), −1 for ids not here: one vectorised binary search."""
        if not len(self.sorted):
            return np.full(len(raw_ids), -1, dtype=np.int64)
        i = np.minimum(np.searchsorted(self.sorted, raw_ids), len(self.sorted) - 1)
        return np.where(self.sorted[i] == raw_ids, self.order[i], -1).astype(np.int64)

    def after_update(self, keep: np.ndarray, appended: np.ndarray) -> np.ndarray:
        """The id order of `self.raw[keep]` (keep ascending) followed by `appended` ids, merged in O(n)
        from this order instead of sorting 1M ids again."""
        kept = np.zeros(len(self.raw), dtype=bool)
        kept[keep] = True
        new_position = np.cumsum(kept) - 1
        kept_order = new_position[self.order[kept[self.order]]]
        appended_order = np.argsort(appended, kind="stable")
        at = np.searchsorted(self.raw[keep][kept_order], appended[appended_order])
        return np.insert(kept_order, at, len(keep) + appended_order)

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
        out = {"ids": self.ids, "texts_blob": self.texts.blob, "texts_offsets": self.texts.offsets,
               "meta_blob": self.metadata_json.blob, "meta_offsets": self.metadata_json.offsets}
        for key, codes in self.filters.items():
            out[f"filter_{key}_codes"] = codes.codes
            values = TextColumn.of(codes.values)
            out[f"filter_{key}_blob"], out[f"filter_{key}_offsets"] = values.blob, values.offsets
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "RecordColumns":
        filters = {
            key: Codes(arrays[f"filter_{key}_codes"],
                       list(TextColumn(arrays[f"filter_{key}_blob"], arrays[f"filter_{key}_offsets"])))
            for key in FILTER_KEYS
        }
        return cls(arrays["ids"], TextColumn(arrays["texts_blob"], arrays["texts_offsets"]),
                   TextColumn(arrays["meta_blob"], arrays["meta_offsets"]), filters)

    def inconsistency(self) -> str | None:
        n = len(self.ids)
        if len(self.texts) != n or len(self.metadata_json) != n or any(len(c.codes) != n for c in self.filters.values()):
            return "record columns of different lengths"
        for blob_column in (self.texts, self.metadata_json):
            if len(blob_column.offsets) and (blob_column.offsets[0] != 0 or blob_column.offsets[-1] != len(blob_column.blob)
                                             or np.any(np.diff(blob_column.offsets) < 0)):
                return "text offsets do not match their blob"
        if any(len(c.codes) and int(c.codes.max(initial=-1)) >= len(c.values) for c in self.filters.values()):
            return "filter codes point past their values"
        return None


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


def id_array(ids: Sequence[str]) -> np.ndarray:
    encoded = [i.encode("utf-8") for i in ids]
    width = max((len(e) for e in encoded), default=1) or 1
    return np.array(encoded, dtype=f"S{width}")
