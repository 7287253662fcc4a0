"""Where a cache key lives: one Redis (standalone) or a shard of a Redis Cluster.

The URL cache keeps one circuit breaker per shard, so that a master that is down, or a slot
that no master covers, fails open for its own keys only. In cluster mode the slot map is
refreshed in the background, never on the request path: redis-py would otherwise rediscover
the cluster inside the next command after a failure (several round trips to every node), which
the cache's 50 ms bound would cut off, leaving the map stale. Until a refresh completes, the
keys of a failed shard are answered as misses.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal, Protocol

import structlog
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    SlotNotCoveredError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

log = structlog.get_logger(__name__)

RedisMode = Literal["standalone", "cluster"]
STANDALONE_SHARD = "redis"
# Failures after which the slot map may be wrong (a node gone, a failover, a reshard).
_TOPOLOGY_ERRORS = (
    ConnectionError,
    RedisTimeoutError,
    TimeoutError,
    OSError,
    ClusterDownError,
    RedisClusterException,
)


class Topology(Protocol):
    def shard_of(self, key: str) -> str:
        """A name for the server that holds `key` (one breaker each)."""
        ...

    def ready(self) -> bool:
        """False while the slot map is being refreshed: calls are answered as misses."""
        ...

    def failed(self, error: BaseException) -> None:
        """A call failed with `error`: refresh the map in the background when it may be why."""
        ...

    async def start(self) -> None:
        """Discovers the topology before the first call (bounded; fails open)."""
        ...

    async def aclose(self) -> None: ...


class Standalone:
    def shard_of(self, key: str) -> str:
        return STANDALONE_SHARD

    def ready(self) -> bool:
        return True

    def failed(self, error: BaseException) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class ClusterTopology:
    def __init__(
        self,
        client: RedisCluster,
        *,
        refresh_timeout: float = 2.0,
        min_interval: float = 0.5,
    ) -> None:
        self._client = client
        self._refresh_timeout = refresh_timeout
        self._min_interval = min_interval
        self._needs_refresh = True
        self._refresh: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self.refreshes = 0

    def shard_of(self, key: str) -> str:
        try:
            node = self._client.get_node_from_key(key)
        except SlotNotCoveredError:
            return f"slot {self._client.keyslot(key)}"
        except (RedisClusterException, LookupError, AttributeError):
            return "unknown"
        return "unknown" if node is None else str(node.name)

    def ready(self) -> bool:
        if not self._needs_refresh:
            return True
        # After a failure that makes redis-py rediscover the cluster, a call would queue behind
        # the rediscovery (under the client's lock): answer misses instead, for the few
        # milliseconds the background refresh takes.
        self._schedule()
        return False

    def failed(self, error: BaseException) -> None:
        if isinstance(error, SlotNotCoveredError):
            # No master for that slot in our map: refresh it, but the other shards' calls go
            # on meanwhile (redis-py has nothing to rediscover in their way).
            self._schedule()
        elif isinstance(error, _TOPOLOGY_ERRORS):
            self._needs_refresh = True
            self._schedule()

    async def start(self) -> None:
        self._schedule()
        if self._refresh is not None:
            await asyncio.wait({self._refresh}, timeout=self._refresh_timeout)

    async def aclose(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

    def _schedule(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            return
        self._refresh = asyncio.get_running_loop().create_task(self._run_refresh())

    async def _run_refresh(self) -> None:
        wait = self._last_refresh + self._min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_refresh = time.monotonic()
        try:
            async with asyncio.timeout(self._refresh_timeout):
                # The client's own rediscovery when a failure flagged it (it would otherwise run
                # inside the next command), then the slot map in any case; both keep the open
                # connections to nodes that are still there.
                await self._client.initialize()
                await self._client.nodes_manager.initialize()
        except Exception as exc:  # still broken: the next failure or call schedules another
            log.warning("redis_cluster_refresh_failed", error=type(exc).__name__)
            return
        self._needs_refresh = False
        self.refreshes += 1


def connect(url: str, *, mode: RedisMode, timeout: float) -> tuple[Redis | RedisCluster, Topology]:
    """The client for REDIS_URL (`redis://` or `rediss://`, `user:password@` for an ACL user,
    `?ssl_ca_certs=PATH` for a private CA) and its topology. In cluster mode the URL names any
    one node; the rest are discovered."""
    if mode == "standalone":
        from redis.asyncio import Redis

        client = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        return client, Standalone()
    from redis.asyncio.cluster import RedisCluster
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    cluster = RedisCluster.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        # Failures are answered as misses and the map is refreshed in the background
        # (ClusterTopology), never retried or rediscovered inside a call.
        retry=Retry(NoBackoff(), 0),
        reinitialize_steps=0,
        # A slot that no master covers fails its own keys, not the whole cache.
        require_full_coverage=False,
    )
    return cluster, ClusterTopology(cluster)
