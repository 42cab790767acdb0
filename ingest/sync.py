"""`ingest_paths`, the one ingestion entry point (CLI, web app, tests): read files → plan per source → apply.

Reading needs no model; a file that cannot be read is reported and its source left untouched. The
per-source planning and the crash-safe write-new-first, delete-stale-last order live in ingest/plan.py.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from chatbot.encoder import Encoder, load_encoder
from chatbot.records import OPERATOR_SOURCE, Record
from ingest.items import ReadResult, Rejection
from chatbot.settings import Settings
from chatbot.store import Store
from ingest.chunking import chunk_document
from ingest.doc_readers import DocumentReadError, iter_document_files, read_document
from ingest.faq_readers import FAQ_SUFFIXES, FaqFormatError, read_faq
from ingest.limits import FileTooLargeError, ReadLimits
from ingest.plan import (  # noqa: F401 - IngestCancelled, stop_after, sync_source are part of this module's API
    COUNT_NAMES, IngestCancelled, StopCheck, SyncCounts, SyncPlan, _check_stop, apply_plan, plan_sync,
    stored_groups, stop_after, sync_source,
)
from ingest.records import chunk_records, faq_records

log = logging.getLogger(__name__)

IngestKind = Literal["faq", "doc"]  # the records' kinds; the CLI's `docs` subcommand is "doc"
Progress = Callable[[float, str], Any]
_READ_SHARE = 0.1  # progress fraction spent reading files; the rest is encoding + writing
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
def expand_paths(kind: IngestKind, paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expanded recursively to the files of the kind's formats (sorted)."""
    if kind == "doc":
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
    if kind == "doc" and not result.rejected:
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
        if source == OPERATOR_SOURCE:  # the operator source overrides FAQs by id on purpose (chatbot/operator)
            continue
        for record in records:
            owners[str(record.metadata["faq_id"])].add(source)
    ids = sorted(owners)
    for start in range(0, len(ids) if store is not None else 0, 500):  # only the ids of this run are looked up
        where = {"$and": [{"kind": "faq"}, {"faq_id": {"$in": ids[start : start + 500]}}]}
        for source, key in stored_groups(store, where).values():
            if source not in loaded and source != OPERATOR_SOURCE:
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

    - kind "faq": FAQ tables (.csv .tsv .jsonl .json .xlsx); kind "doc" ("docs" is accepted too): documents,
      folders expanded.
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
    kind = "doc" if kind == "docs" else kind  # type: ignore[assignment] - the CLI's subcommand name
    if kind not in ("faq", "doc"):
        raise ValueError(f"kind must be 'faq' or 'doc', not {kind!r}")
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
    if kind == "faq":
        for note in faq_id_clashes(store, loaded):
            log.warning("%s", note)
            report.notes.append(note)
    plans: list[SyncPlan] = []
    for source, records in loaded.items():
        plans.append(plan_sync(store, source, records, kind=kind, rejected=report.sources[source].rejected,
                               reencode=report.rebuild))
    if prune:
        # the operator's edits live in the question-log database and are synced by the app, not by files
        for source in sorted({s for s, _ in stored_groups(store, {"kind": kind}).values()} - set(loaded) - {OPERATOR_SOURCE}):
            plans.append(plan_sync(store, source, [], kind=kind))
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
