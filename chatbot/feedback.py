"""👍/👎 feedback as an append-only JSONL log that survives restarts and concurrent writers.

One JSON object per line, written with a single write() while holding an exclusive flock on the
file, so threads, worker processes and replicas sharing a folder never interleave half lines.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

try:  # POSIX; on other systems the in-process lock is all we have
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

Rating = Literal["up", "down"]


@dataclass(frozen=True)
class Feedback:
    """What a user thought of one answer."""

    question: str
    rating: Rating
    answer_id: str | None = None
    answer_type: str | None = None
    score: float | None = None
    mode: str | None = None
    channel: str = "web"
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


class FeedbackLog:
    """Appends Feedback entries to a JSONL file, one locked write per entry."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, entry: Feedback) -> None:
        line = (entry.to_json() + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every entry written so far (lines that do not parse are skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
