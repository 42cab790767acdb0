"""Housekeeping of the ONNX export cache: each export folder records when it was last loaded, and a new
export deletes the folders beside it that no process has loaded for a while.

Why: an export is keyed by the model folder's contents and the export format, so a retrained model
written over its folder, or a new export format, leaves the old folder behind (~1 GB for e5-small with
its fused graph), and a server on a closed network fills its disk one retraining at a time. A folder
is only deleted when it is ours (it holds ``export.json``, written last by a finished export) and was
neither exported nor loaded within the configured days; a process still serving from it holds its
graph in memory, and one started on it later exports again.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

EXPORT_MARK = "export.json"  # written when an export is complete
USED_MARK = ".last-used"  # touched at every load


def mark_used(directory: Path) -> None:
    """Records that a process loaded this export now (best effort: a read-only cache keeps everything)."""
    try:
        (directory / USED_MARK).touch()
    except OSError as exc:
        log.debug("could not mark %s as used (%s)", directory, exc)


def last_used(directory: Path) -> float | None:
    """When this export was last loaded or written (epoch seconds); None for a folder that is not a finished export."""
    if not (directory / EXPORT_MARK).is_file():
        return None
    return max(p.stat().st_mtime for p in (directory / EXPORT_MARK, directory / USED_MARK) if p.is_file())


def prune_unused(keep: Path, days: float) -> list[Path]:
    """Deletes the finished exports beside ``keep`` not loaded for ``days`` (0 = never); returns what went."""
    if days <= 0 or not keep.parent.is_dir():
        return []
    cutoff = time.time() - days * 86_400
    removed = []
    for folder in sorted(keep.parent.iterdir()):
        if folder == keep or not folder.is_dir() or folder.is_symlink():
            continue
        used = last_used(folder)
        if used is None or used >= cutoff:
            continue
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("could not delete the unused ONNX export %s (%s)", folder, exc)
            continue
        log.info("deleted the ONNX export %s, unused for %.0f days (%.0f MB)", folder, (time.time() - used) / 86_400,
                 size / 1e6)
        removed.append(folder)
    return removed
