"""QuestionLog: record() costs microseconds on the request path; a background thread writes in batches.

The id (128 random bits, hex) is made by the caller's thread, so feedback can name its question before the row
exists. Entries go on a bounded queue; when it is full the entry is dropped with a (rate-limited)
warning instead of blocking a request. The writer masks, then inserts a batch per transaction every
`interval_s` or `batch_size` entries. Feedback naming a question the database does not have yet
(it may sit in another replica's queue) waits up to `link_wait_s` for it, then is stored unlinked.
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Union

from sqlalchemy import Engine, insert, select

from chatbot.questionlog import reader, retention
from chatbot.questionlog.db import write_transaction
from chatbot.questionlog.entries import FeedbackEntry, FeedbackRow, QuestionEntry, QuestionRow, Stats
from chatbot.questionlog.masking import Masker
from chatbot.questionlog.rows import Mask, feedback_row, question_row
from chatbot.questionlog.schema import feedback, questions

log = logging.getLogger(__name__)

WARN_EVERY_S = 10.0


class _RandomIds:
    """32-hex-digit ids of 128 bits from the OS's random source, read 256 at a time: one read per id
    (uuid4) is a system call, and under load every one of them is a round trip for the GIL."""

    def __init__(self, per_read: int = 256) -> None:
        self.per_read = per_read
        self._lock = threading.Lock()
        self._pool: list[str] = []

    def __call__(self) -> str:
        with self._lock:
            if not self._pool:
                raw = os.urandom(16 * self.per_read)
                self._pool = [raw[i: i + 16].hex() for i in range(0, len(raw), 16)]
            return self._pool.pop()


new_id = _RandomIds()


@dataclass
class _Control:
    """A flush or stop request travelling through the queue behind the entries it must cover."""

    stop: bool = False
    done: threading.Event = field(default_factory=threading.Event)


_Item = Union[tuple[str, QuestionEntry], tuple[str, FeedbackEntry], _Control]


@dataclass
class _Pending:
    questions: list[tuple[str, QuestionEntry]] = field(default_factory=list)
    feedback: list[tuple[str, FeedbackEntry, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.questions) + len(self.feedback)


class QuestionLog:
    """The question log of one process: non-blocking record(), batched background writes, reads."""

    def __init__(
        self,
        engine: Engine,
        mask: Mask | None = None,
        *,
        batch_size: int = 100,
        interval_s: float = 0.2,
        queue_size: int = 10_000,
        link_wait_s: float = 5.0,
        retention_days: int = 180,
        start: bool = True,
    ) -> None:
        self.engine = engine
        self.mask: Mask = mask or Masker()
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.link_wait_s = link_wait_s
        self.retention_days = retention_days
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._last_warning = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False
        if start:
            self.start()

    # -- request path -------------------------------------------------------------------------

    def record(self, entry: QuestionEntry) -> str:
        """Queues a question; returns its id at once (pass it to record_feedback later)."""
        return self._put(entry)

    def record_feedback(self, entry: FeedbackEntry) -> str:
        """Queues a rating or click; returns the feedback row's id."""
        return self._put(entry)

    def _put(self, entry: QuestionEntry | FeedbackEntry) -> str:
        item_id = new_id()
        if self._closed:
            return item_id
        try:
            self._queue.put_nowait((item_id, entry))  # type: ignore[arg-type]
        except queue.Full:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY_S:
                self._last_warning = now
                log.warning("question log queue is full: dropped %d entries so far", self.dropped)
        return item_id

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="question-log-writer", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Blocks until everything recorded before the call is in the database (tests, shutdown)."""
        self._control(_Control(), timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Writes what is queued, stops the writer, releases the connections. Safe to call twice."""
        if self._closed:
            return
        self._control(_Control(stop=True), timeout)
        self._closed = True
        if self._thread is not None:
            self._thread.join(timeout)
        atexit.unregister(self.close)
        self.engine.dispose()

    def _control(self, control: _Control, timeout: float | None) -> None:
        if self._closed:
            return
        self.start()
        self._queue.put(control, timeout=timeout)
        if not control.done.wait(timeout):
            raise TimeoutError("the question log writer did not finish in time")

    def __enter__(self) -> "QuestionLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        pending = _Pending()
        due = float("inf")
        while True:
            wait = None if not pending else max(0.0, due - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if isinstance(item, _Control):
                self._write(pending, force=True)
                item.done.set()
                if item.stop:
                    return
                continue
            if item is not None:
                if not pending:
                    due = time.monotonic() + self.interval_s
                item_id, entry = item
                if isinstance(entry, QuestionEntry):
                    pending.questions.append((item_id, entry))
                else:
                    pending.feedback.append((item_id, entry, time.monotonic()))
            if pending and (len(pending) >= self.batch_size or time.monotonic() >= due):
                self._write(pending, force=False)
                due = time.monotonic() + self.interval_s

    def _write(self, pending: _Pending, force: bool) -> None:
        """Inserts the pending questions, then the feedback whose question exists (or waited long enough)."""
        if not pending:
            return
        try:
            with write_transaction(self.engine) as conn:
                if pending.questions:
                    conn.execute(insert(questions), [question_row(i, e, self.mask) for i, e in pending.questions])
                wanted = {e.question_id for _, e, _ in pending.feedback if e.question_id}
                known = set(conn.execute(select(questions.c.id).where(questions.c.id.in_(wanted))).scalars()) if wanted else set()
                now = time.monotonic()
                ready, waiting = [], []
                for fid, entry, seen in pending.feedback:
                    if not entry.question_id or entry.question_id in known:
                        ready.append(feedback_row(fid, entry, self.mask))
                    elif force or now - seen >= self.link_wait_s:
                        ready.append({**feedback_row(fid, entry, self.mask), "question_id": None})
                    else:
                        waiting.append((fid, entry, seen))
                if ready:
                    conn.execute(insert(feedback), ready)
            pending.questions.clear()
            pending.feedback[:] = waiting
        except Exception:  # noqa: BLE001 - the log must never take the writer thread down
            self.failed += len(pending)
            log.exception("question log: could not write %d entries; dropped", len(pending))
            pending.questions.clear()
            pending.feedback.clear()

    # -- reads and upkeep (see reader.py, retention.py) ----------------------------------------

    def questions(self, since: datetime, outcomes: Iterable[str] | None = None, limit: int = 100) -> list[QuestionRow]:
        return reader.questions_since(self.engine, since, outcomes, limit)

    def feedback_for(self, question_id: str) -> list[FeedbackRow]:
        return reader.feedback_for(self.engine, question_id)

    def stats(self, since: datetime) -> Stats:
        return reader.stats(self.engine, since)

    def purge(self, days: int | None = None) -> retention.PurgeResult:
        return retention.purge(self.engine, self.retention_days if days is None else days)
