"""The one table of metrics: what Prometheus, the log events and EMF read from it, and the
docs' copy of it."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from redis.asyncio import Redis

from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.read_router import ReadStats
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.core.urls import UrlStats
from photovault_server.observability import (
    METRICS,
    Histogram,
    Labels,
    Metric,
    Reading,
    Sources,
    counter_fields,
    gauge_fields,
    log_fields,
    markdown_table,
    registry_for,
)
from photovault_server.transport.admission import Admission

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _sources() -> Sources:
    # Never connected: the counters live in the adapter objects, not in Redis.
    redis = RedisUrlCache(Redis.from_url("redis://127.0.0.1:1/0"))
    redis.stats.round_trips, redis.stats.errors, redis.stats.breaker_opened = 7, 2, 1
    local = TieredUrlCache(redis, maxsize=10)
    local.local_hits = 4
    return Sources(
        urls=UrlStats(hits=5, misses=3, signatures=3, public=1), redis=redis, local=local
    )


def _exposition(sources: Sources, table: tuple[Metric, ...] = METRICS) -> str:
    return generate_latest(registry_for(sources, table=table)).decode()


def test_prometheus_names_and_values_come_from_the_sources() -> None:
    text = _exposition(_sources())
    for line in (
        "photovault_url_cache_hits_total 5.0",
        "photovault_url_cache_misses_total 3.0",
        "photovault_url_signatures_total 3.0",
        "photovault_url_public_total 1.0",
        "photovault_url_cache_local_hits_total 4.0",
        "photovault_redis_round_trips_total 7.0",
        "photovault_redis_errors_total 2.0",
        "photovault_redis_skipped_total 0.0",
        "photovault_redis_breaker_opened_total 1.0",
        'photovault_redis_breaker_state{state="closed"} 1.0',
        'photovault_redis_breaker_state{state="open"} 0.0',
    ):
        assert line in text.splitlines(), line


def test_metrics_without_a_source_are_left_out() -> None:
    text = _exposition(Sources(urls=UrlStats(signatures=2)))
    assert "photovault_url_signatures_total 2.0" in text
    assert "photovault_redis" not in text
    assert "local_hits" not in text
    assert "photovault_asyncio_tasks" not in text  # no loop given: no runtime gauges


def test_log_fields_keep_the_url_counters_event_names() -> None:
    fields = log_fields(_sources())
    assert fields == {
        "url_hits": 5,
        "url_misses": 3,
        "url_signatures": 3,
        "url_public": 1,
        "url_local_hits": 4,
        "redis_round_trips": 7,
        "redis_errors": 2,
        "redis_skipped": 0,
        "redis_command_errors": 0,
        "redis_breaker_opened": 1,
        "redis_breaker": "closed",
    }
    assert log_fields(Sources(urls=UrlStats())) == {
        "url_hits": 0,
        "url_misses": 0,
        "url_signatures": 0,
        "url_public": 0,
    }


def test_emf_takes_the_counters_only() -> None:
    fields = counter_fields(_sources())
    assert "redis_breaker" not in fields
    assert fields["url_signatures"] == 3
    assert set(fields) == {k for k in log_fields(_sources()) if k != "redis_breaker"}


def test_a_labelled_counter_and_a_histogram_fit_the_table() -> None:
    """The shape per-RPC metrics will take: label values mapped to numbers or histograms."""
    labels = ("grpc_service", "grpc_method", "grpc_code")

    def handled(_: Sources) -> Reading:
        counts: dict[Labels, float] = {
            ("pv.S", "Get", "OK"): 3.0,
            ("pv.S", "Get", "NOT_FOUND"): 1.0,
        }
        return counts

    def handling(_: Sources) -> Reading:
        seconds: dict[Labels, Histogram] = {
            ("pv.S", "Get"): Histogram([(0.1, 2.0), (float("inf"), 4.0)], 0.9)
        }
        return seconds

    table = (
        Metric(
            "example_handled",
            "counter",
            "Calls finished",
            "a test",
            handled,
            labels=labels,
        ),
        Metric(
            "example_handling_seconds",
            "histogram",
            "Call latency",
            "a test",
            handling,
            labels=labels[:2],
        ),
    )
    text = _exposition(Sources(urls=UrlStats()), table).splitlines()
    assert (
        'example_handled_total{grpc_code="NOT_FOUND",grpc_method="Get",grpc_service="pv.S"} 1.0'
        in text
    )
    assert (
        'example_handling_seconds_bucket{grpc_method="Get",grpc_service="pv.S",le="0.1"} 2.0'
        in text
    )
    assert 'example_handling_seconds_count{grpc_method="Get",grpc_service="pv.S"} 4.0' in text
    assert 'example_handling_seconds_sum{grpc_method="Get",grpc_service="pv.S"} 0.9' in text


def test_each_metric_is_named_once() -> None:
    names = [m.name for m in METRICS]
    fields = [m.log_field for m in METRICS if m.log_field]
    assert len(names) == len(set(names))
    assert len(fields) == len(set(fields))


def test_the_docs_show_the_table() -> None:
    text = DOC.read_text()
    start = text.index("-->\n", text.index("<!-- metrics table")) + len("-->\n")
    end = text.index("<!-- end of metrics table -->")
    assert text[start:end] == markdown_table(), (
        "docs/operations.md's metrics table differs from observability.METRICS; replace it by:\n"
        + markdown_table()
    )


async def test_the_worker_counters_and_the_queue_gauges() -> None:
    from datetime import UTC, datetime, timedelta

    from photovault_server.core.models import JobBacklog
    from photovault_server.core.processing import WorkerStats
    from photovault_server.job_backlog import BacklogGauge

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    class Queue:  # the one repository method the gauge reads
        async def job_backlog(self, at: datetime) -> JobBacklog:
            assert at == now
            return JobBacklog(due=7, oldest_due=now - timedelta(seconds=90))

    backlog = BacklogGauge()
    assert (
        log_fields(Sources(urls=UrlStats(), backlog=backlog))
        .keys()
        .isdisjoint({"jobs_due", "jobs_oldest_due_seconds"})
    )  # before the first reading: absent, not zero
    await backlog.refresh(Queue(), lambda: now)  # type: ignore[arg-type]
    sources = Sources(
        urls=UrlStats(), worker=WorkerStats(ready=4, failed=1, retried=2), backlog=backlog
    )
    text = _exposition(sources).splitlines()
    for line in (
        "photovault_photo_jobs_ready_total 4.0",
        "photovault_photo_jobs_failed_total 1.0",
        "photovault_photo_jobs_retried_total 2.0",
        "photovault_photo_jobs_gone_total 0.0",
        "photovault_photo_jobs_due 7.0",
        "photovault_photo_jobs_oldest_due_seconds 90.0",
    ):
        assert line in text, line
    assert gauge_fields(sources) == {"jobs_due": 7.0, "jobs_oldest_due_seconds": 90.0}
    assert counter_fields(sources)["jobs_ready"] == 4
    # A process that runs no worker exports no worker counters.
    assert "photovault_photo_jobs_ready" not in _exposition(Sources(urls=UrlStats()))


async def test_an_unreadable_queue_clears_the_gauges() -> None:
    from datetime import UTC, datetime

    from photovault_server.core.errors import Unavailable
    from photovault_server.core.models import JobBacklog
    from photovault_server.job_backlog import BacklogGauge

    backlog = BacklogGauge(JobBacklog(due=3, oldest_due=None), datetime.now(UTC))

    class Down:
        async def job_backlog(self, at: datetime) -> JobBacklog:
            raise Unavailable("the metadata database is unavailable; retry shortly")

    class NotMigrated:  # any other failure ends the reading too, never the refreshing task
        async def job_backlog(self, at: datetime) -> JobBacklog:
            raise RuntimeError('relation "photo_jobs" does not exist')

    await backlog.refresh(Down(), lambda: datetime.now(UTC))  # type: ignore[arg-type]
    assert backlog.due() is None
    backlog.reading = JobBacklog(due=3, oldest_due=None)
    await backlog.refresh(NotMigrated(), lambda: datetime.now(UTC))  # type: ignore[arg-type]
    assert backlog.due() is None
    assert "photovault_photo_jobs_due" not in _exposition(Sources(urls=UrlStats(), backlog=backlog))


def test_shed_and_rate_limited_calls_are_counters_in_every_exporter() -> None:
    admission = Admission(max_concurrent_calls=1)
    admission.shed, admission.rate_limited = 3, 2
    sources = Sources(urls=UrlStats(), admission=admission)
    text = _exposition(sources).splitlines()
    assert "photovault_calls_shed_total 3.0" in text
    assert "photovault_calls_rate_limited_total 2.0" in text
    fields = counter_fields(sources)  # EMF, and the url_counters log event
    assert (fields["calls_shed"], fields["calls_rate_limited"]) == (3, 2)


def test_routed_reads_by_target_and_reason_and_the_replica_lag() -> None:
    stats = ReadStats()
    for reason in ("replica", "replica", "read_your_writes", "replica_unavailable"):
        stats.count(reason)
    stats.lag_seconds = 0.25
    sources = Sources(urls=UrlStats(), reads=stats)
    text = _exposition(sources).splitlines()
    assert 'photovault_db_reads_total{reason="replica",target="replica"} 2.0' in text
    assert 'photovault_db_reads_total{reason="read_your_writes",target="primary"} 1.0' in text
    assert 'photovault_db_reads_total{reason="replica_lagging",target="primary"} 0.0' in text
    assert "photovault_db_replica_lag_seconds 0.25" in text
    fields = counter_fields(sources)
    assert (fields["db_replica_reads"], fields["db_primary_reads"]) == (2, 2)
    # Without a replica, none of them.
    assert "photovault_db_" not in _exposition(Sources(urls=UrlStats()))
