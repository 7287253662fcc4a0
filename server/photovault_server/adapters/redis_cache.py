"""UrlCache on Redis. An optimisation, never a dependency: every failure (down, slow, garbage)
is counted, logged and answered as a miss, so the call goes on with freshly signed URLs.

Entries are `<expire epoch ms>\\n<url>` and live until the URL's expiry minus the margin (PXAT),
so whatever Redis returns still has at least the margin of life left. Writes use
`SET … NX GET`: when two callers miss at once, the second gets the first one's URL back.

After a few failures in a row a circuit breaker skips Redis for a cool-down, so an outage costs
one timeout now and then instead of one per call; one probe call then tries Redis again. There
is one breaker per shard (redis_topology.py): on a Redis Cluster a master that is down, or a slot
no master covers, fails open for its own keys only. Every key of one call lives on one shard:
the core gives a page's keys one hash tag (core/urls.py `cache_key`).

Needs Redis 7.0 or Valkey 7.2 (`SET … NX GET`, `PXAT`); the ACL user needs `get`, `mget`,
`set`, `del` on `pv:*` keys (and, in cluster mode, `cluster|slots`, `cluster|shards`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog
from msgspec import Struct

from photovault_server.core.models import SignedUrl

from .redis_topology import Standalone, Topology

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

log = structlog.get_logger(__name__)

# Every failure of the client fails open, not only RedisError: RedisClusterException (a slot
# not covered, the cluster unreachable) is no RedisError, and redis-py 8.1's cluster client
# raises a bare KeyError for a slot missing from its map (get_node_from_slot). A cache bug
# must cost a signature, never the call.
_CACHE_ERRORS = (Exception,)
T = TypeVar("T")


def _encode(url: SignedUrl) -> str:
    return f"{int(url.expire_time.timestamp() * 1000)}\n{url.url}"


# What an unreadable entry decodes to: a URL that expired long ago, so the core treats the key
# as stale and overwrites it (a plain miss would leave the garbage there, deferred to by NX).
_UNREADABLE = SignedUrl(url="", expire_time=datetime(1970, 1, 1, tzinfo=UTC))


def _decode(raw: bytes | str | None) -> SignedUrl | None:
    """None for no entry; the expired `_UNREADABLE` for anything we did not write."""
    if raw is None:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return _UNREADABLE
    millis, sep, url = text.partition("\n")
    if not sep or not millis.isdigit() or not url.startswith(("https://", "http://")):
        return _UNREADABLE
    return SignedUrl(url=url, expire_time=datetime.fromtimestamp(int(millis) / 1000, UTC))


class CacheStats(Struct):
    round_trips: int = 0
    errors: int = 0
    skipped: int = 0  # calls answered as misses without asking Redis (breaker open)
    command_errors: int = 0  # single commands refused (e.g. WRONGTYPE); Redis itself is fine
    breaker_opened: int = 0


class CircuitBreaker:
    """Closed until `threshold` failures in a row; then open for `cooldown` (calls skip Redis);
    then half-open: one call probes, and its outcome closes or re-opens the breaker.

    Hand-written rather than a library: the cache needs a non-raising, allocation-free check on
    the hot path, and the async breakers on PyPI (aiobreaker, purgatory) raise on open circuits
    and wrap calls in their own context managers."""

    def __init__(self, *, threshold: int = 3, cooldown: float = 2.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        if self._failures < self.threshold:
            return "closed"
        return "open" if time.monotonic() < self._open_until else "half-open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False

    def failed(self) -> bool:
        """Records a failure; True when it (re-)opens the breaker."""
        self._failures += 1
        self._probing = False
        if self._failures >= self.threshold:
            self._open_until = time.monotonic() + self.cooldown
            return True
        return False


class Breakers:
    """One CircuitBreaker per shard, made on first use, all with the same settings."""

    _ORDER = ("closed", "half-open", "open")

    def __init__(self, *, threshold: int = 3, cooldown: float = 2.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._by_shard: dict[str, CircuitBreaker] = {}

    def for_shard(self, shard: str) -> CircuitBreaker:
        breaker = self._by_shard.get(shard)
        if breaker is None:
            breaker = CircuitBreaker(threshold=self.threshold, cooldown=self.cooldown)
            self._by_shard[shard] = breaker
        return breaker

    @property
    def state(self) -> str:
        """The worst state of any shard's breaker ("closed" before any call)."""
        states = [b.state for b in self._by_shard.values()] or ["closed"]
        return max(states, key=self._ORDER.index)

    def open_shards(self) -> list[str]:
        return sorted(name for name, b in self._by_shard.items() if b.state != "closed")


class RedisUrlCache:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        timeout: timedelta = timedelta(milliseconds=50),
        breakers: Breakers | None = None,
        topology: Topology | None = None,
    ) -> None:
        self._redis = redis
        self._timeout = timeout.total_seconds()
        self.breaker = breakers or Breakers()
        self.topology = topology or Standalone()
        self.stats = CacheStats()

    async def _call(
        self, what: str, keys: Sequence[str], call: Callable[[], Awaitable[T]]
    ) -> T | None:
        """One bounded round trip to the shard of `keys` through its breaker; None when
        skipped or failed."""
        if not self.topology.ready():
            self.stats.skipped += 1
            return None
        breaker = self.breaker.for_shard(self.topology.shard_of(keys[0]))
        if not breaker.allow():
            self.stats.skipped += 1
            return None
        self.stats.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except _CACHE_ERRORS as exc:
            self.stats.errors += 1
            opened = breaker.failed()
            self.stats.breaker_opened += opened
            self.topology.failed(exc)
            log.warning(
                "url_cache_failed", op=what, error=type(exc).__name__, breaker=breaker.state
            )
            return None
        breaker.succeeded()
        return result

    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        if not keys:
            return {}
        values = await self._call("mget", keys, lambda: self._redis.mget(keys))
        if not isinstance(values, list):
            return {}
        found = {}
        for key, raw in zip(keys, values, strict=False):
            url = _decode(raw)
            if url is not None:
                found[key] = url
        return found

    async def put_many(
        self,
        entries: Mapping[str, SignedUrl],
        margin: timedelta,
        *,
        replace: Collection[str] = (),
    ) -> dict[str, SignedUrl]:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        pipe = self._redis.pipeline(transaction=False)
        keys = []
        for key, url in entries.items():
            evict_ms = int((url.expire_time - margin).timestamp() * 1000)
            if evict_ms > now_ms:
                keys.append(key)
                if key in replace:
                    pipe.set(key, _encode(url), pxat=evict_ms)
                else:
                    pipe.set(key, _encode(url), pxat=evict_ms, nx=True, get=True)
        if not keys:
            return {}
        # Per-command errors (a key of another type: WRONGTYPE) come back as values: they cost
        # that key its entry, not the whole write, and say nothing of Redis's health.
        previous = await self._call("set", keys, lambda: pipe.execute(raise_on_error=False))
        if not isinstance(previous, list):
            return {}
        winners = {}
        for key, raw in zip(keys, previous, strict=False):
            if isinstance(raw, Exception):
                self.stats.command_errors += 1
                log.warning("url_cache_entry_refused", error=type(raw).__name__)
                raw = None
            theirs = _decode(raw) if key not in replace and not isinstance(raw, bool) else None
            winners[key] = theirs if theirs is not None else entries[key]
        return winners

    async def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        deleted = await self._call("del", keys, lambda: self._redis.delete(*keys))
        if deleted is None:
            # Cannot fail open here: log loudly. The entry still expires by itself at
            # (URL expiry - margin), and a deleted photo's object is gone anyway.
            log.error("url_cache_invalidate_failed", keys=len(keys))
