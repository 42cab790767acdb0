"""Idempotent sync of one source's records into the store: plan what changed, then write new, delete stale.

Crash safety: new records are encoded and written first (batch by batch), stale records are deleted
last. A run killed at any point leaves every previously stored record in place (plus some of the
new ones); because ids come from content, a rerun skips what was already written and finishes the
job without duplicates.

Counting (per source; the unit is an FAQ entry for FAQ files and a chunk position for documents):
an *item* is identified by its group key: the FAQ id (`faq_id`) of an FAQ record, or the
`chunk_index` of a document chunk. Compare the set of record ids each item has in the store
before the sync with the set it has in the file:

    added      items in the file whose key is not stored for this source
    updated    items stored and in the file, with a different set of record ids (answer, category,
               a question variant or chunk text changed: only the changed records are re-encoded)
    unchanged  items stored and in the file with exactly the same record ids (nothing encoded)
    removed    items stored for this source whose key is no longer in the file (all their records deleted)
    rejected   rows (or whole files, or PDF pages) that could not be read; reported, never stored

so added + updated + unchanged is the number of items in the file. `written` and `deleted` count
records (question variants / chunks) encoded+written and deleted; in a dry run they say what
would be.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from chatbot.encoder import Encoder
from chatbot.records import Record
from chatbot.store import Store
from ingest.records import item_key

WRITE_AFTER_S = 0.03  # how long a batch's write waits for the next batch's encoding to get going

log = logging.getLogger(__name__)

COUNT_NAMES = ("added", "updated", "unchanged", "removed", "rejected")
COUNT_LABELS = {"added": "추가", "updated": "갱신", "unchanged": "그대로", "removed": "삭제", "rejected": "거부"}
StopCheck = Callable[[], bool]


class IngestCancelled(RuntimeError):
    """The caller's should_stop said stop: raised between files and batches, never between a write and its
    source's deletions, so every stored record is still there and a rerun finishes the job."""

    def __init__(self) -> None:
        super().__init__(
            "색인을 중단했습니다. 저장된 레코드는 지우지 않았고, 다시 실행하면 이어서 완료합니다 "
            "(ingest cancelled: nothing stored was deleted; rerun to finish)"
        )


def stop_after(seconds: float) -> StopCheck:
    """A should_stop for a time limit: true once `seconds` have passed since this call."""
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _check_stop(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise IngestCancelled()


@dataclass
class SyncCounts:
    """What a sync did (or, in a dry run, would do) to one source; see the module docstring."""

    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: int = 0
    written: int = 0
    deleted: int = 0
    error: str | None = None  # the file could not be read at all: its stored records were left alone

    def __str__(self) -> str:
        counts = " · ".join(f"{COUNT_LABELS[name]} {name} {getattr(self, name):,}" for name in COUNT_NAMES)
        line = f"{self.source}: {counts} (레코드 records +{self.written:,} −{self.deleted:,})"
        return f"{line} — 읽지 못함, 저장된 레코드 유지 (not read; stored records kept)" if self.error else line

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __iadd__(self, other: "SyncCounts") -> "SyncCounts":
        for name in (*COUNT_NAMES, "written", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class SyncPlan:
    """The difference between a source's stored records and its records from the file."""

    source: str
    counts: SyncCounts
    to_write: list[Record]
    to_delete: list[str]


def _where(source: str, kind: str | None) -> dict[str, Any]:
    return {"$and": [{"source": source}, {"kind": kind}]} if kind else {"source": source}


def stored_groups(store: Store, where: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """id → (source, group key) of the stored records matching `where`."""
    return {
        record_id: (str(meta.get("source", "")), item_key(meta) or f"id:{record_id}")
        for record_id, meta in store.iter_metadata(where)
    }


def plan_sync(
    store: Store, source: str, records: Sequence[Record], *, kind: str | None = None, rejected: int = 0,
    reencode: bool = False,
) -> SyncPlan:
    """Compare the file's records with what the store holds for the source (and kind); writes nothing."""
    unique: dict[str, Record] = {}
    for record in records:
        unique.setdefault(record.id, record)
    kind = kind or (next(iter(unique.values())).kind if unique else None)
    existing = stored_groups(store, _where(source, kind))
    old: dict[str, set[str]] = defaultdict(set)
    for record_id, (_, key) in existing.items():
        old[key].add(record_id)
    new: dict[str, set[str]] = defaultdict(set)
    for record in unique.values():
        new[item_key(record.metadata) or f"id:{record.id}"].add(record.id)
    counts = SyncCounts(source, rejected=rejected)
    for key, ids in new.items():
        if key not in old:
            counts.added += 1
        elif old[key] == ids:
            counts.unchanged += 1
        else:
            counts.updated += 1
    counts.removed = sum(1 for key in old if key not in new)
    to_write = [r for r in unique.values() if reencode or r.id not in existing]
    to_delete = sorted(set(existing) - set(unique))
    counts.written, counts.deleted = len(to_write), len(to_delete)
    return SyncPlan(source, counts, to_write, to_delete)


def apply_plan(
    store: Store, encoder: Encoder, plan: SyncPlan, *, batch_size: int,
    on_written: Callable[[int], Any] | None = None, should_stop: StopCheck | None = None,
) -> SyncCounts:
    """Encode and upsert the new records batch by batch, then delete the stale ones.

    Records go in length order (batches of similar length waste little on padding, as one big
    encode call would) and each batch is written to Chroma while the next one is encoded. The next
    batch's encoding is asked for before this one's is done (encoded_batches), so its texts queue
    behind this one's on the encoder's lanes instead of waiting for this call's last run. The write
    starts WRITE_AFTER_S after the next encoding: embedded Chroma holds the GIL for a whole upsert,
    and begun first it kept the encoder from tokenising and starting its runs (which release the
    GIL) until it was done, leaving a core idle for most of every write.
    should_stop is asked before every batch and before the deletion: IngestCancelled, nothing deleted.
    """
    todo = sorted(plan.to_write, key=lambda r: (r.kind, len(r.text)))
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-write") as writer, \
            closing(encoded_batches(encoder, batches, should_stop)) as encoded_in_order:
        pending: Future[int] | None = None
        for number, encoded in enumerate(encoded_in_order, start=1):
            _finish(pending, on_written)
            more = number < len(batches)  # the last write has no encoding to make way for
            pending = writer.submit(_write, store, [encoded], WRITE_AFTER_S if more else 0.0)
        _finish(pending, on_written)
    _check_stop(should_stop)
    store.delete(plan.to_delete)
    return plan.counts


def encoded_batches(
    encoder: Encoder, batches: list[list[Record]], should_stop: StopCheck | None = None
) -> Iterator[tuple[list[Record], np.ndarray]]:
    """Each batch with its vectors, in order, the next batch's encoding already asked for: its texts are
    tokenised and queued on the encoder's lanes while this one's last runs finish, so no lane idles
    between calls (two A/B runs at 2,000 and 4,000 records: +1-2 % ingestion throughput). At most two
    calls are in flight; should_stop is asked before each batch is handed out."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-encode") as pool:
        ahead = deque(pool.submit(encoder.encode_records, batch) for batch in batches[:2])
        for number, batch in enumerate(batches):
            _check_stop(should_stop)
            vectors = ahead.popleft().result()
            if number + 2 < len(batches):
                ahead.append(pool.submit(encoder.encode_records, batches[number + 2]))
            yield batch, vectors


def _write(store: Store, encoded: list[tuple[list[Record], np.ndarray]], after_s: float = 0.0) -> int:
    if after_s:
        time.sleep(after_s)
    for part, vectors in encoded:
        store.upsert(part, vectors)
    return sum(len(part) for part, _ in encoded)


def _finish(pending: Future[int] | None, on_written: Callable[[int], Any] | None) -> None:
    """Waits for the previous write (re-raising its error) and reports it."""
    if pending is not None:
        written = pending.result()
        if on_written:
            on_written(written)


def sync_source(
    store: Store, encoder: Encoder, source: str, records: Sequence[Record], *, dry_run: bool = False,
    batch_size: int, kind: str | None = None, rejected: int = 0, reencode: bool = False, show_progress: bool = False,
) -> SyncCounts:
    """Make the store hold exactly `records` for `source` (of `kind`): write new ones first, delete stale last.

    Records whose id is already stored are left alone (not re-encoded) unless `reencode`. Note that
    an empty `records` removes the whole source; `ingest_paths` never syncs a file that gave nothing.
    """
    from tqdm.auto import tqdm

    plan = plan_sync(store, source, records, kind=kind, rejected=rejected, reencode=reencode)
    if dry_run:
        return plan.counts
    with tqdm(total=len(plan.to_write), unit="rec", desc=source, disable=not show_progress or not plan.to_write) as bar:
        return apply_plan(store, encoder, plan, batch_size=batch_size, on_written=bar.update)


# --------------------------------------------------------------------------------------------
# Files → records
# --------------------------------------------------------------------------------------------
