"""Ingestion reports as rows and one-line summaries (the page, the start-up log and the tests share them)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.doc_readers import DOC_SUFFIXES
from ingest.faq_readers import FAQ_SUFFIXES
from ingest.plan import COUNT_LABELS, COUNT_NAMES
from ingest.sync import IngestReport


def report_rows(*reports: IngestReport) -> list[list[Any]]:
    """One row per source: [source, added, updated, unchanged, removed, rejected]."""
    return [
        [source, *(getattr(counts, name) for name in COUNT_NAMES)]
        for report in reports
        for source, counts in report.sources.items()
    ]


def report_rejections(*reports: IngestReport) -> list[str]:
    """Each as `file:line: reason`."""
    return [str(r) for report in reports for r in report.rejected]


def summarise_report(*reports: IngestReport) -> str:
    totals = {name: sum(report.totals()[name] for report in reports) for name in COUNT_NAMES}
    return ", ".join(f"{COUNT_LABELS[name]} {totals[name]:,}" for name in COUNT_NAMES)


def split_by_kind(paths: Sequence[Path]) -> tuple[dict[str, list[Path]], list[Path]]:
    """Uploaded files → {"faq": […], "doc": […]} by extension (the two sets do not overlap), plus the unknown."""
    kinds: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    for path in paths:
        suffix = path.suffix.lower()
        kind = "faq" if suffix in FAQ_SUFFIXES else "doc" if suffix in DOC_SUFFIXES else None
        if kind is None:
            unknown.append(path)
        else:
            kinds.setdefault(kind, []).append(path)
    return kinds, unknown
