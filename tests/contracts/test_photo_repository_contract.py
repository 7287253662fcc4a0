"""PhotoRepository's contract (core/ports.py), run against Postgres and the in-memory fake.

Owners are fresh per test. `expired_uploads` and `queued_object_deletions` see every owner's
rows, so their tests assert on their own rows within the whole answer and on the answer's order,
never on its exact length."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from photovault_server.core.models import (
    Cursor,
    GeoPoint,
    ImageMetadata,
    Photo,
    PhotoChanges,
    PhotoFilter,
    PhotoJob,
    PhotoOrder,
    PhotoQuery,
    PhotoVariant,
    ProcessingState,
    Upload,
    Visibility,
)
from photovault_server.core.ports import PhotoRepository

NOW = datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
QUOTA = 1000
EVERYTHING = 10_000


def new_owner() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def an_upload(
    owner: str, size: int = 100, *, reserved_until: datetime = NOW + timedelta(hours=1)
) -> Upload:
    upload_id = uuid.uuid4()
    return Upload(
        id=upload_id,
        owner_id=owner,
        object_key=f"users/{owner}/photos/{upload_id}.jpg",
        file_name="beach.jpg",
        content_type="image/jpeg",
        size_bytes=size,
        checksum_sha256="c2hhMjU2",
        create_time=NOW,
        reserved_until=reserved_until,
    )


def photo_of(upload: Upload, **fields: object) -> Photo:
    photo = Photo(
        id=upload.id,
        owner_id=upload.owner_id,
        object_key=upload.object_key,
        file_name=upload.file_name,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        checksum_sha256=upload.checksum_sha256,
        title="Beach",
        description="Sand, sea, Sky",
        tags=("holiday", "sea"),
        visibility=Visibility.PRIVATE,
        create_time=NOW,
        update_time=NOW,
    )
    return replace(photo, **fields)  # type: ignore[arg-type]


async def reserve(repo: PhotoRepository, upload: Upload, quota: int = QUOTA) -> None:
    reservation = await repo.reserve_upload(upload, default_quota_bytes=quota, now=NOW)
    assert reservation.accepted, reservation


async def stored_photo(
    repo: PhotoRepository, owner: str, size: int = 100, **fields: object
) -> Photo:
    upload = an_upload(owner, size)
    await reserve(repo, upload)
    photo = await repo.confirm_upload(photo_of(upload, **fields))
    assert photo is not None
    return photo


# accounts and quota ----------------------------------------------------------------------------


async def test_an_account_is_created_on_first_use_with_the_default_quota(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.user_id, account.photo_count, account.used_bytes) == (owner, 0, 0)
    assert (account.pending_bytes, account.quota_bytes, account.create_time) == (0, QUOTA, NOW)
    later = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW + timedelta(1))
    assert later.create_time == NOW


async def test_the_default_quota_is_read_at_each_call(repository: PhotoRepository) -> None:
    # No quota of its own is stored with the account: the configured default applies.
    owner = new_owner()
    await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    account = await repository.get_account(owner, default_quota_bytes=2 * QUOTA, now=NOW)
    assert account.quota_bytes == 2 * QUOTA


async def test_reservations_count_until_they_end(repository: PhotoRepository) -> None:
    owner = new_owner()
    upload = an_upload(owner, 300, reserved_until=NOW + timedelta(minutes=10))
    reservation = await repository.reserve_upload(upload, default_quota_bytes=QUOTA, now=NOW)
    assert (reservation.accepted, reservation.quota_bytes, reservation.reserved_bytes) == (
        True,
        QUOTA,
        300,
    )
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 300
    ended = upload.reserved_until
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=ended)
    assert account.pending_bytes == 0
    # An ended reservation no longer holds quota back.
    full = an_upload(owner, QUOTA)
    assert (await repository.reserve_upload(full, default_quota_bytes=QUOTA, now=ended)).accepted


async def test_a_reservation_over_the_quota_is_refused_with_the_numbers(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    await stored_photo(repository, owner, 400)
    await reserve(repository, an_upload(owner, 500))
    refused = an_upload(owner, 101)
    reservation = await repository.reserve_upload(refused, default_quota_bytes=QUOTA, now=NOW)
    assert (reservation.accepted, reservation.quota_bytes, reservation.reserved_bytes) == (
        False,
        QUOTA,
        900,
    )
    assert await repository.get_upload(owner, refused.id) is None
    exact = an_upload(owner, 100)
    assert (await repository.reserve_upload(exact, default_quota_bytes=QUOTA, now=NOW)).accepted


async def test_concurrent_reservations_never_overshoot_the_quota(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    uploads = [an_upload(owner, 300) for _ in range(10)]
    results = await asyncio.gather(
        *(repository.reserve_upload(u, default_quota_bytes=QUOTA, now=NOW) for u in uploads)
    )
    assert sum(r.accepted for r in results) == 3
    assert sorted(r.reserved_bytes for r in results if r.accepted) == [300, 600, 900]
    assert all(r.reserved_bytes == 900 for r in results if not r.accepted)
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 900


# uploads ---------------------------------------------------------------------------------------


async def test_an_upload_is_seen_by_its_owner_only(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    upload = an_upload(owner)
    await reserve(repository, upload)
    assert await repository.get_upload(owner, upload.id) == upload
    assert await repository.get_upload(other, upload.id) is None
    assert await repository.get_upload(owner, uuid.uuid4()) is None


async def test_deleting_an_upload_releases_its_reservation(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    upload = an_upload(owner, 250)
    await reserve(repository, upload)
    await repository.delete_upload(other, upload.id)  # not theirs: nothing happens
    assert await repository.get_upload(owner, upload.id) == upload
    await repository.delete_upload(owner, upload.id)
    assert await repository.get_upload(owner, upload.id) is None
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 0
    await repository.delete_upload(owner, upload.id)  # already gone: not an error


async def test_expired_uploads_are_those_ended_before_oldest_first(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    base = datetime(2001, 2, 3, 4, 5, 6, 789_000, tzinfo=UTC)
    # Reserved out of order, so that insertion order cannot pass for time order.
    ends = [base + timedelta(minutes=m) for m in (3, 1, 4, 0, 2)]
    uploads = [an_upload(owner, 10, reserved_until=end) for end in ends]
    for upload in uploads:
        await reserve(repository, upload)
    before = base + timedelta(minutes=3)  # strictly before: the one ending then is not expired
    everything = await repository.expired_uploads(before, EVERYTHING)
    assert all(u.reserved_until < before for u in everything)
    times = [u.reserved_until for u in everything]
    assert times == sorted(times)
    ours = [u for u in everything if u.owner_id == owner]
    assert ours == sorted((u for u in uploads if u.reserved_until < before), key=_ends)
    assert len(ours) == 3
    for limit in (1, 2, len(everything)):
        assert await repository.expired_uploads(before, limit) == everything[:limit]


def _ends(upload: Upload) -> datetime:
    return upload.reserved_until


# confirm ---------------------------------------------------------------------------------------


async def test_confirm_turns_the_upload_into_the_photo_and_counts_it(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    upload = an_upload(owner, 123)
    await reserve(repository, upload)
    photo = photo_of(upload)
    assert await repository.confirm_upload(photo) == photo
    assert await repository.get_upload(owner, upload.id) is None
    assert await repository.get_photo(owner, photo.id) == photo
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes, account.pending_bytes) == (1, 123, 0)


async def test_confirm_is_idempotent_and_returns_the_stored_photo(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    upload = an_upload(owner, 50)
    await reserve(repository, upload)
    first = photo_of(upload, title="first")
    assert await repository.confirm_upload(first) == first
    again = await repository.confirm_upload(photo_of(upload, title="second"))
    assert again == first
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 50)


async def test_concurrent_confirms_store_one_photo_and_count_it_once(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    upload = an_upload(owner, 70)
    await reserve(repository, upload)
    titles = [f"try {i}" for i in range(6)]
    results = await asyncio.gather(
        *(repository.confirm_upload(photo_of(upload, title=t)) for t in titles)
    )
    stored = await repository.get_photo(owner, upload.id)
    assert stored is not None
    assert stored.title in titles
    assert results == [stored] * len(titles)
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 70)


async def test_confirm_without_upload_or_photo_is_none(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    assert await repository.confirm_upload(photo_of(an_upload(owner))) is None
    upload = an_upload(owner)
    await reserve(repository, upload)
    # Someone else's upload id: neither an upload nor a photo of theirs.
    assert await repository.confirm_upload(photo_of(upload, owner_id=other)) is None
    assert await repository.get_upload(owner, upload.id) == upload
    await repository.confirm_upload(photo_of(upload))
    assert await repository.confirm_upload(photo_of(upload, owner_id=other)) is None


# photos ----------------------------------------------------------------------------------------


async def test_photos_are_read_back_exactly_and_by_their_owner_only(
    repository: PhotoRepository,
) -> None:
    owner, other = new_owner(), new_owner()
    created = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    photo = await stored_photo(
        repository,
        owner,
        tags=("ünïcode", "a b", ""),
        visibility=Visibility.PUBLIC,
        title="Ἀθῆναι",
        create_time=created,
        update_time=created,
    )
    assert await repository.get_photo(owner, photo.id) == photo
    assert await repository.get_photo(other, photo.id) is None
    assert await repository.get_photo(owner, uuid.uuid4()) is None


async def test_get_photos_returns_the_found_ones_by_id(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    mine = [await stored_photo(repository, owner) for _ in range(3)]
    theirs = await stored_photo(repository, other)
    wanted = [mine[2].id, uuid.uuid4(), mine[0].id, theirs.id, mine[2].id]
    assert await repository.get_photos(owner, wanted) == {mine[0].id: mine[0], mine[2].id: mine[2]}
    assert await repository.get_photos(owner, []) == {}


async def test_update_changes_the_masked_fields_only(repository: PhotoRepository) -> None:
    owner = new_owner()
    photo = await stored_photo(repository, owner)
    later = NOW + timedelta(minutes=5, microseconds=1)
    changes = PhotoChanges(
        paths=frozenset({"title", "tags"}),
        title="New title",
        description="ignored: not in the mask",
        tags=("b", "a"),
        visibility=Visibility.PUBLIC,
    )
    updated = await repository.update_photo(owner, photo.id, changes, later)
    expected = replace(photo, title="New title", tags=("b", "a"), update_time=later)
    assert updated == expected
    assert await repository.get_photo(owner, photo.id) == expected
    everything = PhotoChanges(
        paths=frozenset({"title", "description", "tags", "visibility"}),
        visibility=Visibility.PUBLIC,
    )
    cleared = await repository.update_photo(owner, photo.id, everything, later)
    assert cleared is not None
    assert (cleared.title, cleared.description, cleared.tags) == ("", "", ())
    assert cleared.visibility is Visibility.PUBLIC


async def test_update_of_a_missing_or_foreign_photo_is_none(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    photo = await stored_photo(repository, owner)
    changes = PhotoChanges(paths=frozenset({"title"}), title="hijacked")
    assert await repository.update_photo(other, photo.id, changes, NOW) is None
    assert await repository.update_photo(owner, uuid.uuid4(), changes, NOW) is None
    assert await repository.get_photo(owner, photo.id) == photo


async def test_listing_pages_by_time_then_id_in_either_order(repository: PhotoRepository) -> None:
    # The full agreement of the fake with the SQL is test_listing_agreement.py's.
    owner = new_owner()
    photos = [
        await stored_photo(repository, owner, create_time=NOW + timedelta(seconds=i // 2))
        for i in range(5)
    ]
    oldest_first = sorted(photos, key=lambda p: (p.create_time, p.id))
    query = PhotoQuery(owner, PhotoFilter(), PhotoOrder.OLDEST_FIRST, limit=10)
    assert await repository.list_photos(query) == oldest_first
    newest = PhotoQuery(owner, PhotoFilter(), PhotoOrder.UNSPECIFIED, limit=2)
    assert await repository.list_photos(newest) == oldest_first[::-1][:2]


# delete and the object deletion queue ----------------------------------------------------------


async def test_delete_releases_usage_and_queues_the_object(repository: PhotoRepository) -> None:
    owner = new_owner()
    kept = await stored_photo(repository, owner, 100)
    gone = await stored_photo(repository, owner, 250)
    assert await repository.delete_photo(owner, gone.id) == gone
    assert await repository.get_photo(owner, gone.id) is None
    assert await repository.get_photo(owner, kept.id) == kept
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 100)
    assert gone.object_key in await repository.queued_object_deletions(EVERYTHING)
    assert kept.object_key not in await repository.queued_object_deletions(EVERYTHING)
    assert await repository.delete_photo(owner, gone.id) is None  # a repeat changes nothing
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 100)
    await repository.object_deleted(gone.object_key)


async def test_delete_of_a_foreign_photo_does_nothing(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    photo = await stored_photo(repository, owner)
    assert await repository.delete_photo(other, photo.id) is None
    assert await repository.get_photo(owner, photo.id) == photo
    assert photo.object_key not in await repository.queued_object_deletions(EVERYTHING)


async def test_queued_deletions_come_oldest_first_until_done(repository: PhotoRepository) -> None:
    owner = new_owner()
    photos = [await stored_photo(repository, owner) for _ in range(4)]
    for photo in photos:
        await repository.delete_photo(owner, photo.id)
    keys = [p.object_key for p in photos]
    queue = await repository.queued_object_deletions(EVERYTHING)
    assert [k for k in queue if k in keys] == keys
    for limit in (1, 3):
        assert await repository.queued_object_deletions(limit) == queue[:limit]
    await repository.object_deleted(keys[1])
    await repository.object_deleted(keys[1])  # done twice: not an error
    await repository.object_deleted("users/nobody/photos/never-queued.jpg")
    queue = await repository.queued_object_deletions(EVERYTHING)
    assert [k for k in queue if k in keys] == [keys[0], keys[2], keys[3]]
    for key in keys:
        await repository.object_deleted(key)
    assert not set(keys) & set(await repository.queued_object_deletions(EVERYTHING))


# processing jobs ------------------------------------------------------------------------------

LEASE = timedelta(minutes=5)
# Far past every other test's jobs' due time, so that claims here see them all (and ours).
CLAIM_AT = NOW + timedelta(days=3650)


def some_metadata(taken: datetime | None = None) -> ImageMetadata:
    return ImageMetadata(
        width=4000,
        height=3000,
        taken_time=taken,
        camera="Canon EOS R5",
        location=GeoPoint(48.8584, -2.2945),
        placeholder="VIoABYB/SJmH",
    )


def variants_of(photo: Photo) -> list[PhotoVariant]:
    return [
        PhotoVariant(
            name=name,
            object_key=f"users/{photo.owner_id}/variants/{photo.id}/{name}.webp",
            content_type="image/webp",
            width=side,
            height=side * 3 // 4,
            size_bytes=side * 10,
        )
        for name, side in (("thumb", 320), ("preview", 1600))
    ]


async def claim_own(repo: PhotoRepository, photo: Photo, at: datetime) -> list[PhotoJob]:
    jobs = await repo.claim_photo_jobs(at, EVERYTHING, LEASE)
    return [job for job in jobs if job.photo.id == photo.id]


async def test_a_confirm_queues_one_job_claimed_once_per_lease(
    repository: PhotoRepository,
) -> None:
    photo = await stored_photo(repository, new_owner())
    assert photo.processing_state is ProcessingState.PENDING
    (job,) = await claim_own(repository, photo, CLAIM_AT)
    assert (job.photo, job.attempts) == (photo, 1)
    assert await claim_own(repository, photo, CLAIM_AT + LEASE - timedelta(seconds=1)) == []
    (again,) = await claim_own(repository, photo, CLAIM_AT + LEASE)
    assert again.attempts == 2


async def test_concurrent_claims_never_share_a_job(repository: PhotoRepository) -> None:
    photos = [await stored_photo(repository, new_owner()) for _ in range(4)]
    ours = {p.id for p in photos}
    claims = await asyncio.gather(
        *(repository.claim_photo_jobs(CLAIM_AT, EVERYTHING, LEASE) for _ in range(3))
    )
    claimed = [job.photo.id for jobs in claims for job in jobs if job.photo.id in ours]
    assert sorted(claimed) == sorted(ours)


async def test_a_finished_job_makes_the_photo_ready(repository: PhotoRepository) -> None:
    photo = await stored_photo(repository, new_owner())
    taken = datetime(2019, 5, 4, 3, 2, 1, tzinfo=UTC)
    variants = variants_of(photo)
    later = NOW + timedelta(minutes=1)
    assert await repository.finish_photo_job(
        photo.owner_id, photo.id, some_metadata(taken), variants, later
    )
    ready = await repository.get_photo(photo.owner_id, photo.id)
    assert ready is not None
    assert ready.processing_state is ProcessingState.READY
    assert ready.metadata == some_metadata(taken)
    assert ready.variants == tuple(variants)
    assert ready.update_time == later
    assert await claim_own(repository, photo, CLAIM_AT + 2 * LEASE) == []


async def test_a_failed_job_makes_the_photo_failed(repository: PhotoRepository) -> None:
    photo = await stored_photo(repository, new_owner())
    assert await repository.fail_photo_job(photo.owner_id, photo.id, "corrupt image", NOW)
    failed = await repository.get_photo(photo.owner_id, photo.id)
    assert failed is not None
    assert (failed.processing_state, failed.metadata, failed.variants) == (
        ProcessingState.FAILED,
        None,
        (),
    )
    assert await claim_own(repository, photo, CLAIM_AT + 2 * LEASE) == []


async def test_a_retried_job_is_due_at_its_time(repository: PhotoRepository) -> None:
    photo = await stored_photo(repository, new_owner())
    await claim_own(repository, photo, CLAIM_AT)
    await repository.retry_photo_job(photo.id, CLAIM_AT + timedelta(seconds=30), "S3 down")
    assert await claim_own(repository, photo, CLAIM_AT + timedelta(seconds=29)) == []
    assert len(await claim_own(repository, photo, CLAIM_AT + timedelta(seconds=30))) == 1


async def test_a_job_of_a_deleted_photo_queues_its_variants(repository: PhotoRepository) -> None:
    photo = await stored_photo(repository, new_owner())
    await repository.delete_photo(photo.owner_id, photo.id)
    assert await claim_own(repository, photo, CLAIM_AT) == []
    variants = variants_of(photo)
    assert not await repository.finish_photo_job(
        photo.owner_id, photo.id, some_metadata(), variants, NOW
    )
    queued = await repository.queued_object_deletions(EVERYTHING)
    assert {v.object_key for v in variants} <= set(queued)


async def test_deleting_a_ready_photo_queues_its_variants(repository: PhotoRepository) -> None:
    photo = await stored_photo(repository, new_owner())
    variants = variants_of(photo)
    await repository.finish_photo_job(photo.owner_id, photo.id, some_metadata(), variants, NOW)
    await repository.delete_photo(photo.owner_id, photo.id)
    queued = await repository.queued_object_deletions(EVERYTHING)
    assert {photo.object_key, *(v.object_key for v in variants)} <= set(queued)


async def test_taken_time_orders_and_filters_fall_back_to_the_create_time(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    old = await stored_photo(repository, owner, create_time=NOW + timedelta(hours=1))
    await repository.finish_photo_job(
        owner, old.id, some_metadata(NOW - timedelta(days=400)), [], NOW
    )
    plain = await stored_photo(repository, owner, create_time=NOW)  # never processed
    newer = await stored_photo(repository, owner, create_time=NOW - timedelta(hours=1))
    await repository.finish_photo_job(
        owner, newer.id, some_metadata(NOW + timedelta(days=1)), [], NOW
    )

    async def listed(order: PhotoOrder, **flt: datetime) -> list[uuid.UUID]:
        query = PhotoQuery(owner, PhotoFilter(**flt), order, limit=EVERYTHING)  # type: ignore[arg-type]
        return [p.id for p in await repository.list_photos(query)]

    assert await listed(PhotoOrder.TAKEN_NEWEST_FIRST) == [newer.id, plain.id, old.id]
    assert await listed(PhotoOrder.TAKEN_OLDEST_FIRST) == [old.id, plain.id, newer.id]
    assert await listed(PhotoOrder.NEWEST_FIRST) == [old.id, plain.id, newer.id]
    assert await listed(PhotoOrder.TAKEN_NEWEST_FIRST, taken_after=NOW) == [newer.id, plain.id]
    assert await listed(PhotoOrder.TAKEN_OLDEST_FIRST, taken_before=NOW) == [old.id]
    after_plain = PhotoQuery(
        owner,
        PhotoFilter(),
        PhotoOrder.TAKEN_NEWEST_FIRST,
        limit=EVERYTHING,
        after=Cursor(create_time=NOW, photo_id=plain.id),
    )
    assert [p.id for p in await repository.list_photos(after_plain)] == [old.id]
