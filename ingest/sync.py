"""Idempotent sync of one source's records into the store, and `ingest_paths`, the one ingestion entry point.

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
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chatbot.encoder import Encoder, load_encoder
from chatbot.records import ReadResult, Record, Rejection
from chatbot.settings import Settings
from chatbot.store import Store
from ingest.chunking import chunk_document
from ingest.doc_readers import DocumentReadError, iter_document_files, read_document
from ingest.faq_readers import FAQ_SUFFIXES, FaqFormatError, read_faq
from ingest.limits import FileTooLargeError, ReadLimits
from ingest.records import chunk_records, faq_records, group_key

log = logging.getLogger(__name__)

IngestKind = Literal["faq", "docs"]
Progress = Callable[[float, str], Any]
COUNT_NAMES = ("added", "updated", "unchanged", "removed", "rejected")
_LABELS = {"added": "추가", "updated": "갱신", "unchanged": "그대로", "removed": "삭제", "rejected": "거부"}
_READ_SHARE = 0.1  # progress fraction spent reading files; the rest is encoding + writing
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
        counts = " · ".join(f"{_LABELS[name]} {name} {getattr(self, name):,}" for name in COUNT_NAMES)
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


@dataclass
class IngestReport:
    """One ingestion run: counts per source, every rejection, and notes worth showing the operator."""

    kind: str
    dry_run: bool = False
    rebuild: bool = False
    sources: dict[str, SyncCounts] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    store_count: int | None = None

    def totals(self) -> dict[str, int]:
        """added/updated/unchanged/removed/rejected/written/deleted summed over sources."""
        total = self.total()
        return {name: getattr(total, name) for name in (*COUNT_NAMES, "written", "deleted")}

    def total(self) -> SyncCounts:
        total = SyncCounts("합계 total")
        for counts in self.sources.values():
            total += counts
        return total

    @property
    def ok(self) -> bool:
        return not self.rejected


# --------------------------------------------------------------------------------------------
# One source
# --------------------------------------------------------------------------------------------
def _where(source: str, kind: str | None) -> dict[str, Any]:
    return {"$and": [{"source": source}, {"kind": kind}]} if kind else {"source": source}


def stored_groups(store: Store, where: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """id → (source, group key) of the stored records matching `where`."""
    return {
        record_id: (str(meta.get("source", "")), group_key(meta) or f"id:{record_id}")
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
        new[group_key(record.metadata) or f"id:{record.id}"].add(record.id)
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
    encode call would) and each batch is written to Chroma while the next one is encoded.
    should_stop is asked before every batch and before the deletion: IngestCancelled, nothing deleted.
    """
    todo = sorted(plan.to_write, key=lambda r: (r.kind, len(r.text)))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-write") as writer:
        pending: Future[int] | None = None
        for start in range(0, len(todo), batch_size):
            _check_stop(should_stop)
            batch = todo[start : start + batch_size]
            encoded = []
            for kind in dict.fromkeys(r.kind for r in batch):
                part = [r for r in batch if r.kind == kind]
                encode = encoder.encode_questions if kind == "faq" else encoder.encode_passages
                encoded.append((part, encode([r.text for r in part])))
            _finish(pending, on_written)
            pending = writer.submit(_write, store, encoded)
        _finish(pending, on_written)
    _check_stop(should_stop)
    store.delete(plan.to_delete)
    return plan.counts


def _write(store: Store, encoded: list[tuple[list[Record], np.ndarray]]) -> int:
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
def expand_paths(kind: IngestKind, paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded recursively to the files of the kind's formats (sorted)."""
    if kind == "docs":
        return list(iter_document_files(paths))
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FAQ_SUFFIXES and not p.name.startswith((".", "~$"))]
            out.extend(sorted(found, key=lambda p: p.relative_to(path).as_posix()))
        else:
            out.append(path)
    return out


def read_records(kind: IngestKind, path: Path, settings: Settings) -> tuple[list[Record], ReadResult]:
    """One file → its records and what the reader rejected; raises when the file cannot be read at all."""
    limits = ReadLimits.from_settings(settings.ingest)
    if kind == "faq":
        result = read_faq(path, limits)
        return faq_records(result.items), result
    result = read_document(path, limits)
    chunks = chunk_document(result.items, settings.ingest.chunk_size, settings.ingest.chunk_overlap)
    return chunk_records(chunks), result


def _nothing_usable(kind: IngestKind, result: ReadResult) -> str:
    if kind == "docs" and not result.rejected:
        what = "텍스트를 찾지 못했습니다 (no text found; 스캔한 PDF라면 OCR이 필요합니다)"
    elif result.rejected:
        what = "사용할 수 있는 행이 없습니다 (no usable rows)" if kind == "faq" else "사용할 수 있는 내용이 없습니다 (nothing usable)"
    else:
        what = "FAQ 행이 없습니다 (no rows)"
    return f"{what}; 이 출처의 저장된 레코드는 그대로 둡니다 (stored records of this source kept)"


def faq_id_clashes(store: Store | None, loaded: dict[str, list[Record]], *, shown: int = 5) -> list[str]:
    """Notes for FAQ ids found in more than one file (of this run, or stored from another file).

    Retrieval groups records by FAQ id, so two files sharing an id mix their answers: worth a warning,
    not a rejection (moving an FAQ from one file to another passes through this state).
    """
    owners: dict[str, set[str]] = defaultdict(set)
    for source, records in loaded.items():
        for record in records:
            owners[str(record.metadata["faq_id"])].add(source)
    ids = sorted(owners)
    for start in range(0, len(ids) if store is not None else 0, 500):  # only the ids of this run are looked up
        where = {"$and": [{"kind": "faq"}, {"faq_id": {"$in": ids[start : start + 500]}}]}
        for source, key in stored_groups(store, where).values():
            if source not in loaded:
                owners[key.removeprefix("faq:")].add(source)
    by_files: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for faq_id, sources in owners.items():
        if len(sources) > 1:
            by_files[tuple(sorted(sources))].append(faq_id)
    notes = []
    for sources, clashing in sorted(by_files.items()):
        listed = ", ".join(map(repr, clashing[:shown])) + (f" 외 {len(clashing) - shown}개 (and {len(clashing) - shown} more)"
                                                          if len(clashing) > shown else "")
        notes.append(
            f"같은 FAQ ID가 여러 파일에 있습니다 (same FAQ id in several files): {' · '.join(sources)}: {listed}. "
            f"검색에서 한 FAQ로 묶여 답이 섞일 수 있으니 ID를 고쳐 주세요 (retrieval groups them as one FAQ; give them distinct ids)"
        )
    return notes


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------
def open_store(settings: Settings, encoder: Encoder, *, reset_on_mismatch: bool = False) -> tuple[Store, bool]:
    """The configured collection; with reset_on_mismatch a collection built by another encoder is dropped.

    Returns (store, was_reset).
    """
    store = Store(settings.store, encoder.identity(), reset_on_mismatch=reset_on_mismatch)
    return store, store.was_reset


def ingest_paths(
    settings: Settings,
    kind: IngestKind,
    paths: Sequence[str | Path],
    *,
    dry_run: bool = False,
    rebuild: bool = False,
    progress: Progress | None = None,
    show_progress: bool = False,
    encoder: Encoder | None = None,
    store: Store | None = None,
    should_stop: StopCheck | None = None,
) -> IngestReport:
    """Read every file, then sync each readable source; the one function the CLI, web app and tests use.

    - kind "faq": FAQ tables (.csv .tsv .jsonl .json .xlsx); kind "docs": documents, folders expanded.
    - A file that cannot be read (missing, undecodable, no question/answer columns, corrupt,
      unsupported) or gives nothing usable is reported as a rejection and its source is NOT synced,
      so a bad re-upload never wipes the good records already stored. Row-level rejections do not
      stop the rest of the file.
    - Two files with the same name in one run are one source: the second is rejected.
    - rebuild: every record of this kind is re-encoded, and, when every file was read, records of
      this kind from sources not in this run are deleted. If the collection was built by another
      encoder, it is dropped entirely first (every kind: re-ingest the other kind too). Records of
      the other kind are otherwise untouched, so `faq --rebuild` then `docs --rebuild` rebuilds both.
    - When no file could be read, neither the model nor the store is touched (store_count stays None).
    - progress(fraction, message) is called as files are read and records written.
    - should_stop() (e.g. a cancel button, or stop_after(seconds)) is asked before each file and each
      batch and before any deletion; when true, IngestCancelled is raised with nothing stored deleted
      (sources finished before it are complete; a rerun completes the rest).
    - Raises EncoderMismatchError (without rebuild) and the encoder's ModelNotFoundError.
    """
    if kind not in ("faq", "docs"):
        raise ValueError(f"kind must be 'faq' or 'docs', not {kind!r}")
    report = IngestReport(kind=kind, dry_run=dry_run, rebuild=rebuild)
    say = progress or (lambda fraction, message: None)
    loaded, every_file_read = read_files(kind, paths, settings, report, say, should_stop)
    if not loaded:  # nothing readable: leave the store (and the model) alone
        say(1.0, "완료 (done)")
        return report
    _check_stop(should_stop)
    encoder = encoder or load_encoder(settings.encoder)
    if store is None:
        store, was_reset = open_store(settings, encoder, reset_on_mismatch=rebuild and not dry_run)
        if was_reset:
            report.notes.append(
                "인코더가 바뀌어 컬렉션 전체를 새로 만들었습니다: 다른 종류(FAQ/문서)도 다시 색인하세요 "
                "(collection rebuilt for the new encoder; re-ingest the other kind too)"
            )
    plans = plan_sources(store, kind, loaded, report, prune=rebuild and every_file_read)
    if not dry_run:
        apply_plans(store, encoder, plans, settings.ingest.batch_size, say, show_progress, should_stop)
    report.store_count = store.count()
    say(1.0, "완료 (done)")
    return report


def read_files(
    kind: IngestKind, paths: Sequence[str | Path], settings: Settings, report: IngestReport,
    say: Progress, should_stop: StopCheck | None = None,
) -> tuple[dict[str, list[Record]], bool]:
    """Step 1, no model needed: records per readable source, and whether every file was read.

    Unreadable files and rows go into report.rejected (and report.sources) as they are found."""
    files = expand_paths(kind, paths)
    if not files:
        report.notes.append("색인할 파일이 없습니다 (no files found)")
    loaded: dict[str, list[Record]] = {}
    failed: set[str] = set()

    def reject_file(source: str, reason: str) -> None:
        report.rejected.append(Rejection(source, None, reason))
        counts = report.sources.setdefault(source, SyncCounts(source))
        counts.rejected += 1
        counts.error = counts.error or reason
        failed.add(source)

    for number, path in enumerate(files):
        source = path.name
        _check_stop(should_stop)
        say(_READ_SHARE * number / max(len(files), 1), f"{source} 읽는 중 (reading)")
        if source in loaded or source in failed:  # the first file of that name is the source; this one is not read
            report.rejected.append(Rejection(source, None, f"같은 이름의 파일이 이미 있습니다: {path} (duplicate file "
                                             f"name in this run; 출처는 파일 이름으로 구분되니 이름을 바꿔 주세요)"))
            report.sources[source].rejected += 1
            failed.add(source)  # not every file was read: --rebuild prunes nothing
            continue
        try:
            records, result = read_records(kind, path, settings)
        except FileNotFoundError:
            reject_file(source, f"파일이 없습니다 (file not found): {path}")
            continue
        except (FaqFormatError, DocumentReadError, FileTooLargeError) as exc:
            reject_file(source, str(exc).removeprefix(f"{source}: "))
            continue
        except Exception as exc:  # keep going with the other files; this one is reported
            log.exception("reading %s failed", path)
            reject_file(source, f"읽는 중 오류 (error while reading): {type(exc).__name__}: {exc}")
            continue
        report.rejected.extend(result.rejected)
        if not records:
            counts = report.sources.setdefault(source, SyncCounts(source))
            counts.rejected += len(result.rejected)
            whole_file = [r for r in result.rejected if r.line is None]
            if not result.items and len(result.rejected) == 1 and whole_file:
                counts.error = whole_file[0].reason  # e.g. an unsupported extension: the reader's reason says it all
                failed.add(source)
            else:
                reject_file(source, _nothing_usable(kind, result))
            continue
        loaded[source] = records
        report.sources[source] = SyncCounts(source, rejected=len(result.rejected))
    say(_READ_SHARE, "파일을 모두 읽었습니다 (files read)")
    return loaded, not failed


def plan_sources(
    store: Store, kind: IngestKind, loaded: dict[str, list[Record]], report: IngestReport, *, prune: bool
) -> list[SyncPlan]:
    """Step 2: what to write and delete per source; with prune (a rebuild that read every file),
    sources of this kind absent from the run are planned away too. Counts go into the report."""
    record_kind = "faq" if kind == "faq" else "doc"
    if kind == "faq":
        for note in faq_id_clashes(store, loaded):
            log.warning("%s", note)
            report.notes.append(note)
    plans: list[SyncPlan] = []
    for source, records in loaded.items():
        plans.append(plan_sync(store, source, records, kind=record_kind, rejected=report.sources[source].rejected,
                               reencode=report.rebuild))
    if prune:
        for source in sorted({s for s, _ in stored_groups(store, {"kind": record_kind}).values()} - set(loaded)):
            plans.append(plan_sync(store, source, [], kind=record_kind))
    for plan in plans:
        report.sources[plan.source] = plan.counts
    return plans


def apply_plans(
    store: Store, encoder: Encoder, plans: list[SyncPlan], batch_size: int, say: Progress,
    show_progress: bool = False, should_stop: StopCheck | None = None,
) -> None:
    """Step 3: write first, delete last (per source), with progress."""
    from tqdm.auto import tqdm

    total = sum(len(p.to_write) for p in plans)
    done = 0
    with tqdm(total=total, unit="rec", desc="encode+write", disable=not show_progress or not total, file=sys.stderr) as bar:
        for plan in plans:
            def on_written(n: int, source: str = plan.source) -> None:
                nonlocal done
                done += n
                bar.update(n)
                say(_READ_SHARE + (1 - _READ_SHARE) * done / max(total, 1), f"{source}: {done:,}/{total:,} 레코드 (records)")

            apply_plan(store, encoder, plan, batch_size=batch_size, on_written=on_written, should_stop=should_stop)
    if plans:
        store.mark_ingested(datetime.now(timezone.utc).isoformat())
