"""Connect unary through the gateway over a real socket: the curl form, JSON and proto bodies,
errors as JSON with Connect's codes, and the protocol's headers."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.grpc_status import call_error
from .support.grpc_web import (
    ALLOWED_ORIGIN,
    CONNECT_CODES,
    SERVICE,
    auth,
)
from .support.images import jpeg
from .support.users import User, new_user, upload_photo

# Connect unary


async def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 exchange over a plain socket, exactly these request bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1]), headers, body


async def test_issue_curl_form_works(
    gateway_port: int, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    """curl -H 'content-type: application/json' -H 'Authorization: Bearer …' -d '{}' …"""
    request = (
        f"POST /{SERVICE}/GetAccount HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{gateway_port}\r\n"
        "User-Agent: curl/8.5.0\r\n"
        "Accept: */*\r\n"
        f"Authorization: Bearer {alice.token}\r\n"
        "content-type: application/json\r\n"
        "Content-Length: 2\r\n"
        "\r\n"
        "{}"
    ).encode()
    status, headers, body = await raw_http(gateway_port, request)
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == json_format.MessageToDict(native)
    assert json.loads(body)["account"]["userId"] == alice.id


@pytest.mark.parametrize("content_type", ["application/json", "application/proto"])
async def test_connect_unary_json_and_proto(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    content_type: str,
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg(), title="connect", tags=["c"])
    request = pb.GetPhotoRequest(id=photo.id)
    body = (
        json_format.MessageToJson(request).encode()
        if content_type == "application/json"
        else request.SerializeToString()
    )
    response = await web.post(
        f"/{SERVICE}/GetPhoto",
        content=body,
        headers={"content-type": content_type, "connect-protocol-version": "1", **auth(alice)},
    )
    native = await stub.GetPhoto(request, metadata=alice.metadata)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    if content_type == "application/proto":
        assert response.content == native.SerializeToString()
    else:
        assert response.json() == json_format.MessageToDict(native)


async def test_connect_errors_are_json_with_connect_codes(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    quota_user = new_user()
    for _ in range(10):  # the test server's quota is 10 MiB, its max upload 1 MiB
        await stub.CreateUploadUrl(
            pb.CreateUploadUrlRequest(
                file_name="a.jpg", content_type="image/jpeg", size_bytes=1024 * 1024
            ),
            metadata=quota_user.metadata,
        )
    one_byte = pb.CreateUploadUrlRequest(file_name="a.jpg", content_type="image/jpeg", size_bytes=1)
    cases: list[tuple[str, Message, User | None, str, int]] = [
        ("GetAccount", pb.GetAccountRequest(), None, "unauthenticated", 401),
        ("GetPhoto", pb.GetPhotoRequest(id=str(uuid.uuid4())), alice, "not_found", 404),
        ("GetPhoto", pb.GetPhotoRequest(id="not-a-uuid"), alice, "invalid_argument", 400),
        ("CreateUploadUrl", one_byte, quota_user, "resource_exhausted", 429),
    ]
    for rpc, request, user, name, http_status in cases:
        response = await web.post(
            f"/{SERVICE}/{rpc}",
            content=json_format.MessageToJson(request),
            headers={
                "content-type": "application/json",
                "connect-protocol-version": "1",
                **auth(user),
            },
        )
        native = await call_error(
            getattr(stub, rpc)(request, metadata=user.metadata if user else ())
        )
        expected: status_pb2.Status = rpc_status.from_call(native)
        assert response.status_code == http_status, rpc
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "code": name,
            "message": native.details(),
            "details": [
                {
                    "type": d.type_url.removeprefix("type.googleapis.com/"),
                    "value": base64.b64encode(d.value).decode().rstrip("="),
                }
                for d in expected.details
            ],
        }
        assert response.json()["details"][0]["type"] == "google.rpc.ErrorInfo"
        assert CONNECT_CODES[name][0] == native.code().value[0]


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"id": 5}', b'"x"', b"\xff\xfe", b'{"id": "a", "id": "b"', b"nul"],
)
async def test_connect_bad_json_is_invalid_argument(
    web: httpx.AsyncClient, alice: User, body: bytes
) -> None:
    response = await web.post(
        f"/{SERVICE}/GetPhoto",
        content=body,
        headers={
            "content-type": "application/json",
            "connect-protocol-version": "1",
            **auth(alice),
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_argument"
    assert response.json()["message"]


async def test_connect_bad_proto_is_invalid_argument(web: httpx.AsyncClient, alice: User) -> None:
    response = await web.post(
        f"/{SERVICE}/GetPhoto",
        content=b"\x0a\xff",
        headers={"content-type": "application/proto", **auth(alice)},
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_argument")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"connect-protocol-version": "2"}, 400, "invalid_argument"),
        ({"connect-protocol-version": "0"}, 400, "invalid_argument"),
        ({"content-encoding": "gzip"}, 501, "unimplemented"),
    ],
)
async def test_connect_protocol_headers(
    web: httpx.AsyncClient, alice: User, headers: dict[str, str], status: int, code: str
) -> None:
    response = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", **headers, **auth(alice)},
    )
    assert response.status_code == status
    assert response.json()["code"] == code


async def test_connect_unknown_method_is_unimplemented(web: httpx.AsyncClient, alice: User) -> None:
    response = await web.post(
        f"/{SERVICE}/Nope",
        content=b"{}",
        headers={"content-type": "application/json", **auth(alice)},
    )
    assert (response.status_code, response.json()["code"]) == (501, "unimplemented")


async def test_connect_body_over_the_transport_cap_is_a_json_error(
    web: httpx.AsyncClient, alice: User
) -> None:
    response = await web.post(
        f"/{SERVICE}/ListPhotos",
        content=b'{"query": "' + b"q" * (6 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json", "origin": ALLOWED_ORIGIN, **auth(alice)},
    )
    assert response.status_code == 429
    assert response.json()["code"] == "resource_exhausted"
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN


async def test_connect_json_ignores_unknown_fields(web: httpx.AsyncClient, alice: User) -> None:
    """As binary protobuf does, so that newer clients can call an older server."""
    response = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b'{"futureField": 1}',
        headers={"content-type": "application/json", **auth(alice)},
    )
    assert response.status_code == 200
    assert response.json()["account"]["userId"] == alice.id
