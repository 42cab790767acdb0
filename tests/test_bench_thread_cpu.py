"""bench/thread_cpu.py: the per-thread CPU split that bench/speed.py prints for ingestion."""
from __future__ import annotations

import sys
import threading
import time

import pytest

from bench.thread_cpu import cpu_between, name_threads, thread_cpu

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")


def _spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_a_named_threads_cpu_is_counted_under_its_name_and_a_pools_number_is_dropped() -> None:
    assert name_threads()
    before = thread_cpu()
    spun, done = threading.Event(), threading.Event()

    def work() -> None:
        _spin(0.3)
        spun.set()
        done.wait(10)  # alive at the second reading: an ended thread's CPU is no longer listed

    worker = threading.Thread(target=work, name="spinner_3")
    worker.start()
    assert spun.wait(30)
    spent = cpu_between(before, thread_cpu())
    done.set()
    worker.join()
    assert 0.25 <= spent["spinner"] < 1.0  # clock ticks of 10 ms
    assert "spinner_3" not in spent
