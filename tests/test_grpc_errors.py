"""Bad input, bad tokens and another user's ids, through the real server: each gets the right
status code, a clear message, google.rpc.Status details, and writes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from typing import Any

import grpc
import httpx
import jwt
import pytest
from google.protobuf import field_mask_pb2

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.grpc_status import call_error, details
from .support.images import jpeg
from .support.settings import JWT_SECRET
from .support.users import User, upload_photo

StatusCode = grpc.StatusCode


def upload_request(**fields: Any) -> pb.CreateUploadUrlRequest:
    base: dict[str, Any] = {"file_name": "ok.jpg", "content_type": "image/jpeg", "size_bytes": 1000}
    base.update(fields)
    return pb.CreateUploadUrlRequest(**base)


BAD_UPLOADS = [
    pytest.param({"file_name": ""}, "file_name", id="empty-name"),
    pytest.param({"file_name": "x" * 256}, "file_name", id="name-256-chars"),
    pytest.param({"file_name": "a\x00b.jpg"}, "file_name", id="name-nul"),
    pytest.param({"file_name": "photo\u202egpj.exe"}, "file_name", id="name-rtl-override"),
    pytest.param({"file_name": "../../etc/passwd"}, "file_name", id="name-dotdot-slash"),
    pytest.param({"file_name": "..\\x.jpg"}, "file_name", id="name-backslash"),
    pytest.param({"file_name": "ok" * 5000}, "file_name", id="name-10kb"),
    pytest.param({"content_type": "image/svg+xml"}, "content_type", id="svg"),
    pytest.param({"content_type": "text/html"}, "content_type", id="html"),
    pytest.param({"content_type": ""}, "content_type", id="no-type"),
    pytest.param({"size_bytes": 0}, "size_bytes", id="size-0"),
    pytest.param({"size_bytes": -5}, "size_bytes", id="size-negative"),
    pytest.param({"size_bytes": 1024 * 1024 + 1}, "size_bytes", id="size-over-max"),
    pytest.param({"checksum_sha256": "abc"}, "checksum_sha256", id="checksum-short"),
    pytest.param({"checksum_sha256": "!" * 44}, "checksum_sha256", id="checksum-not-base64"),
]


@pytest.mark.parametrize(("fields", "bad_field"), BAD_UPLOADS)
async def test_create_upload_url_rejects_bad_input(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, fields: dict[str, Any], bad_field: str
) -> None:
    error = await call_error(
        stub.CreateUploadUrl(upload_request(**fields), metadata=alice.metadata)
    )
    assert error.code() == StatusCode.INVALID_ARGUMENT
    assert bad_field in (error.details() or "")
    assert details(error)["fields"] == [bad_field]
    assert details(error)["reason"] == "INVALID_ARGUMENT"
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert account.pending_bytes == 0  # nothing reserved


async def test_quota_is_resource_exhausted_with_numbers(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    # The test server's quota is 10 MiB and the max upload 1 MiB.
    for _ in range(10):
        await stub.CreateUploadUrl(upload_request(size_bytes=1024 * 1024), metadata=alice.metadata)
    error = await call_error(
        stub.CreateUploadUrl(upload_request(size_bytes=1), metadata=alice.metadata)
    )
    assert error.code() == StatusCode.RESOURCE_EXHAUSTED
    info = details(error)
    assert info["reason"] == "QUOTA_EXCEEDED"
    assert info["quota"] == [f"user:{alice.id}"]
    assert "0 of 10485760 bytes left" in (error.details() or "")


async def test_quota_holds_under_concurrent_uploads(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    import asyncio

    calls = [
        stub.CreateUploadUrl(upload_request(size_bytes=1024 * 1024), metadata=alice.metadata)
        for _ in range(25)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    accepted = [r for r in results if isinstance(r, pb.CreateUploadUrlResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(accepted) == 10
    assert {e.code() for e in refused} == {StatusCode.RESOURCE_EXHAUSTED}
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert account.pending_bytes == 10 * 1024 * 1024 == account.quota_bytes


def _token(**claims: Any) -> str:
    now = int(time.time())
    # Built at collection time: valid for long enough for any test order and run length.
    base: dict[str, Any] = {"sub": "mallory", "exp": now + 6 * 3600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, JWT_SECRET, "HS256")


def _alg_none_token() -> str:
    # PyJWT's annotations leave out the None key that algorithm "none" requires.
    return jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 6 * 3600},
        None,  # type: ignore[arg-type]
        algorithm="none",
    )


BAD_TOKENS = [
    pytest.param(None, "TOKEN_MISSING", id="missing"),
    pytest.param("Basic dXNlcjpwYXNz", "TOKEN_MALFORMED", id="basic-auth"),
    pytest.param("Bearer ", "TOKEN_MALFORMED", id="empty-bearer"),
    pytest.param("Bearer garbage", "TOKEN_INVALID", id="garbage"),
    pytest.param(f"Bearer {_alg_none_token()}", "TOKEN_INVALID", id="alg-none"),
    pytest.param(
        "Bearer " + jwt.encode({"sub": "m", "exp": 2**31}, "another-secret-" + "y" * 32, "HS256"),
        "TOKEN_INVALID",
        id="wrong-secret",
    ),
    pytest.param(f"Bearer {_token(exp=int(time.time()) - 3600)}", "TOKEN_EXPIRED", id="expired"),
    pytest.param(f"Bearer {_token(nbf=int(time.time()) + 3600)}", "TOKEN_INVALID", id="not-yet"),
    pytest.param(f"Bearer {_token(exp=None)}", "TOKEN_INVALID", id="no-exp"),
    pytest.param(f"Bearer {_token(sub=None)}", "TOKEN_INVALID", id="no-sub"),
    pytest.param(f"Bearer {_token(sub='../admin')}", "TOKEN_INVALID", id="sub-path"),
    pytest.param(f"Bearer {_token(sub='a' * 129)}", "TOKEN_INVALID", id="sub-too-long"),
]


@pytest.mark.parametrize(("authorization", "reason"), BAD_TOKENS)
async def test_bad_tokens_are_unauthenticated(
    stub: pb_grpc.PhotoServiceAsyncStub, authorization: str | None, reason: str
) -> None:
    metadata = (("authorization", authorization),) if authorization is not None else ()
    error = await call_error(stub.GetAccount(pb.GetAccountRequest(), metadata=metadata))
    assert error.code() == StatusCode.UNAUTHENTICATED
    assert details(error)["reason"] == reason
    assert JWT_SECRET not in (error.details() or "")


async def test_another_users_photos_are_not_found_everywhere(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, bob: User
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg(), title="mine")
    pending = await stub.CreateUploadUrl(upload_request(), metadata=alice.metadata)
    bob_calls: dict[str, Awaitable[object]] = {
        "get": stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=bob.metadata),
        "update": stub.UpdatePhoto(
            pb.UpdatePhotoRequest(
                photo=photo_pb2.Photo(id=photo.id, title="stolen"),
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            ),
            metadata=bob.metadata,
        ),
        "delete": stub.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=bob.metadata),
        "urls": stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=[photo.id]), metadata=bob.metadata
        ),
        "confirm": stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=pending.upload_id), metadata=bob.metadata
        ),
        "confirm-photo": stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=photo.id), metadata=bob.metadata
        ),
    }
    for name, call in bob_calls.items():
        error = await call_error(call)
        assert error.code() == StatusCode.NOT_FOUND, name
    unknown = await call_error(
        stub.GetPhoto(pb.GetPhotoRequest(id=str(uuid.uuid4())), metadata=bob.metadata)
    )
    assert unknown.code() == StatusCode.NOT_FOUND
    # Same answer for "not yours" and "does not exist": the message names only the id.
    assert list((await stub.ListPhotos(pb.ListPhotosRequest(), metadata=bob.metadata)).photos) == []
    still = (await stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata)).photo
    assert still.title == "mine"
    assert (await http.get(still.url)).status_code == 200


@pytest.mark.parametrize(
    ("photo_id", "code"),
    [
        ("", StatusCode.INVALID_ARGUMENT),
        ("not-a-uuid", StatusCode.INVALID_ARGUMENT),
        ("1B4E28BA-2FA1-11D2-883F-0016D3CCA427", StatusCode.NOT_FOUND),  # well-formed, unknown
        ("'; DROP TABLE photos; --", StatusCode.INVALID_ARGUMENT),
        ("x" * 10_000, StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_ids_malformed_vs_unknown(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, photo_id: str, code: StatusCode
) -> None:
    error = await call_error(
        stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=alice.metadata)
    )
    assert error.code() == code
    if code == StatusCode.INVALID_ARGUMENT:
        assert details(error)["fields"] == ["id"]


@pytest.mark.parametrize(
    ("paths", "photo", "field"),
    [
        ([], {}, "update_mask"),
        (["owner_id"], {}, "update_mask"),
        (["size_bytes"], {}, "update_mask"),
        (["title"], {"title": "t" * 201}, "photo.title"),
        (["description"], {"description": "d" * 2001}, "photo.description"),
        (["tags"], {"tags": [f"t{i}" for i in range(21)]}, "photo.tags"),
        (["tags"], {"tags": ["x" * 51]}, "photo.tags[0]"),
        (["visibility"], {}, "photo.visibility"),
    ],
)
async def test_update_photo_rejects_bad_masks_and_values(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    paths: list[str],
    photo: dict[str, Any],
    field: str,
) -> None:
    existing = await upload_photo(stub, http, alice, jpeg(), title="kept")
    error = await call_error(
        stub.UpdatePhoto(
            pb.UpdatePhotoRequest(
                photo=photo_pb2.Photo(id=existing.id, **photo),
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            metadata=alice.metadata,
        )
    )
    assert error.code() == StatusCode.INVALID_ARGUMENT
    assert field in details(error)["fields"]
    after = (await stub.GetPhoto(pb.GetPhotoRequest(id=existing.id), metadata=alice.metadata)).photo
    assert (after.title, after.update_time) == ("kept", existing.update_time)


async def test_batch_get_photo_urls_limits(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    empty = await stub.BatchGetPhotoUrls(pb.BatchGetPhotoUrlsRequest(), metadata=alice.metadata)
    assert list(empty.urls) == []
    ids = [str(uuid.uuid4()) for _ in range(101)]
    error = await call_error(
        stub.BatchGetPhotoUrls(pb.BatchGetPhotoUrlsRequest(photo_ids=ids), metadata=alice.metadata)
    )
    assert error.code() == StatusCode.INVALID_ARGUMENT
    assert details(error)["fields"] == ["photo_ids"]
    error = await call_error(
        stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=ids[:100]), metadata=alice.metadata
        )
    )
    assert error.code() == StatusCode.NOT_FOUND
