"""Deadlines and retries: one deadline bounds a call and all its attempts; UNAVAILABLE is
retried, for idempotent RPCs only, after an exponential backoff with full jitter."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ._errors import Code, Unavailable, error_from_code

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n (from 1) that failed with UNAVAILABLE waits a random time in
    [0, min(max_backoff, initial_backoff * multiplier ** (n - 1))] before the next."""

    max_attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and the multiplier >= 1")

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


NO_RETRY = RetryPolicy(max_attempts=1)


class Deadline:
    """An absolute point in time (monotonic clock), or none."""

    def __init__(self, timeout: float | None) -> None:
        self._at = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left (None: no deadline); raises DeadlineExceeded once it has passed."""
        if self._at is None:
            return None
        left = self._at - time.monotonic()
        if left <= 0:
            raise error_from_code(Code.DEADLINE_EXCEEDED, "deadline exceeded before the call")
        return left

    def allows_wait(self, seconds: float) -> bool:
        return self._at is None or time.monotonic() + seconds < self._at


async def with_retries(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    retry: bool,
) -> T:
    """Runs `attempt(seconds_left)`; repeats it on Unavailable while `retry`, the policy's
    attempts and the deadline allow, re-raising the last error otherwise."""
    number = 1
    while True:
        try:
            return await attempt(deadline.remaining())
        except Unavailable:
            if not retry or number >= policy.max_attempts:
                raise
            delay = policy.backoff(number)
            if not deadline.allows_wait(delay):
                raise
        await asyncio.sleep(delay)
        number += 1
