"""Evaluation questions: reading the questions CSV into Cases, and how hits are labelled against them."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from chatbot.records import hit_label, source_label  # noqa: F401 - re-exported
from chatbot.store import StoredRecords
from chatbot.text import normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """One evaluation question; `expected` empty means the fallback is correct."""

    question: str
    expected: frozenset[str] = frozenset()
    expected_label: str = ""
    category: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.expected_label)


def read_cases(path: Path, records: StoredRecords | None = None, category_col: str | None = None) -> list[Case]:
    """Rows of QUESTIONS.csv; `expected_answer` texts are mapped to the FAQ ids stored with that answer."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        rows = list(reader)
    if "question" not in columns or not ({"expected_id", "expected_answer", "expected_source"} & columns):
        raise ValueError(
            f"{path}: needs a `question` column and an `expected_id`, `expected_answer` or `expected_source` column"
        )
    if category_col and category_col not in columns:
        raise ValueError(f"{path}: no column {category_col!r} (columns: {', '.join(sorted(columns))})")
    by_answer = _faq_ids_by_answer(records) if "expected_answer" in columns and records is not None else {}
    cases: list[Case] = []
    for row in rows:
        question = (row.get("question") or "").strip()
        if not question:
            continue
        category = (row.get(category_col) or "").strip() or None if category_col else None
        expected_id = (row.get("expected_id") or "").strip()
        expected_answer = (row.get("expected_answer") or "").strip()
        expected_source = Path((row.get("expected_source") or "").strip()).name
        if expected_source:  # a document question: any passage of that file answers it
            cases.append(Case(question, frozenset({source_label(expected_source)}), expected_source, category))
        elif expected_id:
            cases.append(Case(question, frozenset({expected_id}), expected_id, category))
        elif expected_answer:
            ids = by_answer.get(normalise(expected_answer), frozenset())
            if not ids:
                log.warning("No stored FAQ has the expected answer of %r; it will count as a miss", question)
            cases.append(Case(question, ids, expected_answer, category))
        else:
            cases.append(Case(question, frozenset(), "", category))
    return cases


def _faq_ids_by_answer(records: StoredRecords) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for meta in records.metadatas:
        if meta.get("faq_id") and meta.get("answer"):
            out.setdefault(normalise(str(meta["answer"])), set()).add(str(meta["faq_id"]))
    return {k: frozenset(v) for k, v in out.items()}
