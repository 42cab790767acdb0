"""The operator's FAQs in the database: the current state of each, and an audit trail of every change.

A row is either the operator's own FAQ (override_of NULL) or a full copy of a file's FAQ with the
operator's changes (override_of = that file's source name). Each change writes the new state and an
audit row (who, when, action, before/after JSON) in one transaction, so neither exists without the other.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from chatbot.questionlog.db import write_transaction
from chatbot.questionlog.entries import utcnow
from chatbot.questionlog.schema import operator_audit, operator_faqs

WHO_MAX = 100


@dataclass(frozen=True)
class OperatorFaq:
    """One FAQ as the operator source will carry it."""

    faq_id: str
    question: str
    answer: str
    category: str | None = None
    alternatives: tuple[str, ...] = ()
    override_of: str | None = None
    updated_at: datetime = field(default_factory=utcnow)
    updated_by: str = "operator"

    def content(self) -> dict[str, Any]:
        """What the audit trail records: the FAQ without the bookkeeping."""
        data = asdict(self)
        data["alternatives"] = list(self.alternatives)
        for key in ("updated_at", "updated_by"):
            data.pop(key)
        return data


def who_of(name: str | None) -> str:
    """The operator's name as stored: trimmed, bounded, "operator" when none was given."""
    return (name or "").strip()[:WHO_MAX] or "operator"


class EditLog:
    """Reads and writes operator FAQs; every write leaves an audit row."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[OperatorFaq]:
        with self.engine.connect() as conn:
            return [_faq(row) for row in conn.execute(select(operator_faqs).order_by(operator_faqs.c.faq_id)).mappings()]

    def get(self, faq_id: str) -> OperatorFaq | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(operator_faqs).where(operator_faqs.c.faq_id == faq_id)).mappings().first()
        return _faq(row) if row else None

    def save(self, faq: OperatorFaq, who: str, action: str, before: OperatorFaq | None = None) -> OperatorFaq:
        """Insert or replace the FAQ and record the change; `before` is what it replaces when the database
        has no row yet (the file's version of an FAQ being overridden)."""
        faq = replace(faq, updated_at=utcnow(), updated_by=who_of(who))
        values = {**faq.content(), "updated_at": faq.updated_at, "updated_by": faq.updated_by}
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(operator_faqs).where(operator_faqs.c.faq_id == faq.faq_id)).mappings().first()
            if row is None:
                conn.execute(insert(operator_faqs).values(**values))
            else:
                before = _faq(row)
                conn.execute(update(operator_faqs).where(operator_faqs.c.faq_id == faq.faq_id).values(**values))
            _audit(conn, faq.updated_by, action, faq.faq_id, before.content() if before else None, faq.content())
        return faq

    def delete(self, faq_id: str, who: str, action: str = "delete") -> OperatorFaq | None:
        """Removes the operator's row (an override: back to the file's version); None when there was none."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(operator_faqs).where(operator_faqs.c.faq_id == faq_id)).mappings().first()
            if row is None:
                return None
            conn.execute(delete(operator_faqs).where(operator_faqs.c.faq_id == faq_id))
            _audit(conn, who_of(who), action, faq_id, _faq(row).content(), None)
        return _faq(row)

    def audit(self, faq_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: id, time, who, action, faq_id, before, after."""
        query = select(operator_audit).order_by(operator_audit.c.time.desc(), operator_audit.c.id).limit(limit)
        if faq_id is not None:
            query = query.where(operator_audit.c.faq_id == faq_id)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


def _audit(conn: Any, who: str, action: str, faq_id: str | None, before: Any, after: Any) -> None:
    conn.execute(insert(operator_audit).values(
        id=uuid.uuid4().hex, time=utcnow(), who=who, action=action[:32], faq_id=faq_id, before=before, after=after,
    ))


def _faq(row: Any) -> OperatorFaq:
    values = dict(row)
    values["alternatives"] = tuple(values.get("alternatives") or ())
    return OperatorFaq(**values)
