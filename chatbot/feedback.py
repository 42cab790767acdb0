"""👍/👎 feedback as an append-only JSONL log that survives restarts and concurrent writers, with a size cap.

One JSON object per line, written with a single write() while holding an exclusive flock on the
file, so threads, worker processes and replicas sharing a folder never interleave half lines. Past
`max_bytes` the file is rotated (feedback.jsonl → .1 → .2 → .3, the oldest dropped), so anonymous
clients cannot fill the disk. Lines are split on "\\n" only: JSON escapes newlines inside values, but
U+2028/U+0085 may stand raw inside a value and must not end a line.
"""
from __future__ import annotations

import json
import math
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
RATINGS = ("up", "down")
MAX_TEXT = 10_000
KEEP_ROTATED = 3


@dataclass(frozen=True)
class Feedback:
    """What a user thought of one answer; checked on creation, so a bad value never reaches the log."""

    question: str
    rating: Rating
    answer_id: str | None = None
    answer_type: str | None = None
    score: float | None = None
    mode: str | None = None
    channel: str = "web"
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip() or len(self.question) > MAX_TEXT:
            raise ValueError("feedback question must be non-blank text of at most 10,000 characters")
        if self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}")
        if self.score is not None and (isinstance(self.score, bool) or not isinstance(self.score, (int, float)) or not math.isfinite(self.score)):
            raise ValueError("score must be a finite number or null")
        for name in ("answer_id", "answer_type", "mode", "channel"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise ValueError(f"{name} must be text of at most 200 characters")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class FeedbackLog:
    """Appends Feedback entries to a JSONL file, one locked write per entry, rotated past max_bytes."""

    def __init__(self, path: Path, max_bytes: int = 50 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
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
                    if os.fstat(fd).st_size + len(line) > self.max_bytes and self.path.exists():
                        self._rotate()
                        os.close(fd)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                        if fcntl is not None:
                            fcntl.flock(fd, fcntl.LOCK_EX)
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        """feedback.jsonl → .1 → .2 …, the oldest beyond KEEP_ROTATED dropped (called holding the lock)."""
        for n in range(KEEP_ROTATED, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if n == KEEP_ROTATED:
                older.unlink(missing_ok=True)
            else:
                newer = self.path.with_name(f"{self.path.name}.{n + 1}")
                if older.exists():
                    os.replace(older, newer)
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def read(self) -> list[dict[str, Any]]:
        """Every entry in the current file (lines that do not parse are skipped)."""
        return read_jsonl(self.path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON Lines split on "\\n" only (str.splitlines would also split on U+2028, U+0085 … inside values)."""
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
