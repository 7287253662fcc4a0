"""`photovault worker`: runs photo processing jobs until stopped, then drains (the job in hand
finishes; the next is left for another worker). It shares `serve`'s environment and opens none
of its ports. `photovault dev` runs one in-process; the worker Lambda runs `drain_due`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import structlog
from msgspec import Struct
from msgspec.structs import asdict

from photovault_server.app import App
from photovault_server.core.errors import Unavailable
from photovault_server.core.processing import PhotoProcessing, WorkerStats
from photovault_server.core.urls import UrlStats
from photovault_server.settings import ProcessingSettings

log = structlog.get_logger("photovault.worker")
# How long an idle worker waits before asking for due jobs again.
POLL_SECONDS = 1.0
# After a backend failure outside a job (the claim itself), before trying again.
FAILURE_PAUSE_SECONDS = 5.0
COUNTERS_EVERY_SECONDS = 60.0


def build_processing(app: App, settings: ProcessingSettings | None = None) -> PhotoProcessing:
    from photovault_server.imaging import ImagePipeline  # Pillow: only where jobs run

    section = settings or app.settings
    pipeline = ImagePipeline(
        section.variant_specs(),
        content_type=section.variant_format,
        max_pixels=section.max_image_pixels,
    )
    return PhotoProcessing(
        repo=app.backends.repository,
        store=app.backends.store,
        processor=pipeline,
        clock=app.clock,
    )


class _Round(Struct, frozen=True):
    pause: float  # how long to wait before the next round (0: go on)
    idle: bool = False  # no job was due


_WORKED = _Round(0.0)
_IDLE = _Round(POLL_SECONDS, idle=True)
_BACKEND_DOWN = _Round(FAILURE_PAUSE_SECONDS)


async def _one_round(processing: PhotoProcessing, stats: WorkerStats) -> _Round:
    """Runs one due job."""
    try:
        outcomes = await processing.run_due(limit=1)
    except Unavailable as exc:
        log.warning("worker_backend_unavailable", error=str(exc))
        return _BACKEND_DOWN
    stats.count(outcomes)
    for outcome in outcomes:
        log.info(
            "photo_processed",
            photo_id=str(outcome.photo_id),
            outcome=outcome.outcome,
            detail=outcome.detail,
        )
    return _WORKED if outcomes else _IDLE


async def run_until_stopped(
    processing: PhotoProcessing, stop: asyncio.Event, stats: WorkerStats | None = None
) -> WorkerStats:
    stats = stats or WorkerStats()
    while not stop.is_set():
        done = await _one_round(processing, stats)
        if done.pause:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), done.pause)
    return stats


async def drain_due(processing: PhotoProcessing, budget_seconds: float) -> WorkerStats:
    """Runs due jobs until none is left or the budget is spent (a Lambda invocation)."""
    stats = WorkerStats()
    stop_at = time.monotonic() + budget_seconds
    while time.monotonic() < stop_at:
        done = await _one_round(processing, stats)
        if done.idle:
            break
        if done.pause:  # a backend was down: try again while the budget lasts
            await asyncio.sleep(min(done.pause, max(stop_at - time.monotonic(), 0.0)))
    return stats


async def run_worker(app: App) -> WorkerStats:
    """`photovault worker`: until SIGTERM or SIGINT, then drains."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker_started")
    stats = WorkerStats()
    counters = asyncio.create_task(_log_counters(app, stats, COUNTERS_EVERY_SECONDS))
    try:
        await run_until_stopped(build_processing(app), stop, stats)
    finally:
        counters.cancel()
    log.info("worker_stopped", **asdict(stats))
    return stats


async def _log_counters(app: App, stats: WorkerStats, every: float) -> None:
    """The worker opens no port: its counters and the queue's gauges go to the log (as
    `serve`'s `url_counters` event does), every minute."""
    from photovault_server.observability import Sources, log_fields

    while True:
        await asyncio.sleep(every)
        await app.job_backlog.refresh(app.backends.repository, app.clock)
        log.info(
            "worker_counters",
            **log_fields(Sources(urls=UrlStats(), worker=stats, backlog=app.job_backlog)),
        )
