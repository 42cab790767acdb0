"""Builds the process's QuestionLog from Settings: open the database, migrate, import old feedback once."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from chatbot.questionlog.db import open_engine
from chatbot.questionlog.importer import import_feedback_jsonl
from chatbot.questionlog.masking import masker_from_settings
from chatbot.questionlog.schema import migrate
from chatbot.questionlog.writer import QuestionLog
from chatbot.settings import Settings

log = logging.getLogger(__name__)


def open_log(settings: Settings, *, start: bool = True) -> QuestionLog | None:
    """The question log the settings describe, ready to record(); None when log.enabled is false."""
    cfg = settings.log
    if not cfg.enabled:
        return None
    engine = open_engine(cfg.url)
    migrate(engine)
    mask = masker_from_settings(cfg.mask, cfg.mask_patterns, cfg.mask_extra)
    if cfg.import_feedback:
        import_feedback_jsonl(engine, settings.app.feedback_log, mask)
    return QuestionLog(
        engine,
        mask,
        batch_size=cfg.batch_size,
        interval_s=cfg.flush_interval_ms / 1000,
        queue_size=cfg.queue_size,
        retention_days=cfg.retention_days,
        start=start,
    )


@contextmanager
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    """The log database at its current schema, for a command's run (no writer thread, no import)."""
    engine = open_engine(settings.log.url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
