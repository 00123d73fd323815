"""ManualClock: a clock your tests move by hand, for expiry and retention without waiting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from ..errors import ConfigurationError


class ManualClock:
    """A clock that stands still until told to move: pass it as ``MemoryManager(clock=...)``.

    Args:
        start: the time it shows first (timezone-aware); default 2026-01-01 00:00 UTC.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.utcoffset() is None:
            raise ConfigurationError("ManualClock needs a timezone-aware datetime")
        self._now = start
        self._lock = threading.Lock()  # an agent's background learning reads it from another thread

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward ``by`` (never back); return the new time."""
        if by < timedelta(0):
            raise ConfigurationError(f"a clock moves forward only, not by {by}")
        with self._lock:
            self._now += by
            return self._now
