"""gRPC-web replies over a real socket, as bytes: OK responses (data frame, trailer frame) and
errors (trailers-only, percent-encoded messages, status details matching native gRPC)."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import unquote

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.errors import InvalidArgument
from photovault_server.core.models import Account

from .support.callers import (
    connect_status,
    patch_core,
)
from .support.grpc_status import call_error
from .support.grpc_web import (
    BINARY_REPLY,
    GET_ACCOUNT_FRAME,
    OK_TRAILER_FRAME,
    SERVICE,
    TEXT_REPLY,
    auth,
    grpc_web_call,
    grpc_web_post,
    parse_trailer_block,
    trailers_only_status,
    unpadded_b64decode,
)
from .support.images import jpeg
from .support.users import User, upload_photo

# OK responses


async def test_ok_response_exact_bytes(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    response = await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=auth(alice))
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert native.account.user_id == alice.id
    payload = native.SerializeToString()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/grpc-web+proto"
    assert "grpc-status" not in response.headers  # never a header status with a body
    assert response.content == (
        b"\x00"
        + len(payload).to_bytes(4, "big")
        + payload  # the data frame
        + b"\x80\x00\x00\x00\x20grpc-status: 0\r\ngrpc-message: \r\n"  # the trailer frame, last
    )
    assert response.content[-len(OK_TRAILER_FRAME) :] == OK_TRAILER_FRAME
    assert parse_trailer_block(OK_TRAILER_FRAME[5:]) == {"grpc-status": "0", "grpc-message": ""}


async def test_ok_response_with_empty_message_still_has_data_and_trailer_frames(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg())
    response = await grpc_web_call(web, "DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    assert response.content == b"\x00\x00\x00\x00\x00" + OK_TRAILER_FRAME


# Errors


async def test_error_is_trailers_only(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    request = pb.GetPhotoRequest(id=str(uuid.uuid4()))
    for text in (False, True):
        response = await grpc_web_call(web, "GetPhoto", request, alice, text=text)
        assert response.status_code == 200
        assert response.content == b""  # no data frame, and no (empty) trailer frame
        assert response.headers["content-type"] == (TEXT_REPLY if text else BINARY_REPLY)
        assert response.headers["grpc-status"] == "5"
        assert response.headers["grpc-message"] == f"photo {request.id} not found"
    native = await call_error(stub.GetPhoto(request, metadata=alice.metadata))
    assert native.details() == f"photo {request.id} not found"


async def test_grpc_message_is_percent_encoded_utf8_like_native(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
) -> None:
    text = "titre «été» trop long: 100% ✓\u00a0fin"

    async def refuse(user_id: str) -> Account:
        raise InvalidArgument.field("title", text)

    patch_core(monkeypatch, app, "get_account", refuse)
    response = await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=auth(alice))
    native = await call_error(stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata))
    raw = response.headers.raw
    grpc_message = next(v for k, v in raw if k.lower() == b"grpc-message")
    # Exactly the bytes gRPC's percent-encoding defines: UTF-8, and only 0x20-0x7E except '%'
    # left as they are.
    assert grpc_message == (
        b"title: titre %C2%AB%C3%A9t%C3%A9%C2%BB trop long: 100%25 %E2%9C%93%C2%A0fin"
    )
    assert unquote(grpc_message.decode("ascii"), errors="strict") == native.details()
    assert native.details() == f"title: {text}"


async def test_long_non_ascii_tag_error_matches_native(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    request = pb.ListPhotosRequest(tags=["é" * 51])
    reply = trailers_only_status(await grpc_web_call(web, "ListPhotos", request, alice))
    native = await call_error(stub.ListPhotos(request, metadata=alice.metadata))
    assert reply.code == 3
    assert native.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reply.message == native.details()
    assert "tags[0]" in reply.message
    assert reply.status == rpc_status.from_call(native)


async def test_status_details_bin_is_unpadded_base64_of_the_native_status(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    request = pb.GetPhotoRequest(id="not-a-uuid")
    response = await grpc_web_call(web, "GetPhoto", request, alice)
    native = await call_error(stub.GetPhoto(request, metadata=alice.metadata))
    expected: status_pb2.Status = rpc_status.from_call(native)
    value = response.headers["grpc-status-details-bin"]
    assert value == base64.b64encode(expected.SerializeToString()).decode().rstrip("=")
    assert "=" not in value
    got = status_pb2.Status.FromString(unpadded_b64decode(value))
    assert got == expected
    assert got.code == 3
    assert got.message == native.details()
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert got.details[0].Unpack(info)
    assert got.details[1].Unpack(bad)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "photovault.v1")
    assert [v.field for v in bad.field_violations] == ["id"]


@pytest.mark.parametrize(
    ("path", "encoded_message"),
    [
        (f"/{SERVICE}/Nope", f"unknown method /{SERVICE}/Nope"),
        ("/other.v1.Service/GetAccount", "unknown method /other.v1.Service/GetAccount"),
        (f"/{SERVICE}/%C3%89t%C3%A9%25", f"unknown method /{SERVICE}/%C3%89t%C3%A9%25"),
    ],
)
async def test_unknown_method_is_unimplemented_with_http_200(
    web: httpx.AsyncClient, alice: User, path: str, encoded_message: str
) -> None:
    response = await web.post(
        path,
        content=GET_ACCOUNT_FRAME,
        headers={"content-type": "application/grpc-web+proto", **auth(alice)},
    )
    reply = trailers_only_status(response)
    assert reply.code == 12
    assert response.headers["grpc-message"] == encoded_message


@pytest.mark.parametrize("protocol", ["grpc-web", "grpc-web-text", "connect-json"])
async def test_unexpected_exception_is_internal_without_internals(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
    protocol: str,
) -> None:
    async def explode(user_id: str) -> Account:
        raise RuntimeError("secret s3://bucket/key?X-Amz-Signature=deadbeef at postgres:5432")

    patch_core(monkeypatch, app, "get_account", explode)
    native = await call_error(stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata))
    expected: status_pb2.Status = rpc_status.from_call(native)
    assert (native.code(), native.details()) == (grpc.StatusCode.INTERNAL, "internal error")
    if protocol == "connect-json":
        response = await web.post(
            f"/{SERVICE}/GetAccount",
            content=b"{}",
            headers={"content-type": "application/json", **auth(alice)},
        )
        assert response.status_code == 500
        assert connect_status(response.json()) == expected
        assert response.json()["code"] == "internal"
    else:
        text = protocol == "grpc-web-text"
        response = await grpc_web_call(web, "GetAccount", pb.GetAccountRequest(), alice, text=text)
        reply = trailers_only_status(response, text=text)
        assert (reply.code, reply.message) == (13, "internal error")
        assert reply.status == expected
    info = error_details_pb2.ErrorInfo()
    assert expected.details[0].Unpack(info)
    assert (info.reason, dict(info.metadata)) == ("INTERNAL", {})
    everything = (
        response.content + "".join(f"{k}: {v}\n" for k, v in response.headers.items()).encode()
    )
    for leak in (b"secret", b"RuntimeError", b"deadbeef", b"5432", b"Traceback"):
        assert leak not in everything
