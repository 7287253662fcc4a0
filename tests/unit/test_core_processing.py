"""The processing use case on the in-memory fakes and the real (pure) image pipeline: jobs from
confirms, variants and metadata stored, retries, poisoned images, and variant URLs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from PIL import Image

from photovault_server.core import InvalidArgument
from photovault_server.core.models import ProcessingState, VariantSpec
from photovault_server.core.processing import JobPolicy, PhotoProcessing
from photovault_server.core.service import UPLOAD_WINDOW
from photovault_server.imaging import ImagePipeline
from tests.support.fakes import Harness, make_harness
from tests.support.images import camera_exif, encode, jpeg

POLICY = JobPolicy(lease=timedelta(minutes=5), max_attempts=3, first_backoff=timedelta(seconds=10))


@pytest.fixture
def harness() -> Harness:
    return make_harness()


def worker(harness: Harness) -> PhotoProcessing:
    pipeline = ImagePipeline([VariantSpec("thumb", 32), VariantSpec("preview", 64)])
    return PhotoProcessing(
        repo=harness.repo,
        store=harness.store,
        processor=pipeline,
        clock=harness.clock,
        policy=POLICY,
    )


async def test_a_confirmed_photo_is_pending_then_ready_with_variants(harness: Harness) -> None:
    photo = await harness.upload_photo(data=jpeg((200, 100)))
    assert photo.processing_state is ProcessingState.PENDING
    assert photo.variants == ()
    outcomes = await worker(harness).run_due(limit=10)
    assert [(o.photo_id, o.outcome) for o in outcomes] == [(photo.id, "ready")]
    ready = await harness.service.get_photo("alice", str(photo.id))
    assert ready.photo.processing_state is ProcessingState.READY
    assert ready.photo.metadata is not None
    assert (ready.photo.metadata.width, ready.photo.metadata.height) == (200, 100)
    assert {(v.variant.name, v.variant.width, v.variant.height) for v in ready.variants} == {
        ("thumb", 32, 16),
        ("preview", 64, 32),
    }
    for variant, url, _ in ready.variants:
        assert variant.object_key == f"users/alice/variants/{photo.id}/{variant.name}.webp"
        assert variant.object_key in harness.store.objects
        assert url.startswith(f"https://s3.test/{variant.object_key}?")
    assert await worker(harness).run_due() == []  # the job is gone


async def test_a_job_run_twice_makes_the_same_objects(harness: Harness) -> None:
    photo = await harness.upload_photo(data=jpeg((120, 90)))
    job = (await harness.repo.claim_photo_jobs(harness.clock(), 1, POLICY.lease))[0]
    await worker(harness).run(job)
    first = dict(harness.store.objects)
    await worker(harness).run(job)
    assert harness.store.objects == first
    assert (await harness.repo.get_photo("alice", photo.id)).variants  # type: ignore[union-attr]


async def test_a_poisoned_image_fails_at_once_and_the_next_one_is_processed(
    harness: Harness,
) -> None:
    bad = await harness.upload_photo(data=jpeg((300, 300))[:200])
    good = await harness.upload_photo(
        data=encode(Image.new("RGB", (40, 30)), "JPEG", exif=camera_exif(make="Fuji", model="X100"))
    )
    outcomes = {o.photo_id: o for o in await worker(harness).run_due(limit=10)}
    assert outcomes[bad.id].outcome == "failed"
    assert "corrupt" in outcomes[bad.id].detail
    assert outcomes[good.id].outcome == "ready"
    failed = await harness.service.get_photo("alice", str(bad.id))
    assert failed.photo.processing_state is ProcessingState.FAILED
    assert failed.url  # the original is still served
    assert "corrupt" in harness.repo.processing_errors[bad.id]
    done = await harness.service.get_photo("alice", str(good.id))
    assert done.photo.metadata is not None
    assert done.photo.metadata.camera == "Fuji X100"


async def test_a_passing_failure_is_retried_with_backoff_then_fails(harness: Harness) -> None:
    photo = await harness.upload_photo(data=jpeg((50, 50)))
    harness.store.failing.add("write")
    processing = worker(harness)
    assert [o.outcome for o in await processing.run_due()] == ["retry"]
    assert await processing.run_due() == []  # not due before its backoff
    harness.clock.advance(timedelta(seconds=10))
    assert [o.outcome for o in await processing.run_due()] == ["retry"]
    harness.clock.advance(timedelta(seconds=19))
    assert await processing.run_due() == []  # the second backoff is twice the first
    harness.clock.advance(timedelta(seconds=1))
    outcome = (await processing.run_due())[0]
    assert outcome.outcome == "failed"
    assert "gave up after 3 attempts" in outcome.detail
    stored = await harness.repo.get_photo("alice", photo.id)
    assert stored is not None
    assert stored.processing_state is ProcessingState.FAILED


async def test_a_recovered_store_lets_the_retry_succeed(harness: Harness) -> None:
    await harness.upload_photo(data=jpeg((50, 50)))
    harness.store.failing.add("read_prefix")
    assert [o.outcome for o in await worker(harness).run_due()] == ["retry"]
    harness.store.failing.clear()
    harness.clock.advance(timedelta(seconds=10))
    assert [o.outcome for o in await worker(harness).run_due()] == ["ready"]


async def test_a_job_whose_worker_died_is_claimed_again_after_its_lease(harness: Harness) -> None:
    await harness.upload_photo(data=jpeg((50, 50)))
    assert await harness.repo.claim_photo_jobs(harness.clock(), 1, POLICY.lease)
    assert await worker(harness).run_due() == []
    harness.clock.advance(POLICY.lease)
    assert [o.outcome for o in await worker(harness).run_due()] == ["ready"]


async def test_deleting_a_photo_queues_its_variants_and_forgets_their_urls(
    harness: Harness,
) -> None:
    photo = await harness.upload_photo(data=jpeg((80, 80)))
    await worker(harness).run_due()
    ready = await harness.service.get_photo("alice", str(photo.id))
    await harness.service.delete_photo("alice", str(photo.id))
    keys = {photo.object_key, *(v.variant.object_key for v in ready.variants)}
    assert keys <= set(harness.store.deleted_keys)
    assert not keys & set(harness.store.objects)
    assert harness.cache.entries == {}


async def test_a_photo_deleted_while_processed_leaves_no_variant_behind(harness: Harness) -> None:
    photo = await harness.upload_photo(data=jpeg((80, 80)))
    job = (await harness.repo.claim_photo_jobs(harness.clock(), 1, POLICY.lease))[0]
    # The row goes while the worker holds the original's bytes.
    await harness.repo.delete_photo("alice", photo.id, upload_window=UPLOAD_WINDOW)
    assert (await worker(harness).run(job)).outcome == "gone"
    now = harness.clock()
    queued = await harness.repo.claim_object_deletions(now=now, claim_until=now, limit=10)
    assert {k for k in queued if "/variants/" in k} == {
        f"users/alice/variants/{photo.id}/thumb.webp",
        f"users/alice/variants/{photo.id}/preview.webp",
    }


async def test_a_page_signs_every_variant_in_one_batch(harness: Harness) -> None:
    for _ in range(3):
        await harness.upload_photo(data=jpeg((90, 60)))
    await worker(harness).run_due(limit=10)
    harness.store.download_batches.clear()
    harness.cache.entries.clear()
    page = await harness.service.list_photos("alice", variants=["thumb"])
    assert len(harness.store.download_batches) == 1
    assert len(harness.store.download_batches[0]) == 6  # 3 originals + 3 thumbs
    assert all([v.variant.name for v in p.variants] == ["thumb"] for p in page.photos)
    again = await harness.service.list_photos("alice")
    assert len(harness.store.download_batches) == 2  # only the previews were signed
    assert len(harness.store.download_batches[1]) == 3
    assert all(len(p.variants) == 2 for p in again.photos)


async def test_batch_urls_of_a_variant(harness: Harness) -> None:
    ready = await harness.upload_photo(data=jpeg((90, 60)))
    await worker(harness).run_due()
    pending = await harness.upload_photo(data=jpeg((90, 60)))
    urls = await harness.service.batch_get_photo_urls(
        "alice", [str(ready.id), str(pending.id)], variant="thumb"
    )
    assert urls[0].variant == "thumb"
    assert f"/variants/{ready.id}/thumb.webp?" in urls[0].url
    assert urls[1].variant == ""  # not processed yet: its original
    assert urls[1].url.startswith(f"https://s3.test/{pending.object_key}?")
    with pytest.raises(InvalidArgument):
        await harness.service.batch_get_photo_urls("alice", [str(ready.id)], variant="huge")


async def test_public_variants_are_unsigned_and_visibility_changes_forget_them() -> None:
    harness = make_harness(public_base_url="https://cdn.test")
    photo = await harness.upload_photo(data=jpeg((90, 60)))
    await worker(harness).run_due()
    private = await harness.service.get_photo("alice", str(photo.id))
    assert all("sig=" in v.url for v in private.variants)
    assert len(harness.cache.entries) == 3
    from photovault_server.core import PhotoChanges, Visibility

    public = await harness.service.update_photo(
        "alice",
        str(photo.id),
        PhotoChanges(paths=frozenset({"visibility"}), visibility=Visibility.PUBLIC),
    )
    assert harness.cache.entries == {}
    assert {v.url for v in public.variants} == {
        f"https://cdn.test/users/alice/variants/{photo.id}/{n}.webp" for n in ("thumb", "preview")
    }
