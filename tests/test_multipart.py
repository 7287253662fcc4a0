"""Multipart uploads on moto where signatures do not matter: every bad field of the new RPCs is
INVALID_ARGUMENT with its field named, quota is reserved at creation and released on abort, a
user holds a bounded number open, and the sweep aborts expired ones and S3's own leftovers.
(S3 refusing parts that differ from their signature: tests/test_multipart_signatures.py.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import boto3
import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.service import MULTIPART_SETTLE, SWEEP_GRACE

from .support.grpc_status import call_error, details
from .support.multipart import create, large_jpeg, sha256_b64, upload_parts
from .support.settings import BUCKET, REGION
from .support.users import User, new_user

BAD_CHECKSUM = "not-a-sha256"


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def open_uploads(s3: Any, prefix: str = "users/") -> dict[str, str]:
    listed = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return {u["UploadId"]: u["Key"] for u in listed.get("Uploads", [])}


async def pending(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> int:
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)).account
    return account.pending_bytes


@pytest.mark.parametrize(
    ("request_fields", "bad_fields"),
    [
        ({"size_bytes": 5 * 1024**3 + 1}, ["size_bytes"]),
        ({"size_bytes": 0}, ["size_bytes"]),
        ({"checksum_sha256": BAD_CHECKSUM}, ["checksum_sha256"]),
        ({"content_type": "text/plain", "file_name": "a/b"}, ["file_name", "content_type"]),
    ],
)
async def test_create_refuses_bad_fields(
    stub: pb_grpc.PhotoServiceAsyncStub,
    alice: User,
    request_fields: dict[str, Any],
    bad_fields: list[str],
) -> None:
    fields: dict[str, Any] = {"file_name": "a.jpg", "content_type": "image/jpeg", "size_bytes": 10}
    fields.update(request_fields)
    error = await call_error(
        stub.CreateMultipartUpload(
            pb.CreateMultipartUploadRequest(**fields), metadata=alice.metadata
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(details(error)["fields"]) == sorted(bad_fields)


@pytest.mark.parametrize(
    ("numbers", "checksums", "bad_fields"),
    [
        ([0], [], ["part_numbers[0]"]),
        ([10_001], [], ["part_numbers[0]"]),
        ([1, 1], [], ["part_numbers[1]"]),
        (list(range(1, 102)), [], ["part_numbers"]),
        ([], [], ["part_numbers"]),
        ([1], [BAD_CHECKSUM], ["checksums_sha256[0]"]),
        ([1], [sha256_b64(b"a"), sha256_b64(b"b")], ["checksums_sha256"]),
        ([2], [], ["part_numbers[0]"]),  # the upload has one part only
    ],
)
async def test_sign_refuses_bad_part_numbers_and_checksums(
    stub: pb_grpc.PhotoServiceAsyncStub,
    alice: User,
    numbers: list[int],
    checksums: list[str],
    bad_fields: list[str],
) -> None:
    upload = await create(stub, alice, large_jpeg(2048))
    assert upload.part_count == 1
    error = await call_error(
        stub.SignUploadParts(
            pb.SignUploadPartsRequest(
                upload_id=upload.upload_id, part_numbers=numbers, checksums_sha256=checksums
            ),
            metadata=alice.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["fields"] == bad_fields


@pytest.mark.parametrize("rpc", ["SignUploadParts", "ListUploadedParts", "AbortUpload"])
async def test_unknown_or_malformed_ids(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, rpc: str
) -> None:
    request_type = getattr(pb, f"{rpc}Request")
    extra = {"part_numbers": [1]} if rpc == "SignUploadParts" else {}
    missing = await call_error(
        getattr(stub, rpc)(
            request_type(upload_id=str(uuid.uuid4()), **extra), metadata=alice.metadata
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    malformed = await call_error(
        getattr(stub, rpc)(request_type(upload_id="nope", **extra), metadata=alice.metadata)
    )
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(malformed)["fields"] == ["upload_id"]


async def test_quota_is_reserved_at_creation_and_released_on_abort(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, s3: Any
) -> None:
    # The suite's quota is 10 MiB (tests/support/settings.py).
    upload = await create(stub, alice, large_jpeg(6 * 1024 * 1024))
    assert await pending(stub, alice) == 6 * 1024 * 1024
    over = await call_error(create(stub, alice, large_jpeg(5 * 1024 * 1024)))
    assert over.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(over)["reason"] == "QUOTA_EXCEEDED"
    assert not [k for k in open_uploads(s3).values() if f"/{alice.id}/" in k][1:]
    await stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=upload.upload_id), metadata=alice.metadata
    )
    assert await pending(stub, alice) == 0
    assert not [k for k in open_uploads(s3).values() if f"/{alice.id}/" in k]


async def test_open_multipart_uploads_per_user_are_bounded(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, s3: Any
) -> None:
    user = new_user()
    bound = app.settings.service_config().max_open_multipart_uploads
    uploads = [await create(stub, user, large_jpeg(1024)) for _ in range(bound)]
    error = await call_error(create(stub, user, large_jpeg(1024)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(error)["reason"] == "TOO_MANY_MULTIPART_UPLOADS"
    mine = [k for k in open_uploads(s3).values() if f"/{user.id}/" in k]
    assert len(mine) == bound  # the refused one left nothing open on S3
    await stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=uploads[0].upload_id), metadata=user.metadata
    )
    await create(stub, user, large_jpeg(1024))  # room again


async def test_sweep_aborts_expired_uploads_and_s3_leftovers(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, s3: Any
) -> None:
    data = large_jpeg(4096)
    expired = await create(stub, alice, data)
    await upload_parts(stub, http, alice, expired, data, [1])
    fresh = await create(stub, alice, data)
    await app.pool.execute(
        "UPDATE uploads SET reserved_until = now() - $2::interval WHERE id = $1::uuid",
        expired.upload_id,
        SWEEP_GRACE + timedelta(minutes=1),
    )
    s3_ids = {
        row["upload_id"]: row["s3_upload_id"]
        for row in await app.pool.fetch(
            "SELECT upload_id::text, s3_upload_id FROM multipart_uploads "
            "WHERE upload_id = ANY($1::uuid[])",
            [expired.upload_id, fresh.upload_id],
        )
    }
    # An S3 upload under our prefix that no row owns (a create that failed halfway). moto
    # dates every upload in 2010, so it is old enough at once; the age rule is proven on
    # LocalStack (tests/test_multipart_signatures.py).
    orphan_key = f"users/{alice.id}/photos/{uuid.uuid4()}.jpg"
    orphan = s3.create_multipart_upload(Bucket=BUCKET, Key=orphan_key)["UploadId"]
    outside = s3.create_multipart_upload(Bucket=BUCKET, Key="elsewhere/x.jpg")["UploadId"]

    report = await app.service.sweep()
    assert report.expired_uploads >= 1
    assert report.aborted_incomplete_multipart >= 1
    assert await pending(stub, alice) == len(data)  # only the fresh one
    ids = await app.pool.fetch(
        "SELECT id::text FROM uploads WHERE id = ANY($1::uuid[])",
        [expired.upload_id, fresh.upload_id],
    )
    assert {r["id"] for r in ids} == {fresh.upload_id}
    still_open = open_uploads(s3, prefix="")
    assert s3_ids[expired.upload_id] not in still_open
    assert orphan not in still_open
    assert s3_ids[fresh.upload_id] in still_open  # a row owns it: never aborted while live
    assert outside in still_open  # not under our prefix: not ours to abort
    s3.abort_multipart_upload(Bucket=BUCKET, Key="elsewhere/x.jpg", UploadId=outside)


async def test_an_object_assembled_after_the_sweep_is_deleted_again(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, s3: Any
) -> None:
    """A confirm that began before the deadline may still be having S3 assemble the object
    when the sweep takes the expired upload (abort, delete, row gone): S3 can finish the
    CompleteMultipartUpload after all that. The sweep queues the key for another deletion once
    no such call can still be running, so no object is left that nothing tracks."""
    data = large_jpeg(4096)
    upload = await create(stub, alice, data)
    await upload_parts(stub, http, alice, upload, data, [1])
    key = await app.pool.fetchval(
        "UPDATE uploads SET reserved_until = now() - $2::interval WHERE id = $1::uuid "
        "RETURNING object_key",
        upload.upload_id,
        SWEEP_GRACE + timedelta(minutes=1),
    )
    swept_at = app.clock()
    await app.service.sweep()
    # The late assembly lands: the object appears under the upload's key after the sweep.
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    queued = await app.pool.fetchrow(
        "SELECT not_before FROM object_deletions WHERE object_key = $1", key
    )
    assert queued is not None, "the swept multipart key was not queued for another deletion"
    assert queued["not_before"] >= swept_at + MULTIPART_SETTLE
    await app.service.sweep()  # not yet: a confirm may still be assembling it
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["KeyCount"] == 1
    await app.pool.execute(
        "UPDATE object_deletions SET not_before = now() - interval '1 second' "
        "WHERE object_key = $1",
        key,
    )
    await app.service.sweep()
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["KeyCount"] == 0
