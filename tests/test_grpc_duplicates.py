"""`skip_if_duplicate` over native gRPC against Postgres and S3: a checksum of one of the
caller's own confirmed photos answers `existing_photo_id` and reserves nothing; another user's
photo with the same bytes never matches; a trashed photo matches again once restored."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.grpc_status import call_error, details
from .support.images import jpeg
from .support.users import User, put_bytes

DATA = jpeg(rgb=(120, 30, 60))
CHECKSUM = base64.b64encode(hashlib.sha256(DATA).digest()).decode()


async def _upload_with_checksum(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, user: User
) -> str:
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="dup.jpg",
            content_type="image/jpeg",
            size_bytes=len(DATA),
            checksum_sha256=CHECKSUM,
            skip_if_duplicate=True,
        ),
        metadata=user.metadata,
    )
    assert ticket.existing_photo_id == ""
    assert (await put_bytes(http, ticket, DATA)).status_code == 200
    confirmed = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=user.metadata
    )
    return confirmed.photo.id


async def _ask(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, *, multipart: bool
) -> pb.CreateUploadUrlResponse | pb.CreateMultipartUploadResponse:
    fields: dict[str, Any] = {
        "file_name": "again.jpg",
        "content_type": "image/jpeg",
        "size_bytes": len(DATA),
        "checksum_sha256": CHECKSUM,
        "skip_if_duplicate": True,
    }
    if multipart:
        return await stub.CreateMultipartUpload(
            pb.CreateMultipartUploadRequest(**fields), metadata=user.metadata
        )
    return await stub.CreateUploadUrl(pb.CreateUploadUrlRequest(**fields), metadata=user.metadata)


async def _pending(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> int:
    reply = await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
    return reply.account.pending_bytes


@pytest.mark.parametrize("multipart", [False, True], ids=["single", "multipart"])
async def test_a_duplicate_answers_the_existing_photo_and_reserves_nothing(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    bob: User,
    multipart: bool,
) -> None:
    # Bob's photo with the same bytes never matches Alice's request.
    bobs = await _upload_with_checksum(stub, http, bob)
    first = await _ask(stub, alice, multipart=multipart)
    assert first.existing_photo_id == ""
    assert first.upload_id
    await stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=first.upload_id), metadata=alice.metadata
    )

    photo_id = await _upload_with_checksum(stub, http, alice)
    assert photo_id != bobs
    answer = await _ask(stub, alice, multipart=multipart)
    expected = type(answer)(existing_photo_id=photo_id)
    assert answer == expected  # nothing else: no upload id, URL or expiry
    assert await _pending(stub, alice) == 0

    await stub.TrashPhoto(pb.TrashPhotoRequest(id=photo_id), metadata=alice.metadata)
    trashed = await _ask(stub, alice, multipart=multipart)
    assert trashed.existing_photo_id == ""
    await stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=trashed.upload_id), metadata=alice.metadata
    )
    await stub.RestorePhoto(pb.RestorePhotoRequest(id=photo_id), metadata=alice.metadata)
    assert (await _ask(stub, alice, multipart=multipart)).existing_photo_id == photo_id


async def test_skip_if_duplicate_needs_a_checksum(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    error = await call_error(
        stub.CreateUploadUrl(
            pb.CreateUploadUrlRequest(
                file_name="a.jpg", content_type="image/jpeg", size_bytes=10, skip_if_duplicate=True
            ),
            metadata=alice.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["fields"] == ["checksum_sha256"]
