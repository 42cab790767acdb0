"""One-time import of the old feedback JSONL (chatbot.feedback) into the feedback table.

The import and the row in `imports` that records it commit together, so it runs once per database
even when replicas start at the same moment (the second one's insert of the record fails and rolls
back). Lines are split on "\\n" only: JSON may carry U+2028 and friends raw, which str.splitlines
would cut. Lines that are not a JSON object with a question and an up/down rating are skipped.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from chatbot.questionlog.db import write_transaction
from chatbot.questionlog.entries import FeedbackEntry
from chatbot.questionlog.rows import Mask, feedback_row
from chatbot.questionlog.schema import feedback, imports

log = logging.getLogger(__name__)

IMPORT_NAME = "feedback-jsonl"


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int
    already: bool = False


def import_feedback_jsonl(engine: Engine, path: Path, mask: Mask, name: str = IMPORT_NAME) -> ImportResult | None:
    """Imports `path` unless this database has done so already; None when there is no file yet."""
    path = Path(path)
    with engine.connect() as conn:
        if conn.execute(select(imports.c.name).where(imports.c.name == name)).first() is not None:
            return ImportResult(0, 0, already=True)
    if not path.is_file():
        return None
    rows, skipped = _parse(path.read_bytes().decode("utf-8", errors="replace"), mask)
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                insert(imports).values(name=name, time=datetime.now(timezone.utc), imported=len(rows), skipped=skipped)
            )
            if rows:
                conn.execute(insert(feedback), rows)
    except IntegrityError:
        return ImportResult(0, 0, already=True)  # another process imported it between our check and insert
    log.info("question log: imported %d feedback lines from %s (%d skipped)", len(rows), path, skipped)
    return ImportResult(len(rows), skipped)


def _parse(content: str, mask: Mask) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    skipped = 0
    for line in content.split("\n"):
        if not line.strip():
            continue
        entry = _entry(line)
        if entry is None:
            skipped += 1
        else:
            rows.append(feedback_row(uuid.uuid4().hex, entry, mask, source="import"))
    return rows, skipped


def _entry(line: str) -> FeedbackEntry | None:
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("rating") not in ("up", "down"):
            return None
        question = data["question"]
        score = data.get("score")
        return FeedbackEntry(
            kind="rating",
            rating=data["rating"],
            question=str(question),
            target_id=_opt_str(data.get("answer_id")),
            answer_type=_opt_str(data.get("answer_type")),
            score=float(score) if score is not None else None,
            mode=_opt_str(data.get("mode")),
            channel=str(data.get("channel") or "web"),
            time=_utc(data.get("time")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _utc(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time missing")
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
