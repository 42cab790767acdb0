"""'7d', '24h', '2024-05-01' or an ISO time → a timezone-aware UTC start time (inbox, report, API)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_RELATIVE = re.compile(r"^\s*(\d{1,5})\s*([dhw])\s*$")
_UNITS = {"d": "days", "h": "hours", "w": "weeks"}


def parse_since(text: str | None, default_days: int = 7, now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if not text or not str(text).strip():
        return now - timedelta(days=default_days)
    match = _RELATIVE.match(str(text))
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise ValueError(f"기간은 7d, 24h 또는 2024-05-01 형식입니다 (since must look like 7d, 24h or 2024-05-01): {text!r}") from exc
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
