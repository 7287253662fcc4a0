"""The parent of `serve --workers N`: its share of the pool per worker, and its /metrics as the
sum of the workers' (tests/test_serve_workers.py runs the real processes)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import CollectorRegistry

from photovault_server.settings import load_settings
from photovault_server.workers import divided, merged_families, worker_count

WORKER_A = """# HELP calls_total Calls
# TYPE calls_total counter
calls_total{code="OK"} 3.0
calls_total{code="INTERNAL"} 1.0
# HELP seconds Latency
# TYPE seconds histogram
seconds_bucket{le="0.1"} 2.0
seconds_bucket{le="+Inf"} 4.0
seconds_count 4.0
seconds_sum 0.5
# HELP process_start_time_seconds Start time
# TYPE process_start_time_seconds gauge
process_start_time_seconds 200.0
# HELP process_max_fds Limit
# TYPE process_max_fds gauge
process_max_fds 1024.0
"""
WORKER_B = """# HELP calls_total Calls
# TYPE calls_total counter
calls_total{code="OK"} 5.0
# HELP seconds Latency
# TYPE seconds histogram
seconds_bucket{le="0.1"} 1.0
seconds_bucket{le="+Inf"} 5.0
seconds_count 5.0
seconds_sum 2.0
# HELP process_start_time_seconds Start time
# TYPE process_start_time_seconds gauge
process_start_time_seconds 100.0
# HELP process_max_fds Limit
# TYPE process_max_fds gauge
process_max_fds 4096.0
"""


class _Fixed:
    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def collect(self) -> list[Metric]:
        return merged_families(self._texts)


def _exposition(texts: list[str]) -> list[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(texts))
    return [
        line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")
    ]


def test_samples_are_summed_per_name_and_labels() -> None:
    lines = _exposition([WORKER_A, WORKER_B])
    assert 'calls_total{code="OK"} 8.0' in lines
    assert 'calls_total{code="INTERNAL"} 1.0' in lines
    assert 'seconds_bucket{le="0.1"} 3.0' in lines
    assert 'seconds_bucket{le="+Inf"} 9.0' in lines
    assert "seconds_count 9.0" in lines
    assert "seconds_sum 2.5" in lines


def test_start_time_is_the_oldest_and_the_fd_limit_the_largest() -> None:
    lines = _exposition([WORKER_A, WORKER_B])
    assert "process_start_time_seconds 100.0" in lines
    assert "process_max_fds 4096.0" in lines


def test_readings_of_what_the_workers_share_are_not_summed() -> None:
    """Every worker reads the same job queue: two workers seeing 7 due jobs is 7, not 14."""
    shared = (
        "# HELP photovault_photo_jobs_due Jobs\n# TYPE photovault_photo_jobs_due gauge\n"
        "photovault_photo_jobs_due {due}\n"
        "# HELP photovault_calls_shed_total Shed\n# TYPE photovault_calls_shed_total counter\n"
        "photovault_calls_shed_total 2.0\n"
    )
    lines = _exposition([shared.format(due=7.0), shared.format(due=5.0)])
    assert "photovault_photo_jobs_due 7.0" in lines
    assert "photovault_calls_shed_total 4.0" in lines


def test_one_worker_is_passed_through() -> None:
    assert 'calls_total{code="OK"} 3.0' in _exposition([WORKER_A])
    assert _exposition([]) == []


def test_the_pool_budget_is_divided_between_workers() -> None:
    settings = load_settings(
        PHOTOVAULT_BUCKET="photos",
        PHOTOVAULT_JWT_SECRET="s" * 32,
        PHOTOVAULT_DB_POOL_MAX_SIZE=10,
        PHOTOVAULT_DB_POOL_MIN_SIZE=3,
    )
    two = divided(settings, 2)
    assert (two.db_pool_max_size, two.db_pool_min_size) == (5, 2)
    three = divided(settings, 3)
    assert (three.db_pool_max_size, three.db_pool_min_size) == (3, 1)
    many = divided(settings, 16)  # never a worker without a connection
    assert (many.db_pool_max_size, many.db_pool_min_size) == (1, 1)
    assert 3 * three.db_pool_max_size <= 10


def test_zero_workers_is_one_per_cpu() -> None:
    assert worker_count(3) == 3
    assert worker_count(0) >= 1
