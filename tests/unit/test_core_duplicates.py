"""`skip_if_duplicate` on the in-memory fakes: the caller's own confirmed photo outside the
trash with the same checksum answers its id and nothing is signed or reserved; other users'
photos, pending uploads and trashed photos never match; the fields are validated as ever."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from uuid import UUID

import pytest

from photovault_server.core import InvalidArgument, Photo
from photovault_server.core.models import ExistingPhoto, UploadTicket
from photovault_server.core.multipart_models import MultipartTicket
from tests.support.fakes import JPEG_BYTES, Harness, make_harness


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


CHECKSUM = sha256_b64(JPEG_BYTES)


@pytest.fixture
def harness() -> Harness:
    return make_harness()


async def _confirmed(harness: Harness, user: str = "alice") -> Photo:
    """The upload flow with the checksum given, as clients that compute it send it."""
    ticket = await harness.service.create_upload_url(
        user,
        file_name="a.jpg",
        content_type="image/jpeg",
        size_bytes=len(JPEG_BYTES),
        checksum_sha256=CHECKSUM,
    )
    harness.store.put(harness.repo.uploads[ticket.upload_id].object_key, JPEG_BYTES, "image/jpeg")
    photo = (await harness.service.confirm_upload(user, upload_id=str(ticket.upload_id))).photo
    assert photo.checksum_sha256 == CHECKSUM
    return photo


async def _ask(
    harness: Harness, *, multipart: bool, user: str = "alice", skip: bool = True
) -> UploadTicket | MultipartTicket | ExistingPhoto:
    if multipart:
        return await harness.service.create_multipart_upload(
            user,
            file_name="b.jpg",
            content_type="image/jpeg",
            size_bytes=len(JPEG_BYTES),
            checksum_sha256=CHECKSUM,
            skip_if_duplicate=skip,
        )
    return await harness.service.create_upload_url(
        user,
        file_name="b.jpg",
        content_type="image/jpeg",
        size_bytes=len(JPEG_BYTES),
        checksum_sha256=CHECKSUM,
        skip_if_duplicate=skip,
    )


BOTH = pytest.mark.parametrize("multipart", [False, True], ids=["single", "multipart"])


@BOTH
async def test_a_duplicate_answers_the_existing_photo_and_reserves_nothing(
    harness: Harness, multipart: bool
) -> None:
    photo = await _confirmed(harness)
    signatures = harness.store.signatures
    answer = await _ask(harness, multipart=multipart)
    assert answer == ExistingPhoto(photo.id)
    assert harness.repo.uploads == {}
    assert harness.store.signatures == signatures
    assert harness.store.multiparts == {}
    account = await harness.service.get_account("alice")
    assert account.pending_bytes == 0


@BOTH
async def test_another_users_photo_never_matches(harness: Harness, multipart: bool) -> None:
    await _confirmed(harness, "bob")
    answer = await _ask(harness, multipart=multipart)
    assert not isinstance(answer, ExistingPhoto)
    assert isinstance(answer.upload_id, UUID)
    assert answer.upload_id in harness.repo.uploads


@BOTH
async def test_pending_uploads_and_trashed_photos_never_match(
    harness: Harness, multipart: bool
) -> None:
    photo = await _confirmed(harness)
    await harness.service.trash_photo("alice", str(photo.id))
    pending = await _ask(harness, multipart=False, skip=False)  # same bytes, not confirmed
    assert not isinstance(pending, ExistingPhoto)
    answer = await _ask(harness, multipart=multipart)
    assert not isinstance(answer, ExistingPhoto)
    await harness.service.restore_photo("alice", str(photo.id))
    assert await _ask(harness, multipart=multipart) == ExistingPhoto(photo.id)


@BOTH
async def test_without_skip_a_duplicate_is_uploaded_again(
    harness: Harness, multipart: bool
) -> None:
    await _confirmed(harness)
    answer = await _ask(harness, multipart=multipart, skip=False)
    assert not isinstance(answer, ExistingPhoto)
    assert answer.upload_id in harness.repo.uploads


async def test_the_oldest_of_several_duplicates_is_answered(harness: Harness) -> None:
    first = await _confirmed(harness)
    harness.clock.advance(timedelta(seconds=1))
    await _confirmed(harness)
    assert await _ask(harness, multipart=False) == ExistingPhoto(first.id)


async def test_a_duplicate_is_answered_even_when_the_quota_is_full() -> None:
    harness = make_harness(quota_bytes=len(JPEG_BYTES))
    photo = await _confirmed(harness)
    assert await _ask(harness, multipart=False) == ExistingPhoto(photo.id)


@BOTH
@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"checksum_sha256": ""}, {"checksum_sha256"}),
        ({"checksum_sha256": "not base64"}, {"checksum_sha256"}),
        ({"file_name": "../a.jpg"}, {"file_name"}),
        ({"size_bytes": 0}, {"size_bytes"}),
    ],
)
async def test_every_field_is_validated_before_the_lookup(
    harness: Harness, multipart: bool, overrides: dict[str, object], fields: set[str]
) -> None:
    await _confirmed(harness)
    request: dict[str, object] = {
        "file_name": "b.jpg",
        "content_type": "image/jpeg",
        "size_bytes": len(JPEG_BYTES),
        "checksum_sha256": CHECKSUM,
        "skip_if_duplicate": True,
    }
    request.update(overrides)
    create = (
        harness.service.create_multipart_upload if multipart else harness.service.create_upload_url
    )
    with pytest.raises(InvalidArgument) as caught:
        await create("alice", **request)  # type: ignore[call-overload]
    assert {v.field for v in caught.value.violations} == fields
