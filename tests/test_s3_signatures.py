"""The presigned URLs the service issues, proven against an S3 that validates signatures
(LocalStack with signature validation on; moto accepts anything — docs/s3-endpoints.md).

The whole service runs against LocalStack here: URLs come from CreateUploadUrl/GetPhoto over
real gRPC, and S3 itself must refuse every deviation from what was reserved."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import open_app
from photovault_server.server import running_grpc_server

from .support.buckets import create_bucket
from .support.images import jpeg
from .support.s3_servers import localstack_s3_server
from .support.settings import make_settings
from .support.users import User, put_bytes

pytestmark = pytest.mark.localstack


@pytest.fixture(scope="module")
def localstack_endpoint() -> Iterator[str]:
    with localstack_s3_server() as endpoint:
        create_bucket(endpoint)
        yield endpoint


@pytest.fixture(scope="module")
async def ls_stub(
    localstack_endpoint: str, database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[pb_grpc.PhotoServiceAsyncStub]:
    # botocore reads the endpoint when the client is created; restore moto's for other tests.
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = localstack_endpoint
    try:
        settings = make_settings(
            database_url,
            redis_url,
            PHOTOVAULT_UPLOAD_URL_TTL_SECONDS=60,
            PHOTOVAULT_URL_TTL_SECONDS=120,
            PHOTOVAULT_CACHE_MARGIN_SECONDS=30,
        )
        async with open_app(settings) as app:
            os.environ["AWS_ENDPOINT_URL_S3"] = previous
            async with (
                running_grpc_server(app, "127.0.0.1:0") as running,
                grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            ):
                yield pb_grpc.PhotoServiceStub(channel)
    finally:
        os.environ["AWS_ENDPOINT_URL_S3"] = previous


async def ticket_for(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, data: bytes, *, checksum: bool = True
) -> pb.CreateUploadUrlResponse:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode() if checksum else ""
    return await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="signed.jpg",
            content_type="image/jpeg",
            size_bytes=len(data),
            checksum_sha256=digest,
        ),
        metadata=user.metadata,
    )


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def tampered(url: str) -> str:
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return with_query(url, **{"X-Amz-Signature": flipped})


async def test_valid_upload_succeeds_and_download_url_works(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = jpeg((5, 5))
    ticket = await ticket_for(ls_stub, alice, data)
    assert (await put_bytes(http, ticket, data)).status_code == 200
    photo = (
        await ls_stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
        )
    ).photo
    download = await http.get(photo.url)
    assert download.status_code == 200
    assert download.content == data
    # The signed response-cache-control: browsers keep the image for the URL's lifetime.
    lifetime = parse_qs(urlsplit(photo.url).query)["X-Amz-Expires"][0]
    assert download.headers["cache-control"] == f"private, max-age={lifetime}, immutable"
    assert (await http.get(tampered(photo.url))).status_code == 403
    # Even the very same bytes cannot overwrite the stored object (If-None-Match: *).
    assert (await put_bytes(http, ticket, data)).status_code == 412


@pytest.mark.parametrize(
    "deviation",
    ["other-content-type", "other-length", "tampered-signature", "no-if-none-match", "other-bytes"],
)
async def test_s3_refuses_uploads_that_differ_from_the_reservation(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, deviation: str
) -> None:
    data = jpeg((7, 7))
    ticket = await ticket_for(ls_stub, alice, data)
    url, headers, body = ticket.upload_url, dict(ticket.required_headers), data
    if deviation == "other-content-type":
        headers["Content-Type"] = "image/png"
    elif deviation == "other-length":
        body = data + b"\x00" * 10
        headers.pop("Content-Length")
    elif deviation == "tampered-signature":
        url = tampered(url)
    elif deviation == "no-if-none-match":
        headers.pop("If-None-Match")
    elif deviation == "other-bytes":
        body = bytes(reversed(data))  # same length, same type header, wrong checksum
    response = await http.put(url, content=body, headers=headers)
    assert response.status_code in (400, 403), response.text
    # Nothing was stored, so the upload cannot be confirmed.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ls_stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_s3_refuses_an_expired_upload_url(
    ls_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = jpeg((3, 3))
    ticket = await ticket_for(ls_stub, alice, data, checksum=False)
    assert "X-Amz-Expires=60" in ticket.upload_url  # PHOTOVAULT_UPLOAD_URL_TTL_SECONDS
    # Rewriting X-Amz-Expires would break the signature, so wait out a one-second URL signed
    # with the service's own S3 configuration instead.
    assert await _expired_put_status(http, ticket, data) == 403


async def _expired_put_status(
    http: httpx.AsyncClient, ticket: pb.CreateUploadUrlResponse, data: bytes
) -> int:
    """Signs a one-second URL for another key with the service's S3 settings, waits it out."""
    import aioboto3

    from photovault_server.app import s3_config
    from photovault_server.settings import load_settings

    settings = load_settings(
        PHOTOVAULT_BUCKET="photovault-test",
        PHOTOVAULT_JWT_SECRET="x" * 32,
        PHOTOVAULT_S3_ADDRESSING_STYLE="path",
    )
    endpoint = urlunsplit(urlsplit(ticket.upload_url)._replace(path="", query=""))
    async with aioboto3.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=s3_config(settings)
    ) as s3:
        url = await s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": "photovault-test",
                "Key": "users/expiry/photos/x.jpg",
                "ContentType": "image/jpeg",
                "ContentLength": len(data),
                "IfNoneMatch": "*",
            },
            ExpiresIn=1,
        )
    await asyncio.sleep(2.1)
    response = await http.put(
        url,
        content=data,
        headers={"Content-Type": "image/jpeg", "If-None-Match": "*"},
    )
    return response.status_code
