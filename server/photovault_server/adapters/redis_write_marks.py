"""The read router's write marks (read_router.py) in Redis, shared by every process and Lambda
serving a user: after a write, the primary's LSN that the user's reads must see.

Keys are `pv:rw:{<user>}` (one slot per user on a Redis Cluster), values the LSN as 16 hex
digits, so that Lua compares them as strings (its numbers are doubles: an LSN past 2^53 would
round). One script raises the mark, never lowers it, whatever order two writes' marks arrive
in, and renews its life. Every call is bounded by the Redis timeout; failures raise, and the
router decides (reads go to the primary, a write's mark stays in-process). After a few failures
in a row a circuit breaker (redis_cache.py's) fails calls at once for a cool-down, so an outage
costs the reads one Redis timeout now and then, not one each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from .redis_cache import CircuitBreaker

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

# KEYS[1]: the user's key; ARGV[1]: the LSN (16 hex digits); ARGV[2]: its life in ms.
RAISE_MARK = """
local current = redis.call('GET', KEYS[1])
if current and current >= ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


T = TypeVar("T")


class MarksUnavailable(Exception):
    """The breaker is open: Redis is not asked."""


def write_mark_key(user: str) -> str:
    return f"pv:rw:{{{user}}}"


class RedisWriteMarks:
    def __init__(
        self, redis: Redis | RedisCluster, *, timeout: timedelta = timedelta(milliseconds=50)
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(RAISE_MARK)
        self._timeout = timeout.total_seconds()
        self.breaker = CircuitBreaker()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise MarksUnavailable("write marks skipped: the breaker is open")
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except Exception:
            self.breaker.failed()
            raise
        self.breaker.succeeded()
        return result

    async def get(self, user: str) -> int | None:
        raw = await self._call(lambda: self._redis.get(write_mark_key(user)))
        if raw is None:
            return None
        return int(raw.decode() if isinstance(raw, bytes) else raw, 16)

    async def put(self, user: str, lsn: int, ttl: timedelta) -> None:
        millis = max(1, int(ttl.total_seconds() * 1000))
        key, args = write_mark_key(user), [f"{lsn:016X}", str(millis)]
        await self._call(lambda: self._script(keys=[key], args=args))
