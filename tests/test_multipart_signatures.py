"""Multipart uploads against an S3 that validates signatures (LocalStack; moto accepts any URL,
docs/s3-endpoints.md): the service runs over real gRPC, parts go to the URLs it signs, and S3
itself must refuse a part of another length, a tampered or moved URL, and other bytes when a
checksum was signed. Parts keep S3's 5 MiB minimum: two of them and a short last one."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App, open_app
from photovault_server.core.service import SWEEP_GRACE
from photovault_server.server import running_grpc_server

from .support.buckets import create_bucket
from .support.grpc_status import call_error, details
from .support.multipart import (
    PART,
    create,
    large_jpeg,
    part_of,
    put_status,
    sha256_b64,
    sign,
    upload_parts,
)
from .support.s3_servers import localstack_s3_server
from .support.settings import BUCKET, REGION, make_settings
from .support.users import User

pytestmark = pytest.mark.localstack


@pytest.fixture(scope="module")
def localstack_endpoint() -> Iterator[str]:
    with localstack_s3_server() as endpoint:
        create_bucket(endpoint)
        yield endpoint


@pytest.fixture(scope="module")
def s3(localstack_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=localstack_endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="module")
async def ls_app(
    localstack_endpoint: str, database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[App]:
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = localstack_endpoint
    try:
        settings = make_settings(
            database_url,
            redis_url,
            PHOTOVAULT_QUOTA_BYTES=200 * 1024 * 1024,
            PHOTOVAULT_MAX_MULTIPART_UPLOAD_BYTES=60 * 1024 * 1024,
        )
        async with open_app(settings) as app:
            os.environ["AWS_ENDPOINT_URL_S3"] = previous
            yield app
    finally:
        os.environ["AWS_ENDPOINT_URL_S3"] = previous


@pytest.fixture(scope="module")
async def ls_stub(ls_app: App) -> AsyncIterator[pb_grpc.PhotoServiceAsyncStub]:
    async with (
        running_grpc_server(ls_app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield pb_grpc.PhotoServiceStub(channel)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def open_uploads(s3: Any) -> list[str]:
    listed = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="users/")
    return [u["UploadId"] for u in listed.get("Uploads", [])]


async def confirm(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, upload_id: str
) -> pb.ConfirmUploadResponse:
    return await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=upload_id), metadata=user.metadata
    )


async def test_parts_signed_uploaded_listed_and_confirmed(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, s3: Any
) -> None:
    data = large_jpeg()
    upload = await create(ls_stub, alice, data)
    assert (upload.part_size_bytes, upload.part_count) == (PART, 3)
    account = (await ls_stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert account.pending_bytes == len(data)  # reserved at creation

    await upload_parts(ls_stub, http, alice, upload, data, [1, 3])
    listed = await ls_stub.ListUploadedParts(
        pb.ListUploadedPartsRequest(upload_id=upload.upload_id), metadata=alice.metadata
    )
    assert [(p.part_number, p.size_bytes) for p in listed.parts] == [
        (1, PART),
        (3, len(data) - 2 * PART),
    ]
    assert all(p.etag for p in listed.parts)

    await upload_parts(ls_stub, http, alice, upload, data, [2])
    photo = (await confirm(ls_stub, alice, upload.upload_id)).photo
    assert photo.size_bytes == len(data)
    download = await http.get(photo.url)
    assert download.status_code == 200
    assert download.content == data
    assert upload.upload_id not in open_uploads(s3)
    account = (await ls_stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.pending_bytes, account.used_bytes) == (0, len(data))


@pytest.mark.parametrize("deviation", ["other-length", "tampered", "other-part", "other-bytes"])
async def test_s3_refuses_parts_that_differ_from_what_was_signed(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, deviation: str
) -> None:
    data = large_jpeg()
    upload = await create(ls_stub, alice, data)
    (part,) = await sign(ls_stub, alice, upload, data, [1])
    url, headers, body = part.url, dict(part.required_headers), part_of(data, PART, 1)
    if deviation == "other-length":
        body = body[:-10]
        headers.pop("Content-Length")
    elif deviation == "tampered":
        signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
        url = with_query(url, **{"X-Amz-Signature": ("0" if signature[0] != "0" else "1")})
    elif deviation == "other-part":
        url = with_query(url, partNumber="2")  # the URL cannot be moved to another part
    elif deviation == "other-bytes":
        body = bytes(reversed(body))  # same length, the signed checksum differs
    assert await put_status(url, headers, body) in (400, 403)
    listed = await ls_stub.ListUploadedParts(
        pb.ListUploadedPartsRequest(upload_id=upload.upload_id), metadata=alice.metadata
    )
    assert list(listed.parts) == []


async def test_confirm_with_a_part_missing_loses_nothing_and_can_finish(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = large_jpeg()
    upload = await create(ls_stub, alice, data)
    await upload_parts(ls_stub, http, alice, upload, data, [1, 3])
    error = await call_error(confirm(ls_stub, alice, upload.upload_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(error)["reason"] == "PARTS_MISSING"
    listed = await ls_stub.ListUploadedParts(
        pb.ListUploadedPartsRequest(upload_id=upload.upload_id), metadata=alice.metadata
    )
    assert [p.part_number for p in listed.parts] == [1, 3]  # nothing lost
    await upload_parts(ls_stub, http, alice, upload, data, [2])
    photo = (await confirm(ls_stub, alice, upload.upload_id)).photo
    assert (await http.get(photo.url)).content == data


async def test_whole_file_checksum_is_checked_at_confirm(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = large_jpeg()
    declared = large_jpeg(len(data))  # same size, other bytes: its checksum is declared
    upload = await ls_stub.CreateMultipartUpload(
        pb.CreateMultipartUploadRequest(
            file_name="big.jpg",
            content_type="image/jpeg",
            size_bytes=len(data),
            checksum_sha256=sha256_b64(declared),
        ),
        metadata=alice.metadata,
    )
    await upload_parts(ls_stub, http, alice, upload, data, [1, 2, 3])
    error = await call_error(confirm(ls_stub, alice, upload.upload_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(error)["reason"] == "UPLOAD_MISMATCH"


async def test_another_users_upload_is_not_found(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, alice: User, bob: User
) -> None:
    data = large_jpeg()
    upload = await create(ls_stub, alice, data)
    calls: list[Awaitable[object]] = [
        ls_stub.SignUploadParts(
            pb.SignUploadPartsRequest(upload_id=upload.upload_id, part_numbers=[1]),
            metadata=bob.metadata,
        ),
        ls_stub.ListUploadedParts(
            pb.ListUploadedPartsRequest(upload_id=upload.upload_id), metadata=bob.metadata
        ),
        ls_stub.AbortUpload(
            pb.AbortUploadRequest(upload_id=upload.upload_id), metadata=bob.metadata
        ),
        confirm(ls_stub, bob, upload.upload_id),
    ]
    for call in calls:
        assert (await call_error(call)).code() == grpc.StatusCode.NOT_FOUND
    # Bob's attempts changed nothing: Alice's upload is still open.
    await sign(ls_stub, alice, upload, data, [1])


async def test_abort_then_confirm_and_s3_keeps_nothing(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, s3: Any
) -> None:
    data = large_jpeg()
    upload = await create(ls_stub, alice, data)
    await upload_parts(ls_stub, http, alice, upload, data, [1])
    (stale,) = await sign(ls_stub, alice, upload, data, [2])
    await ls_stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=upload.upload_id), metadata=alice.metadata
    )
    account = (await ls_stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert account.pending_bytes == 0
    assert not [u for u in open_uploads(s3) if u == upload.upload_id]
    error = await call_error(confirm(ls_stub, alice, upload.upload_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A URL signed before the abort no longer stores anything.
    status = await put_status(stale.url, dict(stale.required_headers), part_of(data, PART, 2))
    assert status == 404  # NoSuchUpload


async def test_abort_works_for_single_uploads(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = large_jpeg(4096)
    ticket = await ls_stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="small.jpg", content_type="image/jpeg", size_bytes=len(data)
        ),
        metadata=alice.metadata,
    )
    put = await http.put(ticket.upload_url, content=data, headers=dict(ticket.required_headers))
    assert put.status_code == 200
    await ls_stub.AbortUpload(
        pb.AbortUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
    )
    error = await call_error(confirm(ls_stub, alice, ticket.upload_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    account = (await ls_stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert account.pending_bytes == 0


async def test_sweep_aborts_s3_leftovers_only_once_no_upload_can_own_them(
    ls_app: App, s3: Any, alice: User
) -> None:
    """LocalStack dates uploads as S3 does (moto does not): a leftover younger than the
    longest upload's life is kept, an older one aborted."""
    key = f"users/{alice.id}/photos/{uuid.uuid4()}.jpg"
    leftover = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    await ls_app.service.sweep()
    assert leftover in open_uploads(s3)
    ttl = ls_app.settings.service_config().multipart_upload_ttl
    later = ls_app.build_service(
        clock=lambda: datetime.now(UTC) + ttl + SWEEP_GRACE + timedelta(minutes=1)
    )
    report = await later.sweep()
    assert report.aborted_incomplete_multipart >= 1
    assert leftover not in open_uploads(s3)
