"""Admission: what the call pipeline (calls.py) checks before a call may use the backends,
once for every transport.

- A cap on the calls in progress in this process. Past it a call is shed at the pipeline's
  entry, before its token is even verified, with UNAVAILABLE and a RetryInfo. UNAVAILABLE rather
  than RESOURCE_EXHAUSTED: the refusal says "this process, now", not "you, the caller, used up
  a quota". gRPC clients' retry policies retry UNAVAILABLE (RESOURCE_EXHAUSTED is not retryable
  by default), and balancers and proxies (Envoy's retry_on: unavailable) move the call to
  another process, which is what an overloaded process wants. RESOURCE_EXHAUSTED is kept for
  what the caller did: its storage quota and its rate (below).
- A per-user rate (a RateLimiter, adapters/redis_rate_limit.py), checked once the caller is
  known: RESOURCE_EXHAUSTED with a RetryInfo saying when the next call will be accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Protocol

from photovault_server.core.errors import RateLimited, Unavailable

# What a shed caller is told to wait: long enough for some calls in progress to finish.
OVERLOAD_RETRY_AFTER = timedelta(milliseconds=200)


class RateLimiter(Protocol):
    async def retry_after(self, user: str) -> timedelta | None:
        """None when `user` may make one more call now (and counts it); else how long to wait.
        Never raises: a limiter that cannot decide lets the call through."""
        ...


class Admission:
    """Shared by every transport of a process (App.admission), so the cap counts them all."""

    def __init__(
        self, *, max_concurrent_calls: int = 0, rate_limiter: RateLimiter | None = None
    ) -> None:
        self.max_concurrent_calls = max_concurrent_calls  # 0: no cap
        self.rate_limiter = rate_limiter
        self.in_flight = 0
        self.shed = 0  # calls refused by the cap since start
        self.rate_limited = 0  # calls refused by the rate limit since start

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one of the process's call slots for the block; raises Unavailable when none
        is free."""
        if self.max_concurrent_calls and self.in_flight >= self.max_concurrent_calls:
            self.shed += 1
            raise Unavailable(
                "the server is overloaded; retry shortly",
                reason="OVERLOADED",
                retry_after=OVERLOAD_RETRY_AFTER,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def check_rate(self, user: str) -> None:
        """Raises RateLimited when `user` is over its rate."""
        if self.rate_limiter is None:
            return
        wait = await self.rate_limiter.retry_after(user)
        if wait is not None:
            self.rate_limited += 1
            raise RateLimited(retry_after=wait)


NO_ADMISSION = Admission()
