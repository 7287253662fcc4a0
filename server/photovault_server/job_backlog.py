"""How far the photo workers are behind: the processing jobs due and no worker holds, read from
Postgres every few seconds by `serve` and at the end of each worker Lambda invocation, for the
`photovault_photo_jobs_*` gauges (observability.py). Read in the background, never at scrape
time: prometheus_client scrapes from a thread of its own, away from the event loop."""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from msgspec import Struct

from photovault_server.core.models import JobBacklog
from photovault_server.core.ports import PhotoRepository
from photovault_server.core.service import Clock

log = structlog.get_logger("photovault.job_backlog")

READ_EVERY_SECONDS = 15.0


class BacklogGauge(Struct):
    """The latest reading; None before the first one and after a failed one (a stale figure
    would hide a worker that stopped while the database was away)."""

    reading: JobBacklog | None = None
    read_at: datetime | None = None

    def due(self) -> int | None:
        return None if self.reading is None else self.reading.due

    def oldest_due_seconds(self) -> float | None:
        """How long the longest waiting job has been due (0 with none due)."""
        if self.reading is None or self.read_at is None:
            return None
        oldest = self.reading.oldest_due
        return 0.0 if oldest is None else max((self.read_at - oldest).total_seconds(), 0.0)

    async def refresh(self, repository: PhotoRepository, clock: Clock) -> None:
        now = clock()
        try:
            self.reading, self.read_at = await repository.job_backlog(now), now
        except Exception as exc:  # any failure: a background gauge must not end its task
            self.reading = self.read_at = None
            log.warning("job_backlog_unread", error=type(exc).__name__)


async def keep_reading(
    gauge: BacklogGauge,
    repository: PhotoRepository,
    clock: Clock,
    every: float = READ_EVERY_SECONDS,
) -> None:
    """Refreshes `gauge` every `every` seconds until cancelled."""
    while True:
        await gauge.refresh(repository, clock)
        await asyncio.sleep(every)
