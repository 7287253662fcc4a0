"""URL and cache counters for Prometheus (`photovault serve`, PHOTOVAULT_METRICS_ADDR). The
counters live in plain objects owned by the core and the cache adapters; this collector only
reads them at scrape time, so the hot path pays one integer increment."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.core.urls import UrlStats

_BREAKER_STATES = ("closed", "half-open", "open")


class UrlMetricsCollector(Collector):
    def __init__(
        self, urls: UrlStats, cache: RedisUrlCache | None, local: TieredUrlCache | None = None
    ) -> None:
        self._urls = urls
        self._cache = cache
        self._local = local

    def collect(self) -> Iterator[Metric]:
        for name, value, help_ in (
            ("photovault_url_cache_hits", self._urls.hits, "Download URLs served from the cache"),
            ("photovault_url_cache_misses", self._urls.misses, "Download URLs not in the cache"),
            ("photovault_url_signatures", self._urls.signatures, "Download URLs signed"),
            ("photovault_url_public", self._urls.public, "Unsigned public URLs handed out"),
        ):
            yield CounterMetricFamily(name, help_, value=value)
        if self._local is not None:
            yield CounterMetricFamily(
                "photovault_url_cache_local_hits",
                "Cache hits served by the in-process tier (part of the hits)",
                value=self._local.local_hits,
            )
        if self._cache is None:
            return
        stats = self._cache.stats
        yield CounterMetricFamily(
            "photovault_redis_round_trips", "Round trips to Redis", value=stats.round_trips
        )
        yield CounterMetricFamily(
            "photovault_redis_errors", "Failed or timed-out Redis calls", value=stats.errors
        )
        yield CounterMetricFamily(
            "photovault_redis_skipped", "Cache calls skipped by the open breaker", stats.skipped
        )
        state = GaugeMetricFamily(
            "photovault_redis_breaker_state", "1 for the breaker's current state", labels=["state"]
        )
        current = self._cache.breaker.state
        for name in _BREAKER_STATES:
            state.add_metric([name], 1.0 if name == current else 0.0)
        yield state


class RuntimeCollector(Collector):
    """What a leak would grow: the event loop's tasks and the database pool's connections
    (open, and idle: the rest are checked out by calls). Scraped from prometheus_client's
    thread, so it only reads: asyncio.all_tasks copes with a set changing while it copies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: asyncpg.Pool | None) -> None:
        self._loop = loop
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "photovault_asyncio_tasks",
            "Tasks of the server's event loop (calls in progress and the servers' own)",
            value=len(asyncio.all_tasks(self._loop)),
        )
        if self._pool is None:
            return
        pool = GaugeMetricFamily(
            "photovault_db_pool_connections", "Database pool connections", labels=["state"]
        )
        pool.add_metric(["open"], self._pool.get_size())
        pool.add_metric(["idle"], self._pool.get_idle_size())
        yield pool


def registry_for(
    urls: UrlStats,
    cache: RedisUrlCache | None,
    local: TieredUrlCache | None = None,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    pool: asyncpg.Pool | None = None,
) -> CollectorRegistry:
    """The service's counters, and with `loop` its runtime gauges and the process's own
    (process_open_fds, process_resident_memory_bytes, ...)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(UrlMetricsCollector(urls, cache, local))
    if loop is not None:
        registry.register(RuntimeCollector(loop, pool))
        ProcessCollector(registry=registry)
    return registry
