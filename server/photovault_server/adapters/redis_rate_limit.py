"""A per-user rate limit in Redis (transport/admission.py's RateLimiter), shared by every
process: GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per user),
one EVALSHA per call.

Each user's key holds its "theoretical arrival time" (TAT) in milliseconds of Redis's clock.
A call is allowed when the TAT it would leave is at most `burst` emission intervals ahead of
now; otherwise the reply is how long until it would be. The key expires when the bucket is
full again, so idle users cost no memory. Redis's clock (TIME), not the callers', so processes
with skewed clocks agree.

Keys are `pv:rl:{<user>}`: the hash tag puts each user on one slot of a Redis Cluster, and the
script touches that one key, as cluster scripts must.

Like the URL cache (redis_cache.py), an optimisation of fairness, never a dependency: down, slow
(bounded by PHOTOVAULT_REDIS_TIMEOUT_MS) or answering garbage, the call goes through, and a
circuit breaker skips Redis for a while after failures in a row.

Hand-written rather than `limits` (PyPI): its strategies are fixed and sliding windows, not a
bucket with a burst; and its Redis storage builds its own client from a URI, so it could not
share the URL cache's client, TLS/ACL settings, breaker and cluster slot-map refresh; and it
raises when Redis fails instead of failing open within our bound. The script is ten lines.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from .redis_cache import Breakers
from .redis_topology import Standalone, Topology

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

log = structlog.get_logger(__name__)

# KEYS[1]: the user's key. ARGV[1]: emission interval (ms per call), ARGV[2]: burst (calls).
# Returns 0 when the call is allowed (and counted), else the milliseconds to wait (>= 1).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tolerance - now
if wait > 0 then return math.max(1, math.ceil(wait)) end
local ttl = math.max(1, math.ceil(next_tat - now))
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', ttl)
return 0
"""


def rate_limit_key(user: str) -> str:
    return f"pv:rl:{{{user}}}"


class RedisRateLimiter:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        per_second: float,
        burst: int,
        timeout: timedelta = timedelta(milliseconds=50),
        topology: Topology | None = None,
    ) -> None:
        self._script = redis.register_script(GCRA)
        self._interval_ms = 1000.0 / per_second
        self._burst = burst
        self._timeout = timeout.total_seconds()
        self.topology = topology or Standalone()
        self.breaker = Breakers()
        self.errors = 0

    async def retry_after(self, user: str) -> timedelta | None:
        key = rate_limit_key(user)
        if not self.topology.ready():
            return None
        breaker = self.breaker.for_shard(self.topology.shard_of(key))
        if not breaker.allow():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                wait_ms = int(await self._script(keys=[key], args=[self._interval_ms, self._burst]))
        except Exception as exc:  # fails open, whatever went wrong (as the URL cache)
            self.errors += 1
            breaker.failed()
            self.topology.failed(exc)
            log.warning("rate_limit_failed", error=type(exc).__name__, breaker=breaker.state)
            return None
        breaker.succeeded()
        return timedelta(milliseconds=wait_ms) if wait_ms > 0 else None
