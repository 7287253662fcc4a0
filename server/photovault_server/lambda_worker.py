"""The worker Lambda: `handler(event, context)`, in the same image as the API function (the
template overrides the image's CMD with this handler). Each scheduled invocation runs the due
photo jobs until none is left or its time is nearly spent; the jobs stay in Postgres, so an
invocation that dies loses nothing (its jobs' leases end and the next invocation takes them).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from msgspec.structs import asdict

if TYPE_CHECKING:
    from photovault_server.app import App
    from photovault_server.core.processing import PhotoProcessing, WorkerStats

# Stop starting jobs this long before the invocation's timeout (a job takes well under that).
STOP_MARGIN_SECONDS = 15.0
# Without a context (a local call): how long to run.
DEFAULT_BUDGET_SECONDS = 30.0

_loop = asyncio.new_event_loop()
_stack = AsyncExitStack()
_started: tuple[App, PhotoProcessing] | None = None


async def _ensure_started() -> tuple[App, PhotoProcessing]:
    global _started
    if _started is None:
        from photovault_server.app import open_app
        from photovault_server.logs import configure_logging
        from photovault_server.settings import load_settings
        from photovault_server.worker import build_processing

        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        app = await _stack.enter_async_context(open_app(settings))
        _started = (app, build_processing(app))
    return _started


def handler(event: Any, context: Any) -> dict[str, Any]:
    return _loop.run_until_complete(_handle(context))


async def _handle(context: Any) -> dict[str, Any]:
    from photovault_server.worker import drain_due

    app, processing = await _ensure_started()
    # The environment may have been frozen since the last invocation: its pooled connections
    # may be dead.
    await app.pool.expire_connections()
    remaining = context.get_remaining_time_in_millis() / 1000 if context else DEFAULT_BUDGET_SECONDS
    stats = await drain_due(processing, max(remaining - STOP_MARGIN_SECONDS, 0.0))
    await app.job_backlog.refresh(app.backends.repository, app.clock)
    _emit_metrics(app, stats)
    return asdict(stats)


def _emit_metrics(app: App, stats: WorkerStats) -> None:
    """This invocation's job counts (already deltas) and the queue's gauges as one CloudWatch
    EMF line: alarms on `jobs_oldest_due_seconds` catch a worker that stopped keeping up."""
    from photovault_server.observability import Sources, counter_fields, gauge_fields, write_emf

    sources = Sources.of(app, worker=stats)
    worker_fields = {f"jobs_{name}" for name in asdict(stats)}
    metrics: dict[str, tuple[float, str]] = {
        name: (float(value), "Count")
        for name, value in counter_fields(sources).items()
        if name in worker_fields
    }
    for name, value in gauge_fields(sources).items():
        if name.startswith("jobs_"):
            metrics[name] = (value, "Seconds" if name.endswith("_seconds") else "Count")
    write_emf(["Service"], {"Service": "photovault-worker"}, metrics)
