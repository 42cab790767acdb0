"""Per-client limits on what an anonymous visitor can make the server do: request rates and unlock guesses.

In-memory and per process (each replica counts on its own); keys are client addresses. The tables are
bounded, so a flood of new addresses cannot grow memory without limit.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

_MAX_KEYS = 50_000


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute on average, bursts up to `burst`."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(per_minute, 1))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Takes one token for this client; False when it has none left (the caller answers 429)."""
        if self.rate <= 0:
            return True  # 0 = unlimited
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > _MAX_KEYS:
                self._buckets.popitem(last=False)
            return allowed

    def retry_after(self) -> int:
        return max(1, round(1.0 / self.rate)) if self.rate > 0 else 1


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Operator password guesses: after `free` failures each further one locks the client out for
    twice as long as the last (base_s, 2·base_s, … up to max_s); a success clears the record."""

    def __init__(self, free: int = 5, base_s: float = 2.0, max_s: float = 900.0) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds this client must still wait before it may try again (0 = may try now)."""
        with self._lock:
            record = self._failures.get(key)
            return max(0.0, record.locked_until - time.monotonic()) if record else 0.0

    def failed(self, key: str) -> float:
        """Counts a wrong password; returns the lock-out it earned (0 while still within the free tries)."""
        with self._lock:
            record = self._failures.pop(key, None) or _Failures()
            record.count += 1
            over = record.count - self.free
            lock = min(self.max_s, self.base_s * 2 ** (over - 1)) if over > 0 else 0.0
            record.locked_until = time.monotonic() + lock
            self._failures[key] = record
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)
            return lock

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
