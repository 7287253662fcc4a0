"""PhotoRepository's contract (core/ports.py), run against Postgres and the in-memory fake.

Owners are fresh per test. The sweep's claims (`claim_expired_uploads`,
`claim_object_deletions`) see every owner's rows, and the Postgres database is shared by the
whole run: their tests assert on their own rows within the whole answer, give back any other
row they claimed, and finish their own rows, so that no test depends on what another left.
Expired uploads live in years of their own, long before any other test's, so that `before`
can isolate a test's rows where the answer's exact length matters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace

from photovault_server.core.models import (
    Cursor,
    GeoPoint,
    ImageMetadata,
    JobBacklog,
    Photo,
    PhotoChanges,
    PhotoFilter,
    PhotoJob,
    PhotoOrder,
    PhotoQuery,
    PhotoVariant,
    ProcessingState,
    Reservation,
    Upload,
    Visibility,
)
from photovault_server.core.ports import PhotoRepository

NOW = datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
QUOTA = 1000
EVERYTHING = 10_000
MANY = 1000  # pending uploads allowed where the bound is not what a test is about
CLAIM = timedelta(minutes=5)
WINDOW = timedelta(hours=1)  # delete_photo's upload_window


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
    return replace(photo, **fields)


async def reserve(
    repo: PhotoRepository, upload: Upload, quota: int = QUOTA, *, now: datetime = NOW
) -> None:
    reservation = await repo.reserve_upload(
        upload, default_quota_bytes=quota, max_pending_uploads=MANY, now=now
    )
    assert reservation.accepted, reservation


async def stored_photo(
    repo: PhotoRepository, owner: str, size: int = 100, **fields: object
) -> Photo:
    upload = an_upload(owner, size)
    await reserve(repo, upload)
    photo = await repo.confirm_upload(photo_of(upload, **fields), now=NOW)
    assert photo is not None
    return photo


async def claim_deletions(
    repo: PhotoRepository, ours: Collection[str], *, now: datetime, limit: int = EVERYTHING
) -> list[str]:
    """Claims due deletions until now + CLAIM; returns ours in the order claimed and gives the
    others' rows back as they were (unclaimed, since only unclaimed rows can be claimed)."""
    claimed = await repo.claim_object_deletions(now=now, claim_until=now + CLAIM, limit=limit)
    assert len(claimed) <= limit
    assert len(set(claimed)) == len(claimed)
    others = [key for key in claimed if key not in ours]
    if others:
        await repo.release_object_deletions(others)
    return [key for key in claimed if key in ours]


async def deleted_photo(repo: PhotoRepository, owner: str, *, create_time: datetime) -> str:
    """A photo created at `create_time`, deleted now: its object key, queued."""
    photo = await stored_photo(repo, owner, create_time=create_time, update_time=create_time)
    assert await repo.delete_photo(owner, photo.id, upload_window=WINDOW) == photo
    return photo.object_key


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
    reservation = await repository.reserve_upload(
        upload, default_quota_bytes=QUOTA, max_pending_uploads=MANY, now=NOW
    )
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
    full = an_upload(owner, QUOTA, reserved_until=ended + timedelta(minutes=10))
    await reserve(repository, full, now=ended)


async def test_a_reservation_over_the_quota_is_refused_with_the_numbers(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    await stored_photo(repository, owner, 400)
    await reserve(repository, an_upload(owner, 500))
    refused = an_upload(owner, 101)
    reservation = await repository.reserve_upload(
        refused, default_quota_bytes=QUOTA, max_pending_uploads=MANY, now=NOW
    )
    assert reservation == Reservation(accepted=False, quota_bytes=QUOTA, reserved_bytes=900)
    assert await repository.get_upload(owner, refused.id) is None
    await reserve(repository, an_upload(owner, 100))  # exactly the quota


async def test_concurrent_reservations_never_overshoot_the_quota(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    uploads = [an_upload(owner, 300) for _ in range(10)]
    results = await asyncio.gather(
        *(
            repository.reserve_upload(
                u, default_quota_bytes=QUOTA, max_pending_uploads=MANY, now=NOW
            )
            for u in uploads
        )
    )
    assert sum(r.accepted for r in results) == 3
    assert sorted(r.reserved_bytes for r in results if r.accepted) == [300, 600, 900]
    assert all(r.reserved_bytes == 900 for r in results if not r.accepted)
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 900


async def test_pending_uploads_are_bounded_per_owner(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    bound = 3
    ends = [NOW + timedelta(minutes=m) for m in (10, 20, 30)]
    uploads = [an_upload(owner, 10, reserved_until=end) for end in ends]
    for upload in uploads:
        reservation = await repository.reserve_upload(
            upload, default_quota_bytes=QUOTA, max_pending_uploads=bound, now=NOW
        )
        assert reservation == Reservation(
            accepted=True, quota_bytes=QUOTA, reserved_bytes=reservation.reserved_bytes
        )
    one_more = an_upload(owner, 10)
    refused = await repository.reserve_upload(
        one_more, default_quota_bytes=QUOTA, max_pending_uploads=bound, now=NOW
    )
    assert refused == Reservation(
        accepted=False, quota_bytes=QUOTA, reserved_bytes=30, too_many_pending=True
    )
    assert await repository.get_upload(owner, one_more.id) is None
    # The bound is per owner...
    theirs = await repository.reserve_upload(
        an_upload(other, 10), default_quota_bytes=QUOTA, max_pending_uploads=bound, now=NOW
    )
    assert theirs.accepted
    # ...counts live reservations only: one that ended frees its place...
    ended = ends[0]
    freed = await repository.reserve_upload(
        an_upload(owner, 10, reserved_until=ended + timedelta(hours=1)),
        default_quota_bytes=QUOTA,
        max_pending_uploads=bound,
        now=ended,
    )
    assert freed.accepted
    # ...and so does a confirmed one.
    assert await repository.confirm_upload(photo_of(uploads[1]), now=ended) is not None
    confirmed = await repository.reserve_upload(
        an_upload(owner, 10, reserved_until=ended + timedelta(hours=1)),
        default_quota_bytes=QUOTA,
        max_pending_uploads=bound,
        now=ended,
    )
    assert confirmed.accepted


async def test_concurrent_reservations_never_overshoot_the_pending_bound(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    results = await asyncio.gather(
        *(
            repository.reserve_upload(
                an_upload(owner, 1), default_quota_bytes=QUOTA, max_pending_uploads=4, now=NOW
            )
            for _ in range(10)
        )
    )
    assert sum(r.accepted for r in results) == 4
    assert all(r.too_many_pending for r in results if not r.accepted)
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 4


# uploads ---------------------------------------------------------------------------------------


async def test_an_upload_is_seen_by_its_owner_only(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    upload = an_upload(owner)
    await reserve(repository, upload)
    assert await repository.get_upload(owner, upload.id) == upload
    assert await repository.get_upload(other, upload.id) is None
    assert await repository.get_upload(owner, uuid.uuid4()) is None


async def test_expire_upload_only_once_the_reservation_ended(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    upload = an_upload(owner, 250, reserved_until=NOW + timedelta(minutes=10))
    await reserve(repository, upload)
    ended, later = upload.reserved_until, upload.reserved_until + WINDOW
    # Still reserved: nothing happens.
    before_end = ended - timedelta(microseconds=1)
    expired = await repository.expire_upload(owner, upload.id, now=before_end, not_before=later)
    assert expired is None
    assert await repository.get_upload(owner, upload.id) == upload
    # Not theirs: nothing happens.
    assert await repository.expire_upload(other, upload.id, now=ended, not_before=later) is None
    assert await repository.get_upload(owner, upload.id) == upload
    # Ended (at reserved_until itself): gone, its quota released, its object queued.
    key = await repository.expire_upload(owner, upload.id, now=ended, not_before=later)
    assert key == upload.object_key
    assert await repository.get_upload(owner, upload.id) is None
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert account.pending_bytes == 0
    assert await claim_deletions(repository, [key], now=ended) == [key]
    # Already gone, or never there: None.
    assert await repository.expire_upload(owner, upload.id, now=later, not_before=later) is None
    assert await repository.expire_upload(owner, uuid.uuid4(), now=later, not_before=later) is None
    await repository.objects_deleted([key], deleted_at=later)


async def test_expire_upload_of_a_confirmed_upload_is_none(repository: PhotoRepository) -> None:
    owner = new_owner()
    upload = an_upload(owner)
    await reserve(repository, upload)
    photo = await repository.confirm_upload(photo_of(upload), now=NOW)
    assert photo is not None
    ended = upload.reserved_until
    assert await repository.expire_upload(owner, upload.id, now=ended, not_before=ended) is None
    assert await repository.get_photo(owner, photo.id) == photo
    assert await claim_deletions(repository, [upload.object_key], now=ended) == []


async def test_an_expired_uploads_object_is_done_once_deleted_at_or_after_not_before(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    upload = an_upload(owner, reserved_until=NOW)
    await reserve(repository, upload, now=NOW - timedelta(minutes=1))
    not_before = NOW + WINDOW
    key = await repository.expire_upload(owner, upload.id, now=NOW, not_before=not_before)
    assert key is not None
    # Deleted too early: the row waits for its second deletion, not due before not_before.
    assert await claim_deletions(repository, [key], now=NOW) == [key]
    await repository.objects_deleted([key], deleted_at=not_before - timedelta(microseconds=1))
    assert await claim_deletions(repository, [key], now=NOW + timedelta(minutes=1)) == []
    due = await claim_deletions(repository, [key], now=not_before)
    assert due == [key]
    # Deleted at not_before: done.
    await repository.objects_deleted([key], deleted_at=not_before)
    assert await claim_deletions(repository, [key], now=not_before + WINDOW) == []


# The sweep's claims on expired uploads. Each test's uploads end in a year of its own, long past.


def expired_upload(owner: str, ends: datetime) -> Upload:
    return replace(an_upload(owner, 10, reserved_until=ends), create_time=ends - CLAIM)


async def reserve_expired(repo: PhotoRepository, uploads: list[Upload]) -> None:
    for upload in uploads:
        await reserve(repo, upload, now=upload.create_time)


async def test_claimed_expired_uploads_are_those_ended_before_oldest_first(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    base = datetime(1001, 2, 3, 4, 5, 6, 789_000, tzinfo=UTC)  # no other test's uploads
    # Reserved out of order, so that insertion order cannot pass for time order.
    ends = [base + timedelta(minutes=m) for m in (3, 1, 4, 0, 2)]
    uploads = [expired_upload(owner, end) for end in ends]
    await reserve_expired(repository, uploads)
    before = base + timedelta(minutes=3)  # strictly before: the one ending then is not expired
    expected = sorted((u for u in uploads if u.reserved_until < before), key=_ends)
    assert len(expected) == 3
    now = NOW
    first = await repository.claim_expired_uploads(
        before, now=now, claim_until=now + CLAIM, limit=2
    )
    assert first == expected[:2]
    rest = await repository.claim_expired_uploads(
        before, now=now, claim_until=now + CLAIM, limit=EVERYTHING
    )
    assert rest == expected[2:]
    # Claimed, they are still pending uploads until the sweeper deletes them.
    assert await repository.get_upload(owner, expected[0].id) == expected[0]
    await repository.delete_uploads([u.id for u in uploads])
    for upload in uploads:
        assert await repository.get_upload(owner, upload.id) is None


def _ends(upload: Upload) -> datetime:
    return upload.reserved_until


async def test_a_claim_holds_expired_uploads_until_claim_until(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    base = datetime(1002, 1, 1, tzinfo=UTC)
    uploads = [expired_upload(owner, base + timedelta(minutes=m)) for m in range(2)]
    await reserve_expired(repository, uploads)
    before, ours = base + timedelta(days=1), {u.id for u in uploads}

    async def claim(now: datetime) -> list[Upload]:
        claimed = await repository.claim_expired_uploads(
            before, now=now, claim_until=now + CLAIM, limit=EVERYTHING
        )
        others = [u.id for u in claimed if u.id not in ours]
        if others:
            await repository.release_uploads(others)
        return [u for u in claimed if u.id in ours]

    assert await claim(NOW) == uploads
    assert await claim(NOW) == []  # held by the first claim...
    assert await claim(NOW + CLAIM) == []  # ...through claim_until...
    again = await claim(NOW + CLAIM + timedelta(microseconds=1))  # ...and free after it
    assert again == uploads
    # Released: free again at once.
    await repository.release_uploads([uploads[1].id])
    assert await claim(NOW + CLAIM) == [uploads[1]]
    await repository.delete_uploads([u.id for u in uploads])
    assert await claim(NOW + 10 * CLAIM) == []


async def test_deleted_uploads_may_queue_their_keys_for_another_deletion(
    repository: PhotoRepository,
) -> None:
    """The sweep's multipart uploads: rows gone, keys deleted now and again at not_before
    (a late CompleteMultipartUpload may make the object again meanwhile)."""
    owner = new_owner()
    uploads = [expired_upload(owner, datetime(1004, 1, 1, tzinfo=UTC)) for _ in range(2)]
    await reserve_expired(repository, uploads)
    again = [uploads[0].object_key]
    settle = NOW + timedelta(hours=1)
    await repository.delete_uploads([u.id for u in uploads], delete_again=again, not_before=settle)
    for u in uploads:
        assert await repository.get_upload(owner, u.id) is None
    keys = [u.object_key for u in uploads]
    assert await claim_deletions(repository, keys, now=NOW) == again
    await repository.objects_deleted(again, deleted_at=NOW)
    assert await claim_deletions(repository, keys, now=settle - timedelta(microseconds=1)) == []
    assert await claim_deletions(repository, keys, now=settle) == again
    await repository.objects_deleted(again, deleted_at=settle)
    assert await claim_deletions(repository, keys, now=settle + 2 * CLAIM) == []


async def test_concurrent_claimers_never_get_the_same_expired_uploads(
    repository: PhotoRepository,
) -> None:
    owners = [new_owner() for _ in range(3)]
    base = datetime(1003, 1, 1, tzinfo=UTC)
    uploads = [
        expired_upload(owner, base + timedelta(seconds=i)) for i, owner in enumerate(owners * 4)
    ]
    await reserve_expired(repository, uploads)
    before, ours = base + timedelta(days=1), {u.id for u in uploads}
    answers = await asyncio.gather(
        *(
            repository.claim_expired_uploads(before, now=NOW, claim_until=NOW + CLAIM, limit=3)
            for _ in range(6)
        )
    )
    claimed = [u.id for answer in answers for u in answer]
    assert len(set(claimed)) == len(claimed), "two claimers got the same upload"
    # What they left is still there for the next claim; together, every upload once.
    rest = await repository.claim_expired_uploads(
        before, now=NOW, claim_until=NOW + CLAIM, limit=EVERYTHING
    )
    everything = claimed + [u.id for u in rest]
    assert len(set(everything)) == len(everything)
    assert ours <= set(everything)
    others = [i for i in everything if i not in ours]
    if others:
        await repository.release_uploads(others)
    await repository.delete_uploads(list(ours))


# confirm ---------------------------------------------------------------------------------------


async def test_confirm_turns_the_upload_into_the_photo_and_counts_it(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    upload = an_upload(owner, 123)
    await reserve(repository, upload)
    photo = photo_of(upload)
    assert await repository.confirm_upload(photo, now=NOW) == photo
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
    assert await repository.confirm_upload(first, now=NOW) == first
    again = await repository.confirm_upload(photo_of(upload, title="second"), now=NOW)
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
        *(repository.confirm_upload(photo_of(upload, title=t), now=NOW) for t in titles)
    )
    stored = await repository.get_photo(owner, upload.id)
    assert stored is not None
    assert stored.title in titles
    assert results == [stored] * len(titles)
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 70)


async def test_confirm_without_upload_or_photo_is_none(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    assert await repository.confirm_upload(photo_of(an_upload(owner)), now=NOW) is None
    upload = an_upload(owner)
    await reserve(repository, upload)
    # Someone else's upload id: neither an upload nor a photo of theirs.
    assert await repository.confirm_upload(photo_of(upload, owner_id=other), now=NOW) is None
    assert await repository.get_upload(owner, upload.id) == upload
    assert await repository.confirm_upload(photo_of(upload), now=NOW) is not None
    assert await repository.confirm_upload(photo_of(upload, owner_id=other), now=NOW) is None


async def test_confirm_is_refused_once_the_reservation_ended(repository: PhotoRepository) -> None:
    owner = new_owner()
    late, in_time = (an_upload(owner, 60, reserved_until=NOW + timedelta(minutes=10)) for _ in "ab")
    await reserve(repository, late)
    await reserve(repository, in_time)
    ended = late.reserved_until
    assert await repository.confirm_upload(photo_of(late), now=ended) is None
    # Nothing recorded, and the upload is left for the sweep to expire.
    assert await repository.get_photo(owner, late.id) is None
    assert await repository.get_upload(owner, late.id) == late
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (0, 0)
    assert await repository.expire_upload(owner, late.id, now=ended, not_before=ended) is not None
    # The last instant of a reservation is still in time.
    last = ended - timedelta(microseconds=1)
    assert await repository.confirm_upload(photo_of(in_time), now=last) == photo_of(in_time)
    await repository.objects_deleted([late.object_key], deleted_at=ended)


async def test_confirm_and_expire_of_one_upload_never_both_win(
    repository: PhotoRepository,
) -> None:
    """A confirm checked just in time races the sweep's expiry: whoever takes the row decides,
    so a photo is never recorded for an upload whose object is queued for deletion."""
    owner = new_owner()
    for _ in range(5):
        upload = an_upload(owner, 10, reserved_until=NOW + timedelta(minutes=10))
        await reserve(repository, upload)
        ended = upload.reserved_until
        photo, key = await asyncio.gather(
            repository.confirm_upload(photo_of(upload), now=ended - timedelta(microseconds=1)),
            repository.expire_upload(owner, upload.id, now=ended, not_before=ended),
        )
        assert (photo is None) != (key is None), (photo, key)
        assert await repository.get_upload(owner, upload.id) is None
        stored = await repository.get_photo(owner, upload.id)
        assert stored == photo
        if key is not None:
            await repository.objects_deleted([key], deleted_at=ended)


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
    assert await repository.delete_photo(owner, gone.id, upload_window=WINDOW) == gone
    assert await repository.get_photo(owner, gone.id) is None
    assert await repository.get_photo(owner, kept.id) == kept
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 100)
    keys = [gone.object_key, kept.object_key]
    assert await claim_deletions(repository, keys, now=NOW) == [gone.object_key]
    # A repeat changes nothing.
    assert await repository.delete_photo(owner, gone.id, upload_window=WINDOW) is None
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (1, 100)
    await repository.objects_deleted([gone.object_key], deleted_at=NOW + WINDOW)
    assert await claim_deletions(repository, keys, now=NOW + 2 * CLAIM) == []


async def test_delete_of_a_foreign_photo_does_nothing(repository: PhotoRepository) -> None:
    owner, other = new_owner(), new_owner()
    photo = await stored_photo(repository, owner)
    assert await repository.delete_photo(other, photo.id, upload_window=WINDOW) is None
    assert await repository.get_photo(owner, photo.id) == photo
    assert await claim_deletions(repository, [photo.object_key], now=NOW) == []


async def test_a_deleted_photos_object_waits_for_a_deletion_after_its_upload_window(
    repository: PhotoRepository,
) -> None:
    """An upload URL could recreate the object until create_time + upload_window: a deletion
    sent before then leaves the row for a second one, due at that time."""
    owner = new_owner()
    key = await deleted_photo(repository, owner, create_time=NOW)
    not_before = NOW + WINDOW
    early = NOW + timedelta(minutes=1)
    assert await claim_deletions(repository, [key], now=early) == [key]
    await repository.objects_deleted([key], deleted_at=early)
    # Not due again before not_before, whatever the claims.
    assert await claim_deletions(repository, [key], now=early + 2 * CLAIM) == []
    just_before = not_before - timedelta(microseconds=1)
    assert await claim_deletions(repository, [key], now=just_before) == []
    assert await claim_deletions(repository, [key], now=not_before) == [key]
    # A deletion sent before not_before, reported late, still does not count.
    await repository.objects_deleted([key], deleted_at=just_before)
    assert await claim_deletions(repository, [key], now=not_before) == [key]
    await repository.objects_deleted([key], deleted_at=not_before)
    assert await claim_deletions(repository, [key], now=not_before + 2 * CLAIM) == []


async def test_an_object_past_its_upload_window_is_done_with_one_deletion(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    created = NOW - 2 * WINDOW
    key = await deleted_photo(repository, owner, create_time=created)
    assert await claim_deletions(repository, [key], now=NOW) == [key]
    await repository.objects_deleted([key], deleted_at=NOW)
    assert await claim_deletions(repository, [key], now=NOW + 10 * WINDOW) == []


async def test_queued_deletions_are_claimed_oldest_first_until_done(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    keys = [await deleted_photo(repository, owner, create_time=NOW - 2 * WINDOW) for _ in range(4)]
    # Two claims: the first takes the oldest due rows (other tests' older ones included),
    # the second the rest; ours come in the order they were queued.
    first = await claim_deletions(repository, keys, now=NOW, limit=2)
    rest = await claim_deletions(repository, keys, now=NOW)
    assert first + rest == keys
    await repository.objects_deleted([keys[1]], deleted_at=NOW)
    await repository.objects_deleted([keys[1]], deleted_at=NOW)  # done twice: not an error
    never_queued = "users/nobody/photos/never-queued.jpg"
    await repository.objects_deleted([never_queued], deleted_at=NOW)
    await repository.release_object_deletions([never_queued])
    await repository.release_object_deletions([keys[0], keys[2], keys[3]])
    after = NOW + timedelta(seconds=1)
    assert await claim_deletions(repository, keys, now=after) == [keys[0], keys[2], keys[3]]
    await repository.objects_deleted(keys, deleted_at=after)
    assert await claim_deletions(repository, keys, now=after + 2 * CLAIM) == []


async def test_a_claim_holds_queued_deletions_until_claim_until(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    keys = [await deleted_photo(repository, owner, create_time=NOW - 2 * WINDOW) for _ in range(2)]
    assert await claim_deletions(repository, keys, now=NOW) == keys
    assert await claim_deletions(repository, keys, now=NOW) == []  # held...
    assert await claim_deletions(repository, keys, now=NOW + CLAIM) == []  # ...through it...
    later = NOW + CLAIM + timedelta(microseconds=1)
    assert await claim_deletions(repository, keys, now=later) == keys  # ...free after it
    await repository.release_object_deletions([keys[0]])
    assert await claim_deletions(repository, keys, now=later) == [keys[0]]
    await repository.objects_deleted(keys, deleted_at=later)


async def test_concurrent_claimers_never_get_the_same_queued_deletions(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    keys = [await deleted_photo(repository, owner, create_time=NOW - 2 * WINDOW) for _ in range(12)]
    answers = await asyncio.gather(
        *(
            repository.claim_object_deletions(now=NOW, claim_until=NOW + CLAIM, limit=3)
            for _ in range(6)
        )
    )
    claimed = [key for answer in answers for key in answer]
    assert len(set(claimed)) == len(claimed), "two claimers got the same object"
    others = [key for key in claimed if key not in keys]
    if others:
        await repository.release_object_deletions(others)
    # What they left is still there for the next claim; together, every object once.
    rest = await claim_deletions(repository, keys, now=NOW)
    ours = [key for key in claimed if key in keys] + rest
    assert sorted(ours) == sorted(keys)
    await repository.objects_deleted(keys, deleted_at=NOW)


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


async def test_a_refused_or_repeated_confirm_queues_no_job(repository: PhotoRepository) -> None:
    owner = new_owner()
    late = an_upload(owner, reserved_until=NOW + timedelta(minutes=10))
    await reserve(repository, late)
    assert await repository.confirm_upload(photo_of(late), now=late.reserved_until) is None
    assert await claim_own(repository, photo_of(late), CLAIM_AT) == []
    photo = await stored_photo(repository, owner)
    assert len(await claim_own(repository, photo, CLAIM_AT)) == 1
    assert await repository.finish_photo_job(owner, photo.id, some_metadata(), [], NOW)
    again = await repository.confirm_upload(replace(photo, title="again"), now=NOW)
    assert again is not None
    assert again.processing_state is ProcessingState.READY
    assert await claim_own(repository, photo, CLAIM_AT + 2 * LEASE) == []
    assert await repository.expire_upload(
        owner, late.id, now=late.reserved_until, not_before=late.reserved_until
    )
    await repository.objects_deleted([late.object_key], deleted_at=late.reserved_until)


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
    """Deleted while processed: the variants written meanwhile are queued; a deletion sent
    before the job finished (a sweep that ran during it) does not count, one after does."""
    owner = new_owner()
    photo = await stored_photo(repository, owner)
    assert await repository.delete_photo(owner, photo.id, upload_window=WINDOW) == photo
    assert await claim_own(repository, photo, CLAIM_AT) == []
    variants = variants_of(photo)
    finished = NOW + timedelta(minutes=1)
    assert not await repository.finish_photo_job(
        owner, photo.id, some_metadata(), variants, finished
    )
    keys = sorted(v.object_key for v in variants)
    assert sorted(await claim_deletions(repository, keys, now=finished)) == keys
    await repository.objects_deleted(keys, deleted_at=NOW)
    assert sorted(await claim_deletions(repository, keys, now=finished)) == keys
    await repository.objects_deleted(keys, deleted_at=finished)
    assert await claim_deletions(repository, keys, now=finished + 2 * CLAIM) == []
    await repository.objects_deleted([photo.object_key], deleted_at=NOW + WINDOW)


async def test_deleting_a_ready_photo_queues_its_variants(repository: PhotoRepository) -> None:
    """The variants go with one deletion; the original waits for its upload window too."""
    owner = new_owner()
    photo = await stored_photo(repository, owner)
    variants = variants_of(photo)
    assert await repository.finish_photo_job(owner, photo.id, some_metadata(), variants, NOW)
    assert await repository.delete_photo(owner, photo.id, upload_window=WINDOW) is not None
    keys = sorted([photo.object_key, *(v.object_key for v in variants)])
    assert sorted(await claim_deletions(repository, keys, now=NOW)) == keys
    await repository.objects_deleted(keys, deleted_at=NOW)
    assert await claim_deletions(repository, keys, now=NOW + 2 * CLAIM) == []
    assert await claim_deletions(repository, keys, now=NOW + WINDOW) == [photo.object_key]
    await repository.objects_deleted([photo.object_key], deleted_at=NOW + WINDOW)
    assert await claim_deletions(repository, keys, now=NOW + WINDOW + 2 * CLAIM) == []


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


# the trash ------------------------------------------------------------------------------------

# Trash times of the purge tests: years long before any other test's photos were trashed (the
# services' tests trash at the wall clock), so that `trashed_before` reaches this test's rows
# and no other's that are still meant to be there.
TRASHED_LONG_AGO = datetime(1990, 1, 1, tzinfo=UTC)


async def test_a_trashed_photo_is_hidden_from_reads_but_keeps_its_usage(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    kept = await stored_photo(repository, owner, 100)
    trashed = await stored_photo(repository, owner, 250)
    moved = await repository.trash_photo(owner, trashed.id, NOW)
    assert moved == replace(trashed, trash_time=NOW)
    assert await repository.get_photo(owner, trashed.id) is None
    assert await repository.get_photos(owner, [kept.id, trashed.id]) == {kept.id: kept}
    query = PhotoQuery(owner, PhotoFilter(), PhotoOrder.NEWEST_FIRST, limit=10)
    assert await repository.list_photos(query) == [kept]
    changes = PhotoChanges(paths=frozenset({"title"}), title="changed in the trash")
    assert await repository.update_photo(owner, trashed.id, changes, NOW) is None
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (2, 350)

    restored = await repository.restore_photo(owner, trashed.id)
    assert restored == trashed
    assert await repository.get_photo(owner, trashed.id) == trashed
    assert await repository.list_photos(query) == sorted(
        [kept, trashed], key=lambda p: (p.create_time, p.id), reverse=True
    )


async def test_trash_keeps_the_first_trash_time_and_restore_is_idempotent(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    photo = await stored_photo(repository, owner)
    await repository.trash_photo(owner, photo.id, NOW)
    again = await repository.trash_photo(owner, photo.id, NOW + timedelta(days=2))
    assert again is not None
    assert again.trash_time == NOW
    assert await repository.restore_photo(owner, photo.id) == photo
    assert await repository.restore_photo(owner, photo.id) == photo


async def test_trash_and_restore_of_a_missing_or_foreign_photo_are_none(
    repository: PhotoRepository,
) -> None:
    owner, other = new_owner(), new_owner()
    photo = await stored_photo(repository, owner)
    assert await repository.trash_photo(other, photo.id, NOW) is None
    assert await repository.trash_photo(owner, uuid.uuid4(), NOW) is None
    assert await repository.get_photo(owner, photo.id) == photo
    await repository.trash_photo(owner, photo.id, NOW)
    assert await repository.restore_photo(other, photo.id) is None
    assert await repository.restore_photo(owner, uuid.uuid4()) is None
    assert await repository.list_trash(other, after=None, limit=10) == []
    assert [p.id for p in await repository.list_trash(owner, after=None, limit=10)] == [photo.id]


async def test_list_trash_pages_by_trash_time_then_id_newest_first(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    photos = [await stored_photo(repository, owner) for _ in range(7)]
    for i, photo in enumerate(photos):
        # Pairs trashed at the same instant: the id breaks the tie.
        await repository.trash_photo(owner, photo.id, NOW + timedelta(seconds=i // 2))
    await stored_photo(repository, owner)  # not in the trash
    expected = sorted(
        (replace(p, trash_time=NOW + timedelta(seconds=i // 2)) for i, p in enumerate(photos)),
        key=lambda p: (p.trash_time, p.id),
        reverse=True,
    )
    for size in (1, 2, 3, 7, 8):
        seen: list[Photo] = []
        after = None
        while True:
            page = await repository.list_trash(owner, after=after, limit=size)
            seen += page
            if len(page) < size:
                break
            last = page[-1]
            assert last.trash_time is not None
            after = Cursor(create_time=last.trash_time, photo_id=last.id)
        assert seen == expected


async def test_delete_photo_deletes_a_trashed_photo(repository: PhotoRepository) -> None:
    owner = new_owner()
    photo = await stored_photo(repository, owner, 100)
    await repository.trash_photo(owner, photo.id, NOW)
    deleted = await repository.delete_photo(owner, photo.id, upload_window=WINDOW)
    assert deleted == replace(photo, trash_time=NOW)
    assert await repository.list_trash(owner, after=None, limit=10) == []
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (0, 0)
    assert await claim_deletions(repository, [photo.object_key], now=NOW) == [photo.object_key]
    await repository.objects_deleted([photo.object_key], deleted_at=NOW + WINDOW)


async def test_purge_deletes_photos_trashed_before_as_delete_photo_does(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    old = await stored_photo(repository, owner, 100)
    young = await stored_photo(repository, owner, 200)
    live = await stored_photo(repository, owner, 300)
    variants = variants_of(old)
    assert await repository.finish_photo_job(owner, old.id, some_metadata(), variants, NOW)
    await repository.trash_photo(owner, old.id, TRASHED_LONG_AGO)
    await repository.trash_photo(owner, young.id, TRASHED_LONG_AGO + timedelta(days=1))

    purged = await repository.purge_trash(
        trashed_before=TRASHED_LONG_AGO + timedelta(hours=1), limit=EVERYTHING, upload_window=WINDOW
    )
    ours = [p for p in purged if p.owner_id == owner]
    assert [p.id for p in ours] == [old.id]
    assert ours[0].variants == tuple(variants)
    assert await repository.get_photo(owner, live.id) == live
    assert [p.id for p in await repository.list_trash(owner, after=None, limit=10)] == [young.id]
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (2, 500)
    keys = [old.object_key, *(v.object_key for v in variants)]
    assert sorted(await claim_deletions(repository, keys, now=NOW + WINDOW)) == sorted(keys)
    await repository.objects_deleted(keys, deleted_at=NOW + WINDOW)
    # Nothing is purged twice; the young one goes once its time has come.
    purged = await repository.purge_trash(
        trashed_before=TRASHED_LONG_AGO + timedelta(days=2), limit=EVERYTHING, upload_window=WINDOW
    )
    assert [p.id for p in purged if p.owner_id == owner] == [young.id]


async def test_purge_takes_the_oldest_first_and_concurrent_purges_share_nothing(
    repository: PhotoRepository,
) -> None:
    owner = new_owner()
    photos = [await stored_photo(repository, owner, 10) for _ in range(12)]
    for i, photo in enumerate(photos):
        await repository.trash_photo(owner, photo.id, TRASHED_LONG_AGO + timedelta(seconds=i))
    before = TRASHED_LONG_AGO + timedelta(days=1)
    first = await repository.purge_trash(trashed_before=before, limit=2, upload_window=WINDOW)
    assert [p.id for p in first] == [photos[0].id, photos[1].id]
    answers = await asyncio.gather(
        *(
            repository.purge_trash(trashed_before=before, limit=3, upload_window=WINDOW)
            for _ in range(5)
        )
    )
    purged = [p.id for answer in answers for p in answer if p.owner_id == owner]
    assert len(set(purged)) == len(purged), "two purges deleted the same photo"
    assert sorted(purged) == sorted(p.id for p in photos[2:])
    account = await repository.get_account(owner, default_quota_bytes=QUOTA, now=NOW)
    assert (account.photo_count, account.used_bytes) == (0, 0)
    keys = [p.object_key for p in photos]
    assert sorted(await claim_deletions(repository, keys, now=NOW + WINDOW)) == sorted(keys)
    await repository.objects_deleted(keys, deleted_at=NOW + WINDOW)


# duplicates -----------------------------------------------------------------------------------


async def test_find_by_checksum_sees_the_owners_confirmed_photos_outside_the_trash(
    repository: PhotoRepository,
) -> None:
    owner, other = new_owner(), new_owner()
    checksum = f"{uuid.uuid4().hex}{uuid.uuid4().hex[:12]}="  # unique to this test
    assert await repository.find_photo_by_checksum(owner, checksum) is None
    pending = replace(an_upload(owner), checksum_sha256=checksum)
    await reserve(repository, pending)
    assert await repository.find_photo_by_checksum(owner, checksum) is None  # not confirmed
    theirs = await stored_photo(repository, other, checksum_sha256=checksum)
    assert await repository.find_photo_by_checksum(owner, checksum) is None
    assert await repository.find_photo_by_checksum(other, checksum) == theirs.id

    first = await stored_photo(repository, owner, checksum_sha256=checksum)
    later = await stored_photo(
        repository,
        owner,
        checksum_sha256=checksum,
        create_time=NOW + timedelta(seconds=1),
        update_time=NOW + timedelta(seconds=1),
    )
    assert await repository.find_photo_by_checksum(owner, checksum) == first.id  # the oldest
    await repository.trash_photo(owner, first.id, NOW)
    assert await repository.find_photo_by_checksum(owner, checksum) == later.id
    await repository.delete_photo(owner, later.id, upload_window=WINDOW)
    assert await repository.find_photo_by_checksum(owner, checksum) is None
    await repository.restore_photo(owner, first.id)
    assert await repository.find_photo_by_checksum(owner, checksum) == first.id


async def test_the_backlog_counts_the_due_jobs_no_worker_holds(
    repository: PhotoRepository,
) -> None:
    at = CLAIM_AT + timedelta(days=1)
    # Every job of the other tests is due by then: claim them all out of the way.
    await repository.claim_photo_jobs(at, EVERYTHING, LEASE)
    assert await repository.job_backlog(at) == JobBacklog(due=0, oldest_due=None)
    first = await stored_photo(repository, new_owner())
    second = await stored_photo(repository, new_owner())
    await repository.retry_photo_job(second.id, at - timedelta(hours=1), "S3 down")
    await repository.retry_photo_job(first.id, at - timedelta(hours=2), "S3 down")
    assert await repository.job_backlog(at) == JobBacklog(2, at - timedelta(hours=2))
    # Not due yet, or held by a worker: not waiting.
    assert await repository.job_backlog(at - timedelta(hours=1, seconds=1)) == JobBacklog(
        1, at - timedelta(hours=2)
    )
    # Claimed when only the first was due: while its lease runs, the second alone waits.
    claimed_at = at - timedelta(hours=1, seconds=1)
    assert len(await claim_own(repository, first, claimed_at)) == 1
    waiting = JobBacklog(1, at - timedelta(hours=1))
    assert await repository.job_backlog(claimed_at + LEASE - timedelta(seconds=1)) == waiting
