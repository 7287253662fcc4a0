"""MultipartRepository's contract (core/ports.py), run against Postgres and the in-memory fake:
each multipart row belongs to the pending upload of the same id (reserved through the
PhotoRepository on the same storage) and goes with it. Owners are fresh per test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from photovault_server.core.models import Photo, Upload, Visibility
from photovault_server.core.multipart_models import MultipartUpload
from photovault_server.core.ports import MultipartRepository, PhotoRepository

NOW = datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
QUOTA = 10**12
MANY = 1000  # pending uploads (or open multipart uploads) where the bound is not the point
PART = 5 * 1024 * 1024

Repositories = tuple[PhotoRepository, MultipartRepository]


def new_owner() -> str:
    return f"contract-mp-{uuid.uuid4().hex[:12]}"


async def reserved_multipart(
    repo: PhotoRepository,
    owner: str,
    *,
    reserved_until: datetime = NOW + timedelta(hours=1),
) -> MultipartUpload:
    """A pending upload reserved for `owner`, and the multipart row it would get."""
    upload_id = uuid.uuid4()
    upload = Upload(
        id=upload_id,
        owner_id=owner,
        object_key=f"users/{owner}/photos/{upload_id}.jpg",
        file_name="panorama.jpg",
        content_type="image/jpeg",
        size_bytes=2 * PART + 1,
        checksum_sha256="",
        create_time=NOW,
        reserved_until=reserved_until,
    )
    reservation = await repo.reserve_upload(
        upload, default_quota_bytes=QUOTA, max_pending_uploads=MANY, now=NOW
    )
    assert reservation.accepted, reservation
    return MultipartUpload(
        upload_id=upload_id,
        owner_id=owner,
        s3_upload_id=f"s3-{uuid.uuid4().hex}",
        part_size_bytes=PART,
        part_count=3,
    )


async def test_a_multipart_upload_is_seen_by_its_owner_only(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner, other = new_owner(), new_owner()
    row = await reserved_multipart(repo, owner)
    assert await multipart.add_multipart(row, max_open=MANY, now=NOW)
    assert await multipart.get_multipart(owner, row.upload_id) == row
    assert await multipart.get_multipart(other, row.upload_id) is None
    assert await multipart.get_multipart(owner, uuid.uuid4()) is None


async def test_open_multipart_uploads_are_bounded_per_owner_counting_live_ones_only(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner, other = new_owner(), new_owner()
    ends = [NOW + timedelta(minutes=m) for m in (10, 20)]
    rows = [await reserved_multipart(repo, owner, reserved_until=end) for end in ends]
    for row in rows:
        assert await multipart.add_multipart(row, max_open=2, now=NOW)
    refused = await reserved_multipart(repo, owner)
    assert not await multipart.add_multipart(refused, max_open=2, now=NOW)
    assert await multipart.get_multipart(owner, refused.upload_id) is None
    # The bound is per owner...
    assert await multipart.add_multipart(await reserved_multipart(repo, other), max_open=2, now=NOW)
    # ...and counts live reservations only: one that ended (at reserved_until) frees its place.
    assert await multipart.add_multipart(refused, max_open=2, now=ends[0])


async def test_a_confirmed_upload_frees_its_place_and_takes_its_row_along(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner = new_owner()
    row = await reserved_multipart(repo, owner)
    assert await multipart.add_multipart(row, max_open=1, now=NOW)
    upload = await repo.get_upload(owner, row.upload_id)
    assert upload is not None
    photo = Photo(
        id=upload.id,
        owner_id=owner,
        object_key=upload.object_key,
        file_name=upload.file_name,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        checksum_sha256="",
        title="Panorama",
        description="",
        tags=(),
        visibility=Visibility.PRIVATE,
        create_time=NOW,
        update_time=NOW,
    )
    assert await repo.confirm_upload(photo, now=NOW) is not None
    assert await multipart.get_multipart(owner, row.upload_id) is None
    assert await multipart.multiparts_of([row.upload_id]) == {}
    assert await multipart.owned_s3_uploads([row.s3_upload_id]) == set()
    assert await multipart.add_multipart(await reserved_multipart(repo, owner), max_open=1, now=NOW)


async def test_concurrent_adds_never_overshoot_the_bound(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner = new_owner()
    rows = [await reserved_multipart(repo, owner) for _ in range(8)]
    added = await asyncio.gather(
        *(multipart.add_multipart(row, max_open=3, now=NOW) for row in rows)
    )
    assert sum(added) == 3
    found = await multipart.multiparts_of([row.upload_id for row in rows])
    assert set(found) == {row.upload_id for row, ok in zip(rows, added, strict=True) if ok}


async def test_multiparts_of_answers_for_the_uploads_that_have_a_row(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner, other = new_owner(), new_owner()
    mine, theirs = await reserved_multipart(repo, owner), await reserved_multipart(repo, other)
    without_row = await reserved_multipart(repo, owner)
    for row in (mine, theirs):
        assert await multipart.add_multipart(row, max_open=MANY, now=NOW)
    # Every owner's rows (the sweep's claims span owners); ids without a row are left out.
    asked = [mine.upload_id, theirs.upload_id, without_row.upload_id, uuid.uuid4()]
    assert await multipart.multiparts_of(asked) == {
        mine.upload_id: mine,
        theirs.upload_id: theirs,
    }
    assert await multipart.multiparts_of([]) == {}


async def test_owned_s3_uploads_are_those_a_pending_upload_still_holds(
    multipart_repository: Repositories,
) -> None:
    repo, multipart = multipart_repository
    owner = new_owner()
    kept, deleted = await reserved_multipart(repo, owner), await reserved_multipart(repo, owner)
    for row in (kept, deleted):
        assert await multipart.add_multipart(row, max_open=MANY, now=NOW)
    stranger = f"s3-{uuid.uuid4().hex}"
    asked = [kept.s3_upload_id, deleted.s3_upload_id, stranger]
    assert await multipart.owned_s3_uploads(asked) == {kept.s3_upload_id, deleted.s3_upload_id}
    # The sweep deletes a claimed upload: its row, and so its S3 upload, is no longer owned.
    await repo.delete_uploads([deleted.upload_id])
    assert await multipart.owned_s3_uploads(asked) == {kept.s3_upload_id}
    assert await multipart.get_multipart(owner, deleted.upload_id) is None
    assert await multipart.owned_s3_uploads([]) == set()
