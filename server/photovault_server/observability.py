"""Every counter and gauge the service exports, named once: the table below. Three readers:
the `url_counters` log events (`log_fields`), Lambda's CloudWatch EMF lines
(`counter_fields`), and Prometheus (`registry_for`, `photovault serve`'s /metrics).

A metric's value is read from the object that owns it, only when it is exported, so the hot
path pays one integer increment. This module imports no metrics library at its top: Lambda
reads it on every invocation and prometheus_client is not on its cold-start path.
docs/operations.md lists the table (tests/unit/test_observability.py keeps them equal)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from msgspec import Struct

from photovault_server.core.urls import UrlStats

if TYPE_CHECKING:
    import asyncpg
    from prometheus_client.core import Metric as PrometheusMetric
    from prometheus_client.registry import CollectorRegistry

    from photovault_server.adapters.local_cache import TieredUrlCache
    from photovault_server.adapters.read_router import ReadStats
    from photovault_server.adapters.redis_cache import RedisUrlCache
    from photovault_server.app import App
    from photovault_server.core.processing import WorkerStats
    from photovault_server.job_backlog import BacklogGauge
    from photovault_server.transport.admission import Admission
    from photovault_server.transport.rpc_stats import RpcStats

Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[str, ...]


class Histogram(Struct, frozen=True):
    """One histogram's state: cumulative counts per upper bound (the last one +Inf), and the
    sum of the observations."""

    buckets: Sequence[tuple[float, float]]
    sum: float


# What a metric reads: a number; per label values, numbers or histograms; None while its
# source does not exist in this process (e.g. the Redis counters with the cache off).
Reading = float | Mapping[Labels, float] | Mapping[Labels, Histogram] | None


class Sources(Struct, frozen=True):
    """The objects that hold the values."""

    urls: UrlStats
    redis: RedisUrlCache | None = None
    local: TieredUrlCache | None = None
    loop: asyncio.AbstractEventLoop | None = None
    pool: asyncpg.Pool | None = None
    rpcs: RpcStats | None = None
    # The jobs this process's worker ran (`photovault worker`, the worker Lambda, `dev`).
    worker: WorkerStats | None = None
    backlog: BacklogGauge | None = None
    admission: Admission | None = None
    reads: ReadStats | None = None  # None without a read replica

    @classmethod
    def of(
        cls,
        app: App,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        worker: WorkerStats | None = None,
    ) -> Sources:
        """An app's counters; with `loop`, its runtime gauges too."""
        return cls(
            urls=app.service.url_stats,
            redis=app.redis_cache,
            local=app.local_cache,
            loop=loop,
            pool=app.pool if loop is not None else None,
            rpcs=app.rpc_stats,
            worker=worker,
            backlog=app.job_backlog,
            admission=app.admission,
            reads=app.read_router.stats if app.read_router is not None else None,
        )


class Metric(Struct, frozen=True):
    name: str  # Prometheus's (a counter's samples get `_total`)
    kind: Kind
    help: str  # how to read it
    source: str  # where the value comes from
    read: Callable[[Sources], Reading]
    labels: Labels = ()
    # Its field in `url_counters` log events (and, for counters, in EMF lines); "" for none.
    log_field: str = ""
    # For a labelled metric with a log field: the field's value (e.g. the breaker's state).
    log_value: Callable[[Sources], object] | None = None
    # How `serve --workers` merges the workers' samples: summed (calls, memory, connections),
    # or the largest, for a reading of something they share (the job queue, the replica).
    across_workers: Literal["sum", "max"] = "sum"


def _redis(read: Callable[[RedisUrlCache], float]) -> Callable[[Sources], Reading]:
    return lambda s: None if s.redis is None else read(s.redis)


_BREAKER_STATES = ("closed", "half-open", "open")


def _breaker_state(s: Sources) -> Reading:
    if s.redis is None:
        return None
    current = s.redis.breaker.state
    samples: dict[Labels, float] = {
        (state,): 1.0 if state == current else 0.0 for state in _BREAKER_STATES
    }
    return samples


def _pool_connections(s: Sources) -> Reading:
    if s.pool is None:
        return None
    samples: dict[Labels, float] = {
        ("open",): s.pool.get_size(),
        ("idle",): s.pool.get_idle_size(),
    }
    return samples


def _tasks(s: Sources) -> Reading:
    # Scraped from prometheus_client's thread: all_tasks copes with the set changing meanwhile.
    return None if s.loop is None else len(asyncio.all_tasks(s.loop))


def _reads(s: Sources) -> Reading:
    if s.reads is None:
        return None
    samples: dict[Labels, float] = {labels: n for labels, n in s.reads.reads.items()}
    return samples


def _reads_log(target: str) -> Callable[[Sources], Reading]:
    def read(s: Sources) -> Reading:
        if s.reads is None:
            return None
        return sum(n for (t, _), n in s.reads.reads.items() if t == target)

    return read


SERVICE_NAME = "photovault.v1.PhotoService"


def _handled(s: Sources) -> Reading:
    if s.rpcs is None:
        return None
    samples: dict[Labels, float] = {
        (SERVICE_NAME, method, code, transport): count
        for (method, code, transport), count in s.rpcs.handled.items()
    }
    return samples


def _handling_seconds(s: Sources) -> Reading:
    if s.rpcs is None:
        return None
    from photovault_server.transport.rpc_stats import BUCKETS

    bounds = (*BUCKETS, float("inf"))
    samples: dict[Labels, Histogram] = {}
    for (method, transport), latencies in s.rpcs.latencies.items():
        cumulative, running = [], 0
        for bound, count in zip(bounds, latencies.counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        samples[(SERVICE_NAME, method, transport)] = Histogram(cumulative, latencies.total)
    return samples


def _worker(read: Callable[[WorkerStats], float]) -> Callable[[Sources], Reading]:
    return lambda s: None if s.worker is None else read(s.worker)


URL_STATS = "UrlStats (core/urls.py)"
WORKER_STATS = "WorkerStats (core/processing.py), counted by the worker"
BACKLOG = "BacklogGauge (job_backlog.py): photo_jobs read every 15 s by `serve`"
ADMISSION = "Admission (transport/admission.py)"
READS = "ReadRouter.stats (adapters/read_router.py)"
REDIS_STATS = "RedisUrlCache.stats (adapters/redis_cache.py)"

METRICS: tuple[Metric, ...] = (
    Metric(
        "grpc_server_handled",
        "counter",
        "Calls finished, by method, status code and transport (grpc, grpc-web, connect)",
        "RpcStats (transport/rpc_stats.py), recorded by the call pipeline",
        _handled,
        labels=("grpc_service", "grpc_method", "grpc_code", "transport"),
    ),
    Metric(
        "grpc_server_handling_seconds",
        "histogram",
        "Time from a call's arrival to its answer in the server, by method and transport",
        "RpcStats (transport/rpc_stats.py), recorded by the call pipeline",
        _handling_seconds,
        labels=("grpc_service", "grpc_method", "transport"),
    ),
    Metric(
        "photovault_calls_shed",
        "counter",
        "Calls refused UNAVAILABLE by the cap on calls in progress"
        " (PHOTOVAULT_MAX_CONCURRENT_CALLS)",
        ADMISSION,
        lambda s: None if s.admission is None else s.admission.shed,
        log_field="calls_shed",
    ),
    Metric(
        "photovault_calls_rate_limited",
        "counter",
        "Calls refused RESOURCE_EXHAUSTED by the per-user rate limit",
        ADMISSION,
        lambda s: None if s.admission is None else s.admission.rate_limited,
        log_field="calls_rate_limited",
    ),
    Metric(
        "photovault_db_reads",
        "counter",
        "Routed reads (photos, listings, trash) by where they ran (`replica`, `primary`) and why"
        " (`replica`; `read_your_writes`: the caller wrote what the replica has not replayed;"
        " `marks_unreadable`: Redis could not say whether they did;"
        " `replica_unavailable`: down or failing; `replica_lagging`: behind the bound or not yet"
        " shown to keep up). Only with DATABASE_READ_URL",
        READS,
        _reads,
        labels=("target", "reason"),
    ),
    Metric(
        "photovault_db_replica_reads",
        "counter",
        'Routed reads the replica served (the sum of `photovault_db_reads{target="replica"}`)',
        READS,
        _reads_log("replica"),
        log_field="db_replica_reads",
    ),
    Metric(
        "photovault_db_primary_reads",
        "counter",
        'Routed reads the primary served (the sum of `photovault_db_reads{target="primary"}`)',
        READS,
        _reads_log("primary"),
        log_field="db_primary_reads",
    ),
    Metric(
        "photovault_db_replica_lag_seconds",
        "gauge",
        "The replica's lag at the router's last check: 0 when it had replayed the primary's"
        " position, else the primary's clock minus the last replayed commit's time (absent"
        " until measured; never for a replica without replay)",
        READS,
        lambda s: None if s.reads is None else s.reads.lag_seconds,
        across_workers="max",
    ),
    Metric(
        "photovault_url_cache_hits",
        "counter",
        "Download URLs served from the cache",
        URL_STATS,
        lambda s: s.urls.hits,
        log_field="url_hits",
    ),
    Metric(
        "photovault_url_cache_misses",
        "counter",
        "Download URLs not in the cache",
        URL_STATS,
        lambda s: s.urls.misses,
        log_field="url_misses",
    ),
    Metric(
        "photovault_url_signatures",
        "counter",
        "Download URLs signed",
        URL_STATS,
        lambda s: s.urls.signatures,
        log_field="url_signatures",
    ),
    Metric(
        "photovault_url_public",
        "counter",
        "Unsigned public URLs handed out",
        URL_STATS,
        lambda s: s.urls.public,
        log_field="url_public",
    ),
    Metric(
        "photovault_url_cache_local_hits",
        "counter",
        "Cache hits served by the in-process tier (part of the hits)",
        "TieredUrlCache.local_hits (adapters/local_cache.py)",
        lambda s: None if s.local is None else s.local.local_hits,
        log_field="url_local_hits",
    ),
    Metric(
        "photovault_redis_round_trips",
        "counter",
        "Round trips to Redis",
        REDIS_STATS,
        _redis(lambda r: r.stats.round_trips),
        log_field="redis_round_trips",
    ),
    Metric(
        "photovault_redis_errors",
        "counter",
        "Failed or timed-out Redis calls",
        REDIS_STATS,
        _redis(lambda r: r.stats.errors),
        log_field="redis_errors",
    ),
    Metric(
        "photovault_redis_skipped",
        "counter",
        "Cache calls skipped by the open breaker",
        REDIS_STATS,
        _redis(lambda r: r.stats.skipped),
        log_field="redis_skipped",
    ),
    Metric(
        "photovault_redis_command_errors",
        "counter",
        "Single Redis commands refused (e.g. WRONGTYPE) while Redis itself answered",
        REDIS_STATS,
        _redis(lambda r: r.stats.command_errors),
        log_field="redis_command_errors",
    ),
    Metric(
        "photovault_redis_breaker_opened",
        "counter",
        "Times the breaker opened (Redis then skipped for its cool-down)",
        REDIS_STATS,
        _redis(lambda r: r.stats.breaker_opened),
        log_field="redis_breaker_opened",
    ),
    Metric(
        "photovault_redis_breaker_state",
        "gauge",
        "1 for the breaker's current state",
        "RedisUrlCache.breaker (adapters/redis_cache.py)",
        _breaker_state,
        labels=("state",),
        log_field="redis_breaker",
        log_value=lambda s: None if s.redis is None else s.redis.breaker.state,
    ),
    Metric(
        "photovault_photo_jobs_ready",
        "counter",
        "Photos this process's worker processed (variants stored, READY)",
        WORKER_STATS,
        _worker(lambda w: w.ready),
        log_field="jobs_ready",
    ),
    Metric(
        "photovault_photo_jobs_failed",
        "counter",
        "Photos that can never be processed (FAILED: corrupt, too large, attempts spent)",
        WORKER_STATS,
        _worker(lambda w: w.failed),
        log_field="jobs_failed",
    ),
    Metric(
        "photovault_photo_jobs_retried",
        "counter",
        "Jobs put back with a backoff after a passing failure (S3 or Postgres down)",
        WORKER_STATS,
        _worker(lambda w: w.retried),
        log_field="jobs_retried",
    ),
    Metric(
        "photovault_photo_jobs_gone",
        "counter",
        "Jobs whose photo was deleted while it was processed (its variants queued for deletion)",
        WORKER_STATS,
        _worker(lambda w: w.gone),
        log_field="jobs_gone",
    ),
    Metric(
        "photovault_photo_jobs_due",
        "gauge",
        "Processing jobs due that no worker holds: grows while workers are down or too few",
        BACKLOG,
        lambda s: None if s.backlog is None else s.backlog.due(),
        log_field="jobs_due",
        across_workers="max",
    ),
    Metric(
        "photovault_photo_jobs_oldest_due_seconds",
        "gauge",
        "How long the longest waiting job has been due (0 when none is): alert on it",
        BACKLOG,
        lambda s: None if s.backlog is None else s.backlog.oldest_due_seconds(),
        log_field="jobs_oldest_due_seconds",
        across_workers="max",
    ),
    Metric(
        "photovault_asyncio_tasks",
        "gauge",
        "Tasks of the server's event loop (calls in progress and the servers' own)",
        "asyncio.all_tasks of the serving loop",
        _tasks,
    ),
    Metric(
        "photovault_db_pool_connections",
        "gauge",
        "Database pool connections: open, and idle (the rest are checked out by calls)",
        "the asyncpg pool (get_size, get_idle_size)",
        _pool_connections,
        labels=("state",),
    ),
)


def log_fields(sources: Sources, table: Sequence[Metric] = METRICS) -> dict[str, object]:
    """The `url_counters` log event's fields: every logged metric whose source exists."""
    fields: dict[str, object] = {}
    for metric in table:
        if not metric.log_field:
            continue
        value = metric.log_value(sources) if metric.log_value else metric.read(sources)
        if value is not None:
            fields[metric.log_field] = value
    return fields


def gauge_fields(sources: Sources, table: Sequence[Metric] = METRICS) -> dict[str, float]:
    """The logged unlabelled gauges with a value (for EMF lines beside the counters)."""
    gauges = {m.log_field for m in table if m.kind == "gauge" and m.log_field and not m.labels}
    return {
        k: float(v)
        for k, v in log_fields(sources, table).items()
        if k in gauges and isinstance(v, int | float)
    }


def counter_fields(sources: Sources, table: Sequence[Metric] = METRICS) -> dict[str, int]:
    """The logged counters alone, as integers (CloudWatch EMF sums their deltas)."""
    counters = {m.log_field for m in table if m.kind == "counter" and m.log_field}
    return {
        k: int(v)
        for k, v in log_fields(sources, table).items()
        if k in counters and isinstance(v, int | float)
    }


class TableCollector:
    """Prometheus families for the table, read at scrape time."""

    def __init__(self, sources: Sources, table: Sequence[Metric] = METRICS) -> None:
        self._sources = sources
        self._table = table

    def collect(self) -> Iterator[PrometheusMetric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        families = {
            "counter": CounterMetricFamily,
            "gauge": GaugeMetricFamily,
            "histogram": HistogramMetricFamily,
        }
        for metric in self._table:
            reading = metric.read(self._sources)
            if reading is None:
                continue
            family = families[metric.kind](metric.name, metric.help, labels=metric.labels)
            samples = reading if isinstance(reading, Mapping) else {(): reading}
            for labels, value in samples.items():
                if isinstance(value, Histogram):
                    assert isinstance(family, HistogramMetricFamily)
                    buckets = [(_le(le), count) for le, count in value.buckets]
                    family.add_metric(list(labels), buckets, value.sum)
                else:
                    assert not isinstance(family, HistogramMetricFamily)
                    family.add_metric(list(labels), value)
            yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def registry_for(
    sources: Sources, *, process: bool = False, table: Sequence[Metric] = METRICS
) -> CollectorRegistry:
    """A registry of the table's metrics, and with `process` the process's own
    (process_open_fds, process_resident_memory_bytes, ...)."""
    from prometheus_client import ProcessCollector
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=True)
    registry.register(TableCollector(sources, table))
    if process:
        ProcessCollector(registry=registry)
    return registry


def markdown_table(table: Sequence[Metric] = METRICS) -> str:
    """The table as docs/operations.md shows it."""
    rows = [
        "| metric | kind | labels | how to read it | log / EMF field | source |",
        "|---|---|---|---|---|---|",
    ]
    for m in table:
        name = f"{m.name}_total" if m.kind == "counter" else m.name
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        field = f"`{m.log_field}`" if m.log_field else "—"
        rows.append(f"| `{name}` | {m.kind} | {labels} | {m.help} | {field} | {m.source} |")
    return "\n".join(rows) + "\n"


def write_emf(
    dimensions: list[str], values: dict[str, str], metrics: dict[str, tuple[float, str]]
) -> None:
    """One CloudWatch Embedded Metric Format line on stdout (Lambda's log is the transport:
    no client library, nothing on the cold-start path)."""
    record: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "PhotoVault",
                    "Dimensions": [dimensions],
                    "Metrics": [
                        {"Name": n, "Unit": unit} for n, (_, unit) in sorted(metrics.items())
                    ],
                }
            ],
        },
        **values,
        **{name: value for name, (value, _) in metrics.items()},
    }
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
