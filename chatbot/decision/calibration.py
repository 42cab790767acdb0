"""Labelled question files (answer.calibration_files) as decision-model rows, beside the operators' labels.

A file is in the evaluation format (`question` + `expected_id`, `expected_answer` or `expected_source`;
nothing expected = not for us). Each question becomes a labelled row: right when the retriever's top
candidate is the expected FAQ (or a passage of the expected file), and an empty expectation an
out-of-scope row. Real users' wordings teach P what the store-derived rows cannot (short, colloquial
paraphrases), so it is less under-confident on them.
"""
from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from chatbot.store import StoredRecords

log = logging.getLogger(__name__)


class CalibrationFiles:
    """The labels of the configured files, re-read only when a file changes (its size and mtime)."""

    def __init__(self, paths: Sequence[str | Path], records: Callable[[], StoredRecords]) -> None:
        self.paths = [Path(p) for p in paths]
        self.records = records  # the store's records, read only for files that give expected answers as text
        self._key: tuple | None = None
        self._labels: list[tuple[str, str]] = []

    def labels(self) -> list[tuple[str, str]]:
        """(question, expected FAQ id or `source:FILE`; "" = not for us), in file order."""
        key = tuple(_stamp(p) for p in self.paths)
        if key != self._key:
            self._labels, self._key = read_labels(self.paths, self.records), key
        return self._labels


def read_labels(paths: Sequence[Path], records: Callable[[], StoredRecords]) -> list[tuple[str, str]]:
    """Every answerable or out-of-scope question of the files; one that several FAQs answer is skipped
    (a row needs one right answer). A missing or malformed file is logged and skipped: the model still builds."""
    from chatbot.evaluation.cases import read_cases  # the evaluation's reader (imported late: it imports the answer layer)

    out: list[tuple[str, str]] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                header = set(next(csv.reader(handle), []))
            cases = read_cases(path, records() if "expected_answer" in header else None)
        except (OSError, ValueError, csv.Error) as exc:
            log.warning("Calibration file %s skipped: %s", path, exc)
            continue
        ambiguous = 0
        for case in cases:
            if case.answerable and len(case.expected) != 1:
                ambiguous += 1
                continue
            out.append((case.question, next(iter(case.expected)) if case.answerable else ""))
        if ambiguous:
            log.info("Calibration file %s: %d questions with no single expected answer skipped", path, ambiguous)
    return out


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
