"""The sweep as one loop (`PhotoService.sweep`), the same for `photovault sweep` and the Lambda
schedule: every expired upload and every queued object goes, batch after batch, and a time
budget stops it between batches."""

from __future__ import annotations

from datetime import timedelta

import pytest

from photovault_server.core.service import UPLOAD_WINDOW
from tests.support.fakes import Harness, make_harness


@pytest.fixture
def harness() -> Harness:
    return make_harness(quota_bytes=10**9)


async def _expired_uploads(harness: Harness, count: int) -> None:
    for n in range(count):
        await harness.service.create_upload_url(
            "alice", file_name=f"{n}.jpg", content_type="image/jpeg", size_bytes=100
        )
    harness.clock.advance(timedelta(days=1))  # past every reservation and SWEEP_GRACE


async def _deleted_photos(harness: Harness, count: int) -> None:
    photos = [await harness.upload_photo("bob") for _ in range(count)]
    harness.store.failing = {"delete"}  # S3 down at delete time: the objects stay queued
    for photo in photos:
        await harness.service.delete_photo("bob", str(photo.id))
    harness.store.failing = set()


async def test_sweep_runs_batches_until_nothing_is_left(harness: Harness) -> None:
    await _expired_uploads(harness, 7)
    await _deleted_photos(harness, 5)

    report = await harness.service.sweep(batch=2)

    assert (report.expired_uploads, report.deleted_objects, report.finished) == (7, 5, True)
    assert harness.repo.uploads == {}
    assert harness.store.objects == {}
    # In batches: one store request per batch of keys, never one per key.
    assert [len(b) for b in harness.store.delete_batches] == [2, 2, 2, 1, 2, 2, 1]
    assert await harness.service.sweep(batch=2) == type(report)(0, 0, True)
    # The deleted photos' keys are deleted once more when their upload URLs are dead.
    harness.clock.advance(UPLOAD_WINDOW)
    assert await harness.service.sweep(batch=2) == type(report)(0, 5, True)
    assert not harness.repo.object_deletions


async def test_sweep_with_no_time_left_stops_before_a_batch(harness: Harness) -> None:
    await _expired_uploads(harness, 3)

    report = await harness.service.sweep(batch=1, time_budget=timedelta(0))

    assert (report.expired_uploads, report.finished) == (0, False)
    assert len(harness.repo.uploads) == 3


async def test_sweep_refuses_an_empty_batch(harness: Harness) -> None:
    with pytest.raises(ValueError, match="batch"):
        await harness.service.sweep(batch=0)
