"""Where a process's CPU goes, per group of threads, read from /proc/self/task (Linux only).

A bench that asks whether the encoder or Chroma took a core needs per-thread times, but Python threads
share one OS name. `name_threads()` (called before the threads of interest start) gives each new Python
thread its own name as its OS name, so ONNX Runtime's lanes ("onnx-lane_0") are told apart from
Chroma's Rust threads ("tokio-rt-worker", "sqlx-sqlite-worker") and the rest. The hook belongs to the
measurement only: the product never calls it.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_TASKS = Path("/proc/self/task")
_PR_SET_NAME = 15
_POOL_NUMBER = re.compile(r"[_-]?\d+$")  # "onnx-lane_0" → "onnx-lane"
_named = False
T = TypeVar("T")


def name_threads() -> bool:
    """Python threads started from now on carry their name (15 bytes) as their OS name; False where that
    cannot be done (not Linux), and thread_cpu() then puts every thread under the process's name."""
    global _named
    if _named:
        return True
    if not _TASKS.is_dir():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    run = threading.Thread.run

    def named_run(self: threading.Thread) -> None:
        libc.prctl(_PR_SET_NAME, self.name[:15].encode("utf-8", "replace"), 0, 0, 0)
        run(self)

    threading.Thread.run = named_run  # type: ignore[method-assign]
    _named = True
    return True


def read_stat(path: Path) -> tuple[str, float] | None:
    """The name and the user + system CPU seconds in a /proc/…/stat file (a process's or a thread's);
    None when it cannot be read (the thread or process ended, or no /proc)."""
    try:
        stat = path.read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return stat[stat.index("(") + 1 : stat.rindex(")")], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of every live thread, by thread id: name (a pool's number dropped)."""
    out: dict[str, float] = {}
    for task in _TASKS.iterdir() if _TASKS.is_dir() else ():
        read = read_stat(task / "stat")
        if read is None:  # the thread ended meanwhile
            continue
        name, seconds = read
        out[f"{task.name}:{_POOL_NUMBER.sub('', name)}"] = seconds
    return out


def cpu_between(before: dict[str, float], after: dict[str, float]) -> Counter[str]:
    """CPU seconds per thread name spent between two thread_cpu() readings (threads born meanwhile count
    from zero; those that ended meanwhile are lost, so read around work whose threads outlive it)."""
    spent: Counter[str] = Counter()
    for key, seconds in after.items():
        spent[key.split(":", 1)[1]] += seconds - before.get(key, 0.0)
    return spent


def cpu_of(work: Callable[[], T]) -> tuple[T, float, Counter[str]]:
    """work()'s result, its wall seconds and the CPU seconds it took per thread name, plus "(all)" for the
    whole process (threads that ended meanwhile count there only)."""
    threads, process, started = thread_cpu(), time.process_time(), time.perf_counter()
    result = work()
    wall = time.perf_counter() - started
    spent = cpu_between(threads, thread_cpu())
    spent["(all)"] = time.process_time() - process
    return result, wall, spent
