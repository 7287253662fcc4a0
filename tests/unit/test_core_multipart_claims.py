"""Multipart uploads under the sweep's claims and the upload row's single owner: whoever takes
the pending row (a confirm, an abort, an expiry, a sweeper) decides, the S3 multipart upload
goes with it, and a confirm of a multipart upload records the photo and its job like any."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import msgspec
import pytest

from photovault_server.core.errors import (
    FailedPrecondition,
    NotFound,
    PendingUploadsExceeded,
    Unavailable,
)
from photovault_server.core.models import ObjectInfo
from photovault_server.core.multipart_models import MultipartTicket
from photovault_server.core.page_tokens import PageTokenCodec
from photovault_server.core.service import SWEEP_GRACE, PhotoService
from tests.support.fakes import JPEG_BYTES, Harness, make_harness

MiB = 1024 * 1024
DATA = JPEG_BYTES + bytes(6 * MiB)  # two parts: 5 MiB and the rest


@pytest.fixture
def harness() -> Harness:
    return make_harness(quota_bytes=10**9)


async def _create(harness: Harness, user: str = "alice") -> MultipartTicket:
    return await harness.service.create_multipart_upload(
        user, file_name="big.jpg", content_type="image/jpeg", size_bytes=len(DATA)
    )


def _s3_id(harness: Harness, upload_id: UUID) -> str:
    assert harness.multipart is not None
    return harness.multipart.rows[upload_id].s3_upload_id


def _put_parts(harness: Harness, ticket: MultipartTicket) -> None:
    s3_id = _s3_id(harness, ticket.upload_id)
    size = ticket.part_size_bytes
    for number in range(1, ticket.part_count + 1):
        harness.store.put_part(s3_id, number, DATA[(number - 1) * size : number * size])


async def test_confirm_assembles_records_the_photo_and_queues_its_job(harness: Harness) -> None:
    ticket = await _create(harness)
    _put_parts(harness, ticket)

    photo = (await harness.service.confirm_upload("alice", upload_id=str(ticket.upload_id))).photo

    assert photo.size_bytes == len(DATA)
    assert photo.id in harness.repo.jobs  # the worker makes its variants like any photo's
    assert not harness.store.multiparts
    assert harness.repo.uploads == {}


async def test_confirm_refuses_an_assembled_object_with_unsigned_stored_headers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = await _create(harness)
    _put_parts(harness, ticket)
    key = harness.repo.uploads[ticket.upload_id].object_key
    real_head = harness.store.head

    async def head_with_encoding(k: str) -> ObjectInfo | None:
        """As if the uploader had sent a header the part URLs do not sign."""
        info = await real_head(k)
        if info is None:
            return None
        return msgspec.structs.replace(info, served_headers=(("content-encoding", "gzip"),))

    monkeypatch.setattr(harness.store, "head", head_with_encoding)
    with pytest.raises(FailedPrecondition) as raised:
        await harness.service.confirm_upload("alice", upload_id=str(ticket.upload_id))
    assert raised.value.reason == "UPLOAD_MISMATCH"
    assert key not in harness.store.objects
    assert not harness.repo.photos


async def test_abort_after_a_confirm_keeps_the_photo_and_its_bytes(harness: Harness) -> None:
    ticket = await _create(harness)
    _put_parts(harness, ticket)
    photo = (await harness.service.confirm_upload("alice", upload_id=str(ticket.upload_id))).photo

    with pytest.raises(NotFound):
        await harness.service.abort_upload("alice", upload_id=str(ticket.upload_id))

    assert photo.object_key in harness.store.objects
    assert photo.object_key not in harness.repo.object_deletions


async def test_abort_releases_the_reservation_and_the_s3_upload(harness: Harness) -> None:
    ticket = await _create(harness)
    s3_id = _s3_id(harness, ticket.upload_id)

    await harness.service.abort_upload("alice", upload_id=str(ticket.upload_id))

    account = await harness.service.get_account("alice")
    assert account.pending_bytes == 0
    assert s3_id not in harness.store.multiparts
    with pytest.raises(NotFound):
        await harness.service.confirm_upload("alice", upload_id=str(ticket.upload_id))


async def test_an_object_put_after_an_abort_through_a_live_url_is_deleted_later(
    harness: Harness,
) -> None:
    """The single upload's URL outlives the abort: what it stores afterwards is deleted again
    once no upload URL can write the key any more."""
    ticket = await harness.service.create_upload_url(
        "alice", file_name="a.jpg", content_type="image/jpeg", size_bytes=len(JPEG_BYTES)
    )
    upload = harness.repo.uploads[ticket.upload_id]
    await harness.service.abort_upload("alice", upload_id=str(ticket.upload_id))
    assert (await harness.service.get_account("alice")).pending_bytes == 0

    harness.store.put(upload.object_key, JPEG_BYTES, "image/jpeg")  # the URL still works
    await harness.service.sweep()
    assert upload.object_key in harness.store.objects  # not yet: the URL may write again
    harness.clock.advance(upload.reserved_until - harness.clock() + SWEEP_GRACE)
    await harness.service.sweep()
    assert upload.object_key not in harness.store.objects
    assert not harness.repo.object_deletions


async def test_a_late_confirm_expires_the_upload_and_aborts_its_s3_upload(
    harness: Harness,
) -> None:
    ticket = await _create(harness)
    _put_parts(harness, ticket)
    s3_id = _s3_id(harness, ticket.upload_id)
    harness.clock.advance(ticket.expire_time - harness.clock())

    with pytest.raises(FailedPrecondition) as raised:
        await harness.service.confirm_upload("alice", upload_id=str(ticket.upload_id))

    assert raised.value.reason == "UPLOAD_EXPIRED"
    assert s3_id not in harness.store.multiparts
    assert harness.repo.uploads == {}


async def test_the_sweep_aborts_expired_multipart_uploads_under_its_claim(
    harness: Harness,
) -> None:
    ticket = await _create(harness)
    s3_id = _s3_id(harness, ticket.upload_id)
    harness.clock.advance(ticket.expire_time - harness.clock() + SWEEP_GRACE + timedelta(1))

    harness.store.failing = {"abort_multipart"}
    with pytest.raises(Unavailable):
        await harness.service.sweep_expired_uploads()
    # S3 down: the row stays, given back at once for the next sweep, with its S3 upload id.
    assert ticket.upload_id in harness.repo.uploads
    assert ticket.upload_id not in harness.repo.upload_claims
    assert s3_id in harness.store.multiparts

    harness.store.failing = set()
    report = await harness.service.sweep()
    assert report.expired_uploads == 1
    assert harness.repo.uploads == {}
    assert s3_id not in harness.store.multiparts
    assert (await harness.service.get_account("alice")).pending_bytes == 0


async def test_multipart_uploads_count_towards_the_pending_uploads_bound(
    harness: Harness,
) -> None:
    config = msgspec.structs.replace(harness.config, max_pending_uploads=2)
    service = PhotoService(
        repo=harness.repo,
        store=harness.store,
        cache=harness.cache,
        config=config,
        page_tokens=PageTokenCodec(b"0" * 32),
        clock=harness.clock,
        multipart=harness.multipart,
    )
    await service.create_upload_url(
        "alice", file_name="a.jpg", content_type="image/jpeg", size_bytes=100
    )
    await service.create_multipart_upload(
        "alice", file_name="big.jpg", content_type="image/jpeg", size_bytes=len(DATA)
    )
    with pytest.raises(PendingUploadsExceeded):
        await service.create_multipart_upload(
            "alice", file_name="big.jpg", content_type="image/jpeg", size_bytes=len(DATA)
        )
    assert len(harness.store.multiparts) == 1  # the refused one left nothing open on S3
