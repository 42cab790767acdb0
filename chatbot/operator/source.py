"""The operator FAQ source: the operator's FAQs written as `operator-edits.jsonl` and synced like any FAQ file.

Going through `Service.ingest` (the CLI's ingest_paths, under the service's ingest lock) keeps one
idempotent path into the store: only changed variants are re-encoded, and the retriever is refreshed
so an edit is answerable at once. With no operator FAQ left the file would be empty, which
ingest_paths (rightly) refuses to sync, so the source's records are then deleted directly.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatbot.operator.edits import OperatorFaq
from chatbot.records import OPERATOR_SOURCE


def source_rows(faqs: Sequence[OperatorFaq]) -> list[dict[str, Any]]:
    """Rows in the FAQ ingestion format (id, question, answer, alternatives, category)."""
    rows = []
    for faq in sorted(faqs, key=lambda f: f.faq_id):
        row: dict[str, Any] = {"id": faq.faq_id, "question": faq.question, "answer": faq.answer,
                               "alternatives": list(faq.alternatives)}
        if faq.category:
            row["category"] = faq.category
        rows.append(row)
    return rows


def write_source(faqs: Sequence[OperatorFaq], folder: Path) -> Path:
    path = Path(folder) / OPERATOR_SOURCE
    with path.open("w", encoding="utf-8") as handle:
        for row in source_rows(faqs):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def sync_operator_source(service: Any, faqs: Sequence[OperatorFaq]) -> str:
    """Makes the store's operator source hold exactly `faqs`; returns a one-line summary."""
    if not faqs:
        pipeline = service.require()
        ids = [record_id for record_id, _ in pipeline.store.iter_metadata({"source": OPERATOR_SOURCE})]
        pipeline.store.delete(ids)
        pipeline.retriever.refresh()
        return f"{OPERATOR_SOURCE}: removed {len(ids)} records"
    with tempfile.TemporaryDirectory(prefix="faqbot-operator-") as folder:
        report = service.ingest("faq", [write_source(faqs, Path(folder))])
    if report.rejected:
        raise RuntimeError("; ".join(str(r) for r in report.rejected[:5]))
    return str(report.sources.get(OPERATOR_SOURCE, report.total()))
