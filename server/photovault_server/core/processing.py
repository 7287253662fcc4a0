"""Background processing of confirmed photos: read the original, make the variants, store them
and the metadata. Knows nothing of Pillow or S3: the image work is the ImageProcessor port.

Each confirmed photo has one job, written with the confirm. A job that fails for a passing
reason (S3 or Postgres unavailable) is retried with exponential backoff until `max_attempts`;
bytes that can never be processed end FAILED at once. Running a job twice writes the same
objects under the same keys, so a retry or a second worker is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from msgspec import Struct

from .errors import Unavailable
from .models import PhotoJob, PhotoVariant, ProcessedImage
from .ports import ObjectStore, PhotoRepository

Clock = Callable[[], datetime]


class UnprocessableImage(Exception):
    """The bytes can never be processed (corrupt, truncated, too large): the photo is FAILED at
    once, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageProcessor(Protocol):
    @property
    def extension(self) -> str:
        """The variants' object-key extension (".webp")."""
        ...

    def process(self, data: bytes) -> ProcessedImage:
        """Variants and metadata of an original's bytes; raises UnprocessableImage. CPU-bound:
        the worker runs it in a thread."""
        ...


def variant_key(owner_id: str, photo_id: UUID, name: str, extension: str) -> str:
    return f"users/{owner_id}/variants/{photo_id}/{name}{extension}"


class JobPolicy(Struct, frozen=True):
    # Longer than any job takes: a job still running when its lease ends may run twice (safe).
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 6
    first_backoff: timedelta = timedelta(seconds=5)
    max_backoff: timedelta = timedelta(minutes=10)

    def backoff(self, attempts: int) -> timedelta:
        delay: timedelta = self.first_backoff * 2 ** max(attempts - 1, 0)
        return min(delay, self.max_backoff)


class JobOutcome(Struct, frozen=True):
    photo_id: UUID
    outcome: str  # "ready", "failed", "retry" or "gone" (deleted while processed)
    detail: str = ""


class WorkerStats(Struct):
    """Jobs a worker ran, by outcome (the `photovault_photo_jobs_*` counters)."""

    ready: int = 0
    failed: int = 0
    retried: int = 0
    gone: int = 0

    def count(self, outcomes: list[JobOutcome]) -> None:
        for outcome in outcomes:
            name = "retried" if outcome.outcome == "retry" else outcome.outcome
            setattr(self, name, getattr(self, name) + 1)


class PhotoProcessing:
    def __init__(
        self,
        *,
        repo: PhotoRepository,
        store: ObjectStore,
        processor: ImageProcessor,
        clock: Clock,
        policy: JobPolicy | None = None,
    ) -> None:
        self._repo = repo
        self._store = store
        self._processor = processor
        self._clock = clock
        self._policy = policy or JobPolicy()

    async def run_due(self, limit: int = 1) -> list[JobOutcome]:
        """Claims up to `limit` due jobs and runs them one after the other (one decoded image
        in memory at a time); an empty list when none is due."""
        jobs = await self._repo.claim_photo_jobs(self._clock(), limit, self._policy.lease)
        return [await self.run(job) for job in jobs]

    async def run(self, job: PhotoJob) -> JobOutcome:
        photo = job.photo
        if job.attempts > self._policy.max_attempts:
            # Claimed that often without an outcome: it kills its worker (or keeps failing).
            return await self._fail(job, f"gave up after {job.attempts - 1} attempts")
        try:
            data = await self._store.read_prefix(photo.object_key, photo.size_bytes)
            result = await asyncio.to_thread(self._processor.process, data)
        except UnprocessableImage as exc:
            return await self._fail(job, exc.reason)
        except Unavailable as exc:
            return await self._retry(job, str(exc))
        variants = []
        try:
            for rendered in result.variants:
                key = variant_key(
                    photo.owner_id, photo.id, rendered.name, self._processor.extension
                )
                await self._store.write(key, rendered.data, rendered.content_type)
                variants.append(
                    PhotoVariant(
                        name=rendered.name,
                        object_key=key,
                        content_type=rendered.content_type,
                        width=rendered.width,
                        height=rendered.height,
                        size_bytes=len(rendered.data),
                    )
                )
        except Unavailable as exc:
            return await self._retry(job, str(exc))
        done = await self._repo.finish_photo_job(
            photo.owner_id, photo.id, result.metadata, variants, self._clock()
        )
        return JobOutcome(photo.id, "ready" if done else "gone")

    async def _fail(self, job: PhotoJob, reason: str) -> JobOutcome:
        await self._repo.fail_photo_job(job.photo.owner_id, job.photo.id, reason, self._clock())
        return JobOutcome(job.photo.id, "failed", reason)

    async def _retry(self, job: PhotoJob, error: str) -> JobOutcome:
        if job.attempts >= self._policy.max_attempts:
            return await self._fail(job, f"gave up after {job.attempts} attempts: {error}")
        run_after = self._clock() + self._policy.backoff(job.attempts)
        await self._repo.retry_photo_job(job.photo.id, run_after, error)
        return JobOutcome(job.photo.id, "retry", error)
