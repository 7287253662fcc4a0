"""The one clock the tests move by hand, for the core's fakes and for servers given a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# A start time with microseconds, so that page tokens must carry time at full precision.
EPOCH = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """A clock that stands still until a test sets `now` or advances it; call it to read it."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
