"""Password attempts per share link in Redis (core/ports.py AttemptLimiter), shared by every
process: the rate limit's GCRA script (redis_rate_limit.py) on a key per link, `pv:pw:{<link
id>}`. A right password deletes the key, so a viewer who knows it is never slowed down by
someone else's guesses, and paging through an album costs no attempts.

Unlike the rate limit and the URL cache, this fails CLOSED: when Redis cannot count (down,
slow past the timeout, its breaker open), the attempt is refused with UNAVAILABLE rather than
checked uncounted. Redis down must not turn into unlimited guesses at a password; a shared
album without a password does not touch Redis at all, so only password links wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from photovault_server.core.errors import Unavailable

from .redis_cache import Breakers
from .redis_rate_limit import GCRA
from .redis_topology import Standalone, Topology

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

log = structlog.get_logger(__name__)

# A burst of 5 guesses, then one every 12 seconds: about 7,200 a day per link, against a
# password of at least 8 characters that only matters to someone who already holds the
# link's 256-bit token.
PASSWORD_ATTEMPT_INTERVAL = timedelta(seconds=12)
PASSWORD_ATTEMPT_BURST = 5
# Failing closed, a timeout refuses a viewer: it must be one only an outage exceeds, not the
# URL cache's (PHOTOVAULT_REDIS_TIMEOUT_MS, tens of ms, tuned for a path that fails open). A
# password check costs tens of ms of scrypt anyway; a busy Redis or host is waited for.
ATTEMPTS_TIMEOUT = timedelta(seconds=2)


def attempts_key(link: str) -> str:
    return f"pv:pw:{{{link}}}"


class RedisAttemptLimiter:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        interval: timedelta = PASSWORD_ATTEMPT_INTERVAL,
        burst: int = PASSWORD_ATTEMPT_BURST,
        timeout: timedelta = ATTEMPTS_TIMEOUT,
        topology: Topology | None = None,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(GCRA)
        self._interval_ms = interval.total_seconds() * 1000
        self._burst = burst
        self._timeout = timeout.total_seconds()
        self.topology = topology or Standalone()
        self.breaker = Breakers()
        self.errors = 0

    async def attempt(self, key: str) -> timedelta | None:
        name = attempts_key(key)
        wait_ms = await self._call(
            name, lambda: self._script(keys=[name], args=[self._interval_ms, self._burst])
        )
        wait = int(wait_ms)
        return timedelta(milliseconds=wait) if wait > 0 else None

    async def succeeded(self, key: str) -> None:
        name = attempts_key(key)
        await self._call(name, lambda: self._redis.delete(name))

    async def _call(self, name: str, command: Callable[[], Awaitable[Any]]) -> Any:
        unavailable = Unavailable(
            "password attempts cannot be counted right now; retry shortly",
            reason="ATTEMPTS_UNAVAILABLE",
            retry_after=timedelta(seconds=1),
        )
        if not self.topology.ready():
            raise unavailable
        breaker = self.breaker.for_shard(self.topology.shard_of(name))
        if not breaker.allow():
            raise unavailable
        try:
            async with asyncio.timeout(self._timeout):
                result = await command()
        except Exception as exc:  # fails closed, whatever went wrong
            self.errors += 1
            breaker.failed()
            self.topology.failed(exc)
            log.warning("password_attempts_failed", error=type(exc).__name__)
            raise unavailable from None
        breaker.succeeded()
        return result
