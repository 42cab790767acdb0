"""Micro-batching: many threads each asking for one vector get served by one batched encoder call.

A transformer encodes 32 short questions in far less than 32 × the time of one, so under concurrent
load (the web app runs each request on its own thread) one worker thread collects what is queued and
encodes it together. A lone request never waits: when nothing is queued and no call is running, it
runs on its caller's own thread, saving the two thread switches of a hand-off (0.1–1.1 ms per hybrid
question at 100k records in two A/B runs, with the lexical thread busy beside it); the short ``wait``
only applies while requests are already arriving together, to let the batch fill. One lock keeps the
calls one at a time, so a lone call never competes with a batch for the cores.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()


class BatcherClosedError(RuntimeError):
    """submit() after close()."""


class MicroBatcher(Generic[T]):
    """Collects single items from many threads and runs ``encode(items) -> rows`` on one worker thread."""

    def __init__(self, encode: Callable[[list[T]], np.ndarray], max_items: int = 32, wait_ms: float = 2.0,
                 name: str = "micro-batcher") -> None:
        if max_items < 1:
            raise ValueError("max_items must be ≥ 1")
        self._encode = encode
        self.max_items = max_items
        self.wait_s = max(0.0, wait_ms) / 1000.0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # held while encode runs, by the worker or by a lone caller
        self._closed = False
        self.calls = 0  # encode calls made (tests and benches read these)
        self.items = 0
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    def submit(self, item: T) -> Future:
        """A future holding this item's row (a 1-D array) or the exception ``encode`` raised."""
        future: Future = Future()
        with self._lock:  # no item may slip in after the stop marker
            if self._closed:
                raise BatcherClosedError("the micro-batcher is closed")
            self._queue.put((item, future))
        return future

    def __call__(self, item: T) -> np.ndarray:
        """This item's row: computed on this thread when the batcher is idle, else through the queue."""
        if self._queue.empty() and self._busy.acquire(blocking=False):
            try:
                if self._queue.empty() and not self._closed:
                    rows = self._checked(self._encode([item]), 1)
                    self._count(1)
                    return rows[0]
            finally:
                self._busy.release()
        return self.submit(item).result()

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish what is queued, then stop the worker. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout)

    def __enter__(self) -> "MicroBatcher[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ worker
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            with self._busy:  # what queued while a lone caller's call ran joins this batch
                batch, stopping = self._collect([first])
                self._run(batch)

    def _collect(self, batch: list) -> tuple[list, bool]:
        """Take what is already queued; wait up to ``wait`` for more only when others came along too."""
        deadline = None
        while len(batch) < self.max_items:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                if len(batch) == 1 or self.wait_s == 0:
                    break  # alone: run now
                deadline = deadline or time.monotonic() + self.wait_s
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    entry = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if entry is _STOP:
                return batch, True
            batch.append(entry)
        return batch, False

    def _run(self, batch: Sequence[tuple[T, Future]]) -> None:
        live = [(item, f) for item, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            rows = self._checked(self._encode([item for item, _ in live]), len(live))
        except BaseException as exc:  # every caller gets the error, the worker lives on
            for _, future in live:
                future.set_exception(exc)
            return
        self._count(len(live))
        for row, (_, future) in zip(rows, live):
            future.set_result(row)

    @staticmethod
    def _checked(rows: np.ndarray, expected: int) -> np.ndarray:
        if len(rows) != expected:
            raise RuntimeError(f"encode returned {len(rows)} rows for {expected} items")
        return rows

    def _count(self, items: int) -> None:
        self.calls += 1
        self.items += items
