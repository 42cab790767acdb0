"""Tables and ordered migrations. The database records its version; opening applies what is missing.

MIGRATIONS[i] brings a database from version i to i+1, each in its own transaction together with
the row that records it, so a crash leaves a consistent version. Tables are defined here as they
are after the last migration (for queries); migrations spell out their own DDL, so later changes to
these definitions never rewrite history. Replicas opening one PostgreSQL database at once are
serialised by an advisory lock; SQLite by BEGIN IMMEDIATE.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.types import TypeDecorator

from chatbot.questionlog.db import write_transaction

log = logging.getLogger(__name__)

ID_LEN = 32  # uuid4().hex
_LOCK_KEY = 0x71_6C_6F_67  # "qlog": PostgreSQL advisory lock for migrations


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite (no time zones) stores naive UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("question-log times must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UtcDateTime, nullable=False),
)

questions = Table(
    "questions",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("time", UtcDateTime, nullable=False),
    Column("question", Text, nullable=False),
    Column("normalised", Text),
    Column("mode", String(16)),
    Column("outcome", String(16), nullable=False),
    Column("top", JSON),
    Column("p", Float),
    Column("latency_ms", Float),
    Column("category", String(200)),
    Column("session", String(64)),
    Column("channel", String(16), nullable=False),
    Index("ix_questions_time", "time"),
    Index("ix_questions_outcome_time", "outcome", "time"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("question_id", String(ID_LEN), ForeignKey("questions.id", ondelete="SET NULL")),
    Column("time", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("rating", String(8)),
    Column("target_id", String(200)),
    Column("question", Text),
    Column("answer_type", String(16)),
    Column("score", Float),
    Column("mode", String(16)),
    Column("channel", String(16), nullable=False),
    Column("session", String(64)),
    Column("source", String(16), nullable=False),
    Index("ix_feedback_question_id", "question_id"),
    Index("ix_feedback_time", "time"),
)

imports = Table(
    "imports",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("time", UtcDateTime, nullable=False),
    Column("imported", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
)

# --- the operator loop (migration 2): edits with their audit trail, labels, out-of-scope examples ---
operator_faqs = Table(
    "operator_faqs",
    metadata,
    Column("faq_id", String(200), primary_key=True),
    Column("override_of", String(200)),  # the source file of the FAQ this copy overrides; NULL = the operator's own FAQ
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("category", String(200)),
    Column("alternatives", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(100), nullable=False),
)

operator_audit = Table(
    "operator_audit",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("time", UtcDateTime, nullable=False),
    Column("who", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("faq_id", String(200)),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_operator_audit_time", "time"),
    Index("ix_operator_audit_faq_id", "faq_id"),
)

question_labels = Table(
    "question_labels",
    metadata,
    Column("question_id", String(ID_LEN), primary_key=True),  # no foreign key: a label outlives a purged question
    Column("time", UtcDateTime, nullable=False),
    Column("who", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # alternative | new_faq | answer | out_of_scope
    Column("faq_id", String(200)),
    Column("question", Text, nullable=False),
)

out_of_scope = Table(
    "out_of_scope",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("time", UtcDateTime, nullable=False),
    Column("who", String(100), nullable=False),
    Column("question", Text, nullable=False),
    Column("question_id", String(ID_LEN)),
)

Migration = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """Questions, feedback linked to them, and the record of one-time imports."""
    for table in (questions, feedback, imports):
        table.create(conn)


def _v2_operator(conn: Connection) -> None:
    """The operator loop: FAQ edits (current state + audit trail), inbox labels, out-of-scope examples."""
    conn.execute(text(
        "CREATE TABLE operator_faqs (faq_id VARCHAR(200) PRIMARY KEY, override_of VARCHAR(200), "
        "question TEXT NOT NULL, answer TEXT NOT NULL, category VARCHAR(200), alternatives JSON NOT NULL, "
        f"updated_at {_timestamp(conn)} NOT NULL, updated_by VARCHAR(100) NOT NULL)"
    ))
    conn.execute(text(
        f"CREATE TABLE operator_audit (id VARCHAR({ID_LEN}) PRIMARY KEY, time {_timestamp(conn)} NOT NULL, "
        "who VARCHAR(100) NOT NULL, action VARCHAR(32) NOT NULL, faq_id VARCHAR(200), before JSON, after JSON)"
    ))
    conn.execute(text("CREATE INDEX ix_operator_audit_time ON operator_audit (time)"))
    conn.execute(text("CREATE INDEX ix_operator_audit_faq_id ON operator_audit (faq_id)"))
    conn.execute(text(
        f"CREATE TABLE question_labels (question_id VARCHAR({ID_LEN}) PRIMARY KEY, time {_timestamp(conn)} NOT NULL, "
        "who VARCHAR(100) NOT NULL, kind VARCHAR(16) NOT NULL, faq_id VARCHAR(200), question TEXT NOT NULL)"
    ))
    conn.execute(text(
        f"CREATE TABLE out_of_scope (id VARCHAR({ID_LEN}) PRIMARY KEY, time {_timestamp(conn)} NOT NULL, "
        f"who VARCHAR(100) NOT NULL, question TEXT NOT NULL, question_id VARCHAR({ID_LEN}))"
    ))


def _timestamp(conn: Connection) -> str:
    """The column type UtcDateTime maps to: naive UTC text in SQLite, timestamptz in PostgreSQL."""
    return "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_operator)


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one()


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Applies the migrations this database lacks, in order; returns the versions applied (often none)."""
    applied: list[int] = []
    while True:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            schema_version.create(conn, checkfirst=True)
            version = current_version(conn)
            if version > len(migrations):
                raise RuntimeError(f"the question log is at schema version {version}; this code knows {len(migrations)}")
            if version == len(migrations):
                return applied
            migrations[version](conn)
            conn.execute(insert(schema_version).values(version=version + 1, applied_at=datetime.now(timezone.utc)))
            applied.append(version + 1)
            log.info("question log: applied schema migration %d (%s)", version + 1, migrations[version].__name__)
