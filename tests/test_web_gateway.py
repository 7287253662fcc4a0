"""The web gateway over a real socket: gRPC-web (binary and text) and Connect unary, with CORS.

Every test speaks bytes to the uvicorn server of `running_web_gateway` on 127.0.0.1:0, which
serves a WebGateway over the session's app (the same core the native gRPC server uses). Frames,
trailers and base64 are built and parsed here by hand, independently of the gateway's codec, so a
bug in the codec cannot hide behind the same bug in the test. Where the protocol fixes the bytes
(frames, the trailer block, percent-encoding, base64) the tests compare exact bytes; golden
files live in tests/data/grpc_web/ (see its README). The parity test also drives the gateway
with the `connectrpc` client from PyPI, an independent implementation of gRPC-web and Connect.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import grpc
import httpx
import pytest
import structlog
from connectrpc.client import ConnectClient
from connectrpc.codec import Codec
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.protocol import ProtocolType
from google.protobuf import any_pb2, field_mask_pb2, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.errors import InvalidArgument
from photovault_server.core.models import Account
from photovault_server.transport.web import WebGateway
from photovault_server.transport.web.asgi import running_web_gateway
from photovault_server.transport.web.cors import CorsPolicy

from .conftest import User, new_user, put_bytes, upload_photo
from .support.images import jpeg
from .test_grpc_errors import call_error

DATA = Path(__file__).parent / "data" / "grpc_web"
SERVICE = "photovault.v1.PhotoService"
SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["PhotoService"]
ALLOWED_ORIGIN = "http://allowed.test"
OTHER_ORIGIN = "http://evil.test"
# A Host unlike any origin, sent explicitly: an implementation that echoes the Host is caught.
GATEWAY_HOST = "photos.internal:8080"
FOUR_MIB = 4 * 1024 * 1024

BINARY_TYPES = ("application/grpc-web", "application/grpc-web+proto")
TEXT_TYPES = ("application/grpc-web-text", "application/grpc-web-text+proto")
BINARY_REPLY = "application/grpc-web+proto"
TEXT_REPLY = "application/grpc-web-text+proto"

OK_TRAILER_FRAME = (DATA / "ok_trailer_frame.bin").read_bytes()
GET_ACCOUNT_FRAME = (DATA / "get_account_request.bin").read_bytes()
GET_ACCOUNT_TEXT = (DATA / "get_account_request.txt").read_bytes()

# The Connect protocol's table (connectrpc.com/docs/protocol#error-codes): name, gRPC code, HTTP.
CONNECT_CODES: dict[str, tuple[int, int]] = {
    "canceled": (1, 499),
    "unknown": (2, 500),
    "invalid_argument": (3, 400),
    "deadline_exceeded": (4, 504),
    "not_found": (5, 404),
    "already_exists": (6, 409),
    "permission_denied": (7, 403),
    "resource_exhausted": (8, 429),
    "failed_precondition": (9, 400),
    "aborted": (10, 409),
    "out_of_range": (11, 400),
    "unimplemented": (12, 501),
    "internal": (13, 500),
    "unavailable": (14, 503),
    "data_loss": (15, 500),
    "unauthenticated": (16, 401),
}
GRPC_TO_CONNECT = {code: name for name, (code, _) in CONNECT_CODES.items()}


# Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def gateway_port(app: App) -> AsyncIterator[int]:
    gateway = WebGateway(app.service, app.verifier, cors=CorsPolicy([ALLOWED_ORIGIN]))
    async with running_web_gateway(gateway, "127.0.0.1:0") as port:
        yield port


@pytest.fixture(scope="session")
def gateway_url(gateway_port: int) -> str:
    return f"http://127.0.0.1:{gateway_port}"


@pytest.fixture(scope="session")
async def web(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


# Wire helpers, written from the spec (not imported from the gateway) --------------------------


def frame(payload: bytes, flag: int = 0x00) -> bytes:
    """A gRPC-web frame: 1 flag byte, 4-byte big-endian length, payload."""
    return bytes([flag]) + len(payload).to_bytes(4, "big") + payload


def split_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames = []
    offset = 0
    while offset < len(body):
        assert len(body) - offset >= 5, f"truncated frame header at byte {offset}: {body!r}"
        flag = body[offset]
        length = int.from_bytes(body[offset + 1 : offset + 5], "big")
        payload = body[offset + 5 : offset + 5 + length]
        assert len(payload) == length, f"frame at byte {offset} is shorter than its prefix"
        frames.append((flag, payload))
        offset += 5 + length
    return frames


def parse_trailer_block(block: bytes) -> dict[str, str]:
    """`key: value\\r\\n` lines, keys lower-case, every line ending in CRLF."""
    assert block.endswith(b"\r\n"), block
    trailers = {}
    for line in block[:-2].split(b"\r\n"):
        key, sep, value = line.partition(b":")
        assert sep, f"trailer line without a colon: {line!r}"
        name = key.decode("ascii")
        assert name == name.lower(), f"trailer name not lower-case: {name!r}"
        assert name.strip() == name, f"white space around trailer name {name!r}"
        trailers[name] = value.decode("ascii").strip()
    return trailers


def b64_segments(text: bytes) -> bytes:
    """grpc-web-text body: base64 in 4-character blocks, possibly several padded segments."""
    assert len(text) % 4 == 0, text
    out = bytearray()
    start = 0
    for block in range(0, len(text), 4):
        if text[block + 3 : block + 4] == b"=":
            out += base64.b64decode(text[start : block + 4], validate=True)
            start = block + 4
    out += base64.b64decode(text[start:], validate=True)
    return bytes(out)


def unpadded_b64decode(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def auth(user: User | None) -> dict[str, str]:
    return {"authorization": f"Bearer {user.token}"} if user else {}


def response_type(rpc: str) -> type[Message]:
    name = SERVICE_DESCRIPTOR.methods_by_name[rpc].output_type.name
    return cast(type[Message], getattr(pb, name))


async def grpc_web_post(
    web: httpx.AsyncClient,
    rpc: str,
    body: bytes,
    *,
    content_type: str = "application/grpc-web+proto",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    return await web.post(
        f"/{SERVICE}/{rpc}",
        content=body,
        headers={"content-type": content_type, "x-grpc-web": "1", **(headers or {})},
    )


async def grpc_web_call(
    web: httpx.AsyncClient,
    rpc: str,
    request: Message,
    user: User | None,
    *,
    text: bool = False,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    body = frame(request.SerializeToString())
    return await grpc_web_post(
        web,
        rpc,
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers={**auth(user), **(headers or {})},
    )


@dataclass
class WebReply:
    """A gRPC-web response taken apart: its data frames and its status, from a trailer frame
    or (trailers-only) from the headers, never both."""

    messages: list[bytes]
    trailers: dict[str, str]
    trailers_only: bool

    @property
    def code(self) -> int:
        return int(self.trailers["grpc-status"])

    @property
    def message(self) -> str:
        return unquote(self.trailers.get("grpc-message", ""), errors="strict")

    @property
    def status(self) -> status_pb2.Status | None:
        raw = self.trailers.get("grpc-status-details-bin")
        return status_pb2.Status.FromString(unpadded_b64decode(raw)) if raw is not None else None


def read_grpc_web(response: httpx.Response, *, text: bool = False) -> WebReply:
    assert response.status_code == 200, (response.status_code, response.content)
    assert response.headers["content-type"] == (TEXT_REPLY if text else BINARY_REPLY)
    body = b64_segments(response.content) if text else response.content
    frames = split_frames(body)
    if not frames:
        # Trailers-only: the status is in the headers and the body is empty.
        assert body == b""
        trailers = {
            k: v for k, v in response.headers.items() if k.startswith("grpc-") and k != "grpc-web"
        }
        assert "grpc-status" in trailers, "empty body and no grpc-status header"
        return WebReply([], trailers, trailers_only=True)
    assert "grpc-status" not in response.headers, "status both in the headers and in the body"
    *data, (last_flag, last) = frames
    assert last_flag == 0x80, f"the last frame is not a trailer frame: {frames!r}"
    assert all(flag == 0x00 for flag, _ in data), frames
    return WebReply([payload for _, payload in data], parse_trailer_block(last), False)


def trailers_only_status(response: httpx.Response, *, text: bool = False) -> WebReply:
    """An error answered trailers-only: HTTP 200, status in headers, empty body; the
    grpc-status-details-bin Status agrees with grpc-status and grpc-message."""
    reply = read_grpc_web(response, text=text)
    assert reply.trailers_only, reply
    assert response.content == b""
    status = reply.status
    assert status is not None, "error without grpc-status-details-bin"
    assert (status.code, status.message) == (reply.code, reply.message)
    return reply


# One call, any protocol ---------------------------------------------------------------------


@dataclass
class Outcome:
    """What a client learns from one call: the reply, or the code, message and Status."""

    reply: Message | None
    code: int = 0
    message: str = ""
    status: status_pb2.Status | None = None


Caller = Callable[[str, Message, User | None], Awaitable[Outcome]]


def native_caller(stub: pb_grpc.PhotoServiceAsyncStub) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        metadata = user.metadata if user else ()
        try:
            reply: Message = await getattr(stub, rpc)(request, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            status: status_pb2.Status | None = rpc_status.from_call(error)
            return Outcome(None, error.code().value[0], error.details() or "", status)
        return Outcome(reply)

    return call


def grpc_web_caller(web: httpx.AsyncClient, *, text: bool) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        reply = read_grpc_web(await grpc_web_call(web, rpc, request, user, text=text), text=text)
        if reply.code != 0:
            assert reply.messages == []
            return Outcome(None, reply.code, reply.message, reply.status)
        assert len(reply.messages) == 1
        return Outcome(response_type(rpc).FromString(reply.messages[0]))

    return call


def connect_status(body: dict[str, Any]) -> status_pb2.Status:
    """A Connect JSON error as the google.rpc.Status it carries."""
    code, _ = CONNECT_CODES[body["code"]]
    return status_pb2.Status(
        code=code,
        message=body.get("message", ""),
        details=[
            any_pb2.Any(
                type_url=f"type.googleapis.com/{d['type']}", value=unpadded_b64decode(d["value"])
            )
            for d in body.get("details", [])
        ],
    )


def connect_json_caller(web: httpx.AsyncClient) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        response = await web.post(
            f"/{SERVICE}/{rpc}",
            content=json_format.MessageToJson(request),
            headers={
                "content-type": "application/json",
                "connect-protocol-version": "1",
                **auth(user),
            },
        )
        assert response.headers["content-type"] == "application/json"
        if response.status_code == 200:
            reply = response_type(rpc)()
            json_format.Parse(response.text, reply)
            return Outcome(reply)
        body = response.json()
        assert response.status_code == CONNECT_CODES[body["code"]][1], body
        status = connect_status(body)
        return Outcome(None, status.code, status.message, status)

    return call


def connectrpc_caller(base_url: str, protocol: ProtocolType, codec: Codec) -> Caller:
    """The `connectrpc` PyPI client, with our own generated message classes."""
    client = ConnectClient(
        base_url, codec=codec, protocol=protocol, send_compression=None, accept_compression=[]
    )

    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        method: MethodInfo[Message, Message] = MethodInfo(
            name=rpc,
            service_name=SERVICE,
            input=type(request),
            output=response_type(rpc),
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type=StreamType.UNARY,
        )
        try:
            reply = await client.execute_unary(request=request, method=method, headers=auth(user))
        except ConnectError as error:
            code, _ = CONNECT_CODES[error.code.value]
            status = status_pb2.Status(
                code=code,
                message=error.message,
                details=[
                    any_pb2.Any(
                        type_url=f"type.googleapis.com/{d.type_name}", value=d.message_bytes
                    )
                    for d in error.details
                ],
            )
            return Outcome(None, code, error.message, status)
        return Outcome(reply)

    return call


PROTOCOLS = [
    "grpc-web",
    "grpc-web-text",
    "connect-json",
    "connectrpc-grpc-web",
    "connectrpc-connect-json",
    "connectrpc-connect-proto",
]


@pytest.fixture(params=PROTOCOLS)
def caller(request: pytest.FixtureRequest, web: httpx.AsyncClient, gateway_url: str) -> Caller:
    match request.param:
        case "grpc-web":
            return grpc_web_caller(web, text=False)
        case "grpc-web-text":
            return grpc_web_caller(web, text=True)
        case "connect-json":
            return connect_json_caller(web)
        case "connectrpc-grpc-web":
            return connectrpc_caller(
                gateway_url, ProtocolType.GRPC_WEB, google_protobuf_binary_codec()
            )
        case "connectrpc-connect-json":
            return connectrpc_caller(
                gateway_url, ProtocolType.CONNECT, google_protobuf_json_codec()
            )
        case "connectrpc-connect-proto":
            return connectrpc_caller(
                gateway_url, ProtocolType.CONNECT, google_protobuf_binary_codec()
            )
    raise AssertionError(request.param)


@pytest.fixture
def native(stub: pb_grpc.PhotoServiceAsyncStub) -> Caller:
    return native_caller(stub)


def patch_core(
    monkeypatch: pytest.MonkeyPatch, app: App, name: str, replacement: Callable[..., Any]
) -> None:
    """Replaces one PhotoService method for both transports (they share the core)."""
    monkeypatch.setattr(app.service, name, replacement)


# 1. Content types and methods --------------------------------------------------------------


@pytest.mark.parametrize("content_type", BINARY_TYPES + TEXT_TYPES)
async def test_grpc_web_content_types_are_accepted(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    alice: User,
    content_type: str,
) -> None:
    text = content_type in TEXT_TYPES
    response = await grpc_web_post(
        web,
        "GetAccount",
        GET_ACCOUNT_TEXT if text else GET_ACCOUNT_FRAME,
        content_type=content_type,
        headers=auth(alice),
    )
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert response.status_code == 200
    assert response.headers["content-type"] == (TEXT_REPLY if text else BINARY_REPLY)
    body = b64_segments(response.content) if text else response.content
    assert body == frame(native.SerializeToString()) + OK_TRAILER_FRAME


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web+json",
        "application/grpc-webtext",
        "application/octet-stream",
        "application/x-protobuf",
        "multipart/form-data; boundary=x",
    ],
)
async def test_other_content_types_are_415(
    web: httpx.AsyncClient, alice: User, content_type: str | None
) -> None:
    headers = auth(alice) | ({"content-type": content_type} if content_type else {})
    response = await web.post(f"/{SERVICE}/GetAccount", content=GET_ACCOUNT_FRAME, headers=headers)
    assert response.status_code == 415
    assert "grpc-status" not in response.headers


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
async def test_methods_other_than_post_are_405(
    web: httpx.AsyncClient, alice: User, method: str
) -> None:
    response = await web.request(
        method,
        f"/{SERVICE}/GetAccount",
        headers={"content-type": "application/grpc-web+proto", **auth(alice)},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"
    assert "grpc-status" not in response.headers


async def test_options_is_the_preflight_not_405(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST"},
    )
    assert response.status_code == 204
    assert response.content == b""


# 2. Request framing -------------------------------------------------------------------------


FRAMING_ERRORS = [
    pytest.param(b"", 3, id="no-frame"),
    pytest.param(b"\x00\x00\x00", 3, id="truncated-header"),
    pytest.param(GET_ACCOUNT_FRAME + b"\x00\x00", 3, id="trailing-partial-header"),
    pytest.param(b"\x00\x00\x00\x00\x0a" + b"\x08\x01", 3, id="frame-shorter-than-prefix"),
    pytest.param(b"\x00" + (FOUR_MIB + 1).to_bytes(4, "big"), 8, id="prefix-4mib-plus-1"),
    pytest.param(b"\x00\x7f\xff\xff\xff", 8, id="prefix-2gib"),
    pytest.param(b"\x00\xff\xff\xff\xff", 8, id="prefix-4gib"),
    pytest.param(GET_ACCOUNT_FRAME + GET_ACCOUNT_FRAME, 3, id="two-data-frames"),
    pytest.param(
        GET_ACCOUNT_FRAME + frame(b"grpc-status: 0\r\n", 0x80), 3, id="data-then-trailer-frame"
    ),
    pytest.param(frame(b"grpc-status: 0\r\n", 0x80), 3, id="trailer-frame-only"),
    pytest.param(frame(b"", 0x01), 12, id="compressed-flag"),
    pytest.param(frame(b"", 0x02), 3, id="unknown-flag"),
    pytest.param(frame(b"\xff\xff"), 3, id="not-protobuf"),
]


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
@pytest.mark.parametrize(("body", "code"), FRAMING_ERRORS)
async def test_bad_framing_is_a_grpc_status(
    web: httpx.AsyncClient, alice: User, body: bytes, code: int, text: bool
) -> None:
    response = await grpc_web_post(
        web,
        "GetAccount",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    reply = trailers_only_status(response, text=text)
    assert reply.code == code
    assert reply.message
    if code == 8:
        assert str(FOUR_MIB) in reply.message  # names the limit


async def test_frames_after_the_first_are_refused_at_their_header(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A unary request carries one data frame: the second is refused as soon as it starts,
    never parsed, so a third frame's header (here one claiming 4 GiB) is never read."""
    body = GET_ACCOUNT_FRAME + frame(b"") + b"\x00\xff\xff\xff\xff"
    reply = trailers_only_status(await grpc_web_post(web, "GetAccount", body, headers=auth(alice)))
    assert reply.code == 3, reply.message


@pytest.mark.parametrize("token", [None, "Bearer not-a-token"], ids=["no-token", "bad-token"])
async def test_anonymous_text_body_is_refused_before_it_is_decoded(
    web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    """Issue 13, item 6: a grpc-web-text body of 700,000 empty frames (4.7 MB of base64)
    from a caller without a valid token is answered UNAUTHENTICATED from the headers; the
    base64 is never decoded and no frame is read."""
    from photovault_server.transport.web import grpc_web

    decoded: list[int] = []
    real_decode_text = grpc_web.decode_text

    def counting_decode_text(body: bytes) -> bytes:
        decoded.append(len(body))
        return real_decode_text(body)

    monkeypatch.setattr(grpc_web, "decode_text", counting_decode_text)
    body = base64.b64encode(frame(b"") * 700_000)
    headers = {"authorization": token} if token else {}
    response = await grpc_web_post(
        web, "GetAccount", body, content_type=TEXT_REPLY, headers=headers
    )
    assert trailers_only_status(response, text=True).code == 16
    assert decoded == []


async def test_compressed_flag_with_unsupported_encoding_is_unimplemented(
    web: httpx.AsyncClient, alice: User
) -> None:
    response = await grpc_web_post(
        web,
        "GetAccount",
        frame(b"\x1f\x8b\x08\x00", 0x01),
        headers={"grpc-encoding": "snappy", **auth(alice)},
    )
    assert trailers_only_status(response).code == 12


async def test_uncompressed_frame_with_grpc_encoding_header_is_accepted(
    web: httpx.AsyncClient, alice: User
) -> None:
    # A client may announce an encoding and still send a message uncompressed (flag 0).
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-encoding": "gzip", **auth(alice)}
    )
    assert read_grpc_web(response).code == 0


def query_request_frame(size: int) -> bytes:
    """A ListPhotosRequest frame whose message is exactly `size` bytes (all in `query`)."""
    # field 4 (query), wire type 2: tag 0x22, then a 4-byte varint length, then the text.
    text_length = size - 5
    varint = bytes(
        [
            0x80 | (text_length & 0x7F),
            0x80 | ((text_length >> 7) & 0x7F),
            0x80 | ((text_length >> 14) & 0x7F),
            (text_length >> 21) & 0x7F,
        ]
    )
    message = b"\x22" + varint + b"q" * text_length
    assert len(message) == size
    assert pb.ListPhotosRequest.FromString(message).query == "q" * text_length
    return frame(message)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
async def test_message_of_exactly_4mib_passes_the_frame_limit(
    web: httpx.AsyncClient, alice: User, text: bool
) -> None:
    """At the limit the message reaches the core (which refuses the 4 MiB query itself)."""
    body = query_request_frame(FOUR_MIB)
    response = await grpc_web_post(
        web,
        "ListPhotos",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    reply = trailers_only_status(response, text=text)
    assert reply.code == 3
    assert reply.message.startswith("query: ")


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
async def test_message_one_byte_over_4mib_is_resource_exhausted(
    web: httpx.AsyncClient, alice: User, text: bool
) -> None:
    body = query_request_frame(FOUR_MIB + 1)
    response = await grpc_web_post(
        web,
        "ListPhotos",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    assert trailers_only_status(response, text=text).code == 8


async def test_body_over_the_transport_cap_gets_a_grpc_status_and_cors(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A body over the transport's cap (MAX_BODY_BYTES, 4 MiB * 4/3 + 1 KiB) is answered in the
    caller's protocol with CORS: grpc-status 8, as for a 4 MiB + 1 prefix. (It was once a plain
    413 without CORS headers, which a browser reports as a network failure.)"""
    body = frame(b"\x22" + b"q" * (6 * 1024 * 1024))
    response = await grpc_web_post(
        web, "ListPhotos", body, headers={"origin": ALLOWED_ORIGIN, **auth(alice)}
    )
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert trailers_only_status(response).code == 8


# 3. Text mode -------------------------------------------------------------------------------


async def test_text_request_in_two_padded_segments_decodes(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    for title in ("one", "two"):
        await upload_photo(stub, http, alice, jpeg(), title=title)
    body = (DATA / "list_photos_page_size_1.two_segments.txt").read_bytes()
    assert body == b"AAAAAAI=CAE="
    assert b64_segments(body) == frame(pb.ListPhotosRequest(page_size=1).SerializeToString())
    response = await grpc_web_post(
        web, "ListPhotos", body, content_type="application/grpc-web-text", headers=auth(alice)
    )
    native = await stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=alice.metadata)
    assert len(native.photos) == 1
    assert native.next_page_token
    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT_REPLY
    assert b64_segments(response.content) == frame(native.SerializeToString()) + OK_TRAILER_FRAME


async def test_text_request_one_padded_segment_per_byte_decodes(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    raw = frame(pb.ListPhotosRequest(page_size=3, query="été").SerializeToString())
    body = b"".join(base64.b64encode(raw[i : i + 1]) for i in range(len(raw)))
    assert body.count(b"==") == len(raw)
    response = await grpc_web_post(
        web, "ListPhotos", body, content_type=TEXT_REPLY, headers=auth(alice)
    )
    native = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=3, query="été"), metadata=alice.metadata
    )
    assert b64_segments(response.content) == frame(native.SerializeToString()) + OK_TRAILER_FRAME


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"!!!!", id="not-base64-alphabet"),
        pytest.param(b"AAAAAAA", id="not-a-multiple-of-4"),
        pytest.param(b"AA=A", id="padding-inside-a-block"),
        pytest.param(b"=AAA", id="padding-first"),
        pytest.param(b"AAAAAAI=CAE", id="second-segment-truncated"),
        pytest.param(b"AAAAAAA=\n", id="newline"),
        pytest.param(b"AAAA-_AA", id="base64url-alphabet"),
        pytest.param(b"====", id="padding-only"),
        pytest.param("AAAAAAA\u00e9".encode(), id="non-ascii"),
    ],
)
async def test_text_request_with_invalid_base64_is_400(
    web: httpx.AsyncClient, alice: User, body: bytes
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", body, content_type=TEXT_REPLY, headers=auth(alice)
    )
    assert response.status_code == 400
    assert "grpc-status" not in response.headers


async def test_text_request_with_a_padding_only_block_is_400(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A block of four '=' is base64 in no grammar, also after an unpadded segment (Python's
    lenient decoder once dropped it and the call ran): `AAAAAAQIAUgB====` is a 400."""
    raw = frame(
        pb.ListPhotosRequest(page_size=1, order=pb.PHOTO_ORDER_NEWEST_FIRST).SerializeToString()
    )
    assert len(raw) % 3 == 0
    assert base64.b64encode(raw) == b"AAAAAAQIAUgB"
    response = await grpc_web_post(
        web, "ListPhotos", b"AAAAAAQIAUgB====", content_type=TEXT_REPLY, headers=auth(alice)
    )
    assert response.status_code == 400, response.content
    assert "grpc-status" not in response.headers


async def test_text_reply_decodes_to_data_frame_then_trailer_frame(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_TEXT, content_type=TEXT_REPLY, headers=auth(alice)
    )
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert response.headers["content-type"] == TEXT_REPLY
    assert set(response.content) <= set(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    )
    frames = split_frames(b64_segments(response.content))
    assert frames == [(0x00, native.SerializeToString()), (0x80, OK_TRAILER_FRAME[5:])]


# 4. OK responses ----------------------------------------------------------------------------


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


# 5. Errors ----------------------------------------------------------------------------------


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


# 6. Metadata --------------------------------------------------------------------------------


async def test_authorization_header_is_the_user(
    web: httpx.AsyncClient, alice: User, bob: User
) -> None:
    for user in (alice, bob):
        response = await grpc_web_post(
            web, "GetAccount", GET_ACCOUNT_FRAME, headers={"Authorization": f"Bearer {user.token}"}
        )
        reply = read_grpc_web(response)
        assert reply.code == 0
        assert pb.GetAccountResponse.FromString(reply.messages[0]).account.user_id == user.id
    missing = trailers_only_status(await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME))
    assert missing.code == 16
    assert missing.status is not None
    info = error_details_pb2.ErrorInfo()
    assert missing.status.details[0].Unpack(info)
    assert info.reason == "TOKEN_MISSING"


async def test_request_id_header_reaches_the_logs(web: httpx.AsyncClient, alice: User) -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        response = await grpc_web_post(
            web, "GetAccount", GET_ACCOUNT_FRAME, headers={"x-request-id": "req-42", **auth(alice)}
        )
    assert read_grpc_web(response).code == 0
    rpc_lines = [e for e in logs if e["event"] == "rpc" and e.get("request_id") == "req-42"]
    assert len(rpc_lines) == 1
    assert rpc_lines[0]["rpc"] == "GetAccount"
    assert rpc_lines[0]["transport"] == "grpc-web"
    assert rpc_lines[0]["user"] == alice.id


@pytest.mark.parametrize(
    ("value", "code"),
    [
        pytest.param("AAEC", 0, id="unpadded"),
        pytest.param("AAE=", 0, id="padded"),
        pytest.param("", 0, id="empty"),
        pytest.param("!!!!", 3, id="not-base64"),
        pytest.param("A", 3, id="one-char"),
        pytest.param("AA-_", 3, id="base64url"),
    ],
)
async def test_bin_metadata_must_be_base64(
    web: httpx.AsyncClient, alice: User, value: str, code: int
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"x-trace-bin": value, **auth(alice)}
    )
    reply = read_grpc_web(response)
    assert reply.code == code
    if code:
        assert reply.trailers_only
        assert "x-trace-bin" in reply.message


def slow_core(monkeypatch: pytest.MonkeyPatch, app: App, delay: float) -> None:
    original = app.service.get_account

    async def slow(user_id: str) -> Account:
        await asyncio.sleep(delay)
        return await original(user_id)

    patch_core(monkeypatch, app, "get_account", slow)


@pytest.mark.parametrize(
    ("grpc_timeout", "delay", "code"),
    [
        ("1H", 0.2, 0),
        ("1M", 0.2, 0),
        ("1S", 0.2, 0),
        ("500m", 0.2, 0),
        ("500000u", 0.2, 0),
        # At most 8 digits: 500000000n (9 digits) is malformed, so nanoseconds top out at 0.1 s.
        ("99999999n", 0.02, 0),
        ("99999999S", 0.2, 0),
        ("50m", 1.0, 4),
        ("50000u", 1.0, 4),
        ("50000000n", 1.0, 4),
        ("1n", 1.0, 4),
        ("0S", 1.0, 4),
    ],
)
async def test_grpc_timeout_is_the_deadline(
    web: httpx.AsyncClient,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
    grpc_timeout: str,
    delay: float,
    code: int,
) -> None:
    slow_core(monkeypatch, app, delay)
    started = time.perf_counter()
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-timeout": grpc_timeout, **auth(alice)}
    )
    elapsed = time.perf_counter() - started
    reply = read_grpc_web(response)
    assert reply.code == code, reply.trailers
    if code == 4:
        assert reply.trailers_only
        assert elapsed < 0.8, "the deadline did not cut the call short"
    else:
        assert elapsed >= delay


@pytest.mark.parametrize(
    "grpc_timeout",
    ["1x", "123456789S", "500000000n", "", "S", "-1S", "1.5S", "1 S", "1s", "0x10S", "1S1S"],
)
async def test_malformed_grpc_timeout_is_invalid_argument(
    web: httpx.AsyncClient, alice: User, grpc_timeout: str
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-timeout": grpc_timeout, **auth(alice)}
    )
    reply = trailers_only_status(response)
    assert reply.code == 3
    assert "grpc-timeout" in reply.message


async def test_connect_timeout_ms_is_the_deadline(
    web: httpx.AsyncClient, app: App, monkeypatch: pytest.MonkeyPatch, alice: User
) -> None:
    slow_core(monkeypatch, app, 1.0)
    headers = {"content-type": "application/json", **auth(alice)}
    response = await web.post(
        f"/{SERVICE}/GetAccount", content=b"{}", headers={"connect-timeout-ms": "50", **headers}
    )
    assert (response.status_code, response.json()["code"]) == (504, "deadline_exceeded")
    response = await web.post(
        f"/{SERVICE}/GetAccount", content=b"{}", headers={"connect-timeout-ms": "5s", **headers}
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_argument")


# 7. CORS ------------------------------------------------------------------------------------

REQUESTED_HEADERS = (
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def header_list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


async def test_preflight_from_allowed_origin(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={
            "host": GATEWAY_HOST,
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": ",".join(REQUESTED_HEADERS),
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    cors = cors_headers(response)
    assert set(cors) == {
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    }
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN  # the Origin, not the Host
    assert cors["access-control-allow-methods"] == "POST, OPTIONS"
    assert header_list(cors["access-control-allow-headers"]) >= set(REQUESTED_HEADERS)
    assert int(cors["access-control-max-age"]) > 0
    assert "origin" in header_list(response.headers["vary"])
    assert all("*" not in header_list(v) for v in cors.values())
    assert "photos.internal" not in str(response.headers)


@pytest.mark.parametrize(
    "origin",
    [OTHER_ORIGIN, "null", "http://allowed.test.evil.test", "https://allowed.test", "HOST"],
)
async def test_disallowed_origin_gets_no_cors_headers(
    web: httpx.AsyncClient, gateway_url: str, alice: User, origin: str
) -> None:
    # The gateway's own address (its Host) is not an allowed origin either.
    origin = gateway_url if origin == "HOST" else origin
    preflight = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={"origin": origin, "access-control-request-method": "POST"},
    )
    assert preflight.status_code != 204
    assert cors_headers(preflight) == {}
    actual = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"origin": origin, **auth(alice)}
    )
    assert read_grpc_web(actual).code == 0  # served, but a browser will not let the page read it
    assert cors_headers(actual) == {}


@pytest.mark.parametrize(
    ("case", "status"),
    [("ok", 200), ("grpc-error", 200), ("connect-error", 404), ("415", 415), ("405", 405)],
)
async def test_actual_responses_from_allowed_origin_expose_grpc_headers(
    web: httpx.AsyncClient, alice: User, case: str, status: int
) -> None:
    headers = {"origin": ALLOWED_ORIGIN, "host": GATEWAY_HOST, **auth(alice)}
    path = f"/{SERVICE}/GetAccount"
    match case:
        case "ok":
            response = await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=headers)
        case "grpc-error":
            response = await grpc_web_post(web, "Nope", GET_ACCOUNT_FRAME, headers=headers)
        case "connect-error":
            response = await web.post(
                f"/{SERVICE}/GetPhoto",
                content=json.dumps({"id": str(uuid.uuid4())}),
                headers={"content-type": "application/json", **headers},
            )
        case "415":
            response = await web.post(
                path, content=b"x", headers={"content-type": "text/plain", **headers}
            )
        case _:
            response = await web.get(path, headers=headers)
    assert response.status_code == status
    cors = cors_headers(response)
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert header_list(cors["access-control-expose-headers"]) >= {
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
    }
    assert "origin" in header_list(response.headers["vary"])
    assert all("*" not in header_list(v) for v in cors.values())
    assert "photos.internal" not in str(response.headers)


# 8. Connect unary ---------------------------------------------------------------------------


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


# 9. Parity with native gRPC -----------------------------------------------------------------


def without(message: Message, *fields: str) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    for name in fields:
        copy.ClearField(name)
    return copy


async def test_every_rpc_matches_native_grpc(
    caller: Caller, native: Caller, http: httpx.AsyncClient, alice: User
) -> None:
    """The whole life of a photo through one web protocol; after each step the same call
    natively must answer the same message (read calls on the same photo: message-for-message)."""
    data = jpeg(rgb=(10, 200, 10))

    async def both(rpc: str, request: Message) -> tuple[Message, Message]:
        web_outcome = await caller(rpc, request, alice)
        native_outcome = await native(rpc, request, alice)
        assert web_outcome.reply is not None, (rpc, web_outcome)
        assert native_outcome.reply is not None, (rpc, native_outcome)
        return web_outcome.reply, native_outcome.reply

    # CreateUploadUrl: a new upload each time, so ids, URLs and expiry differ; the rest not.
    create = pb.CreateUploadUrlRequest(
        file_name="web.jpg", content_type="image/jpeg", size_bytes=len(data)
    )
    ticket, native_ticket = await both("CreateUploadUrl", create)
    assert isinstance(ticket, pb.CreateUploadUrlResponse)
    assert isinstance(native_ticket, pb.CreateUploadUrlResponse)
    assert ticket.upload_id != native_ticket.upload_id
    fields = ("upload_id", "upload_url", "expire_time")
    assert without(ticket, *fields) == without(native_ticket, *fields)
    assert ticket.method == "PUT"
    assert dict(ticket.required_headers)
    assert urlsplit(ticket.upload_url).path.replace(ticket.upload_id, "ID") == urlsplit(
        native_ticket.upload_url
    ).path.replace(native_ticket.upload_id, "ID")
    assert abs(ticket.expire_time.seconds - native_ticket.expire_time.seconds) <= 2
    assert (await put_bytes(http, ticket, data)).status_code == 200

    # ConfirmUpload is idempotent: confirming again natively answers the same photo.
    confirm = pb.ConfirmUploadRequest(
        upload_id=ticket.upload_id, title="Été à Paris", tags=["web", "Paris"], description="✓"
    )
    confirmed, native_confirmed = await both("ConfirmUpload", confirm)
    assert confirmed == native_confirmed
    assert isinstance(confirmed, pb.ConfirmUploadResponse)
    photo = confirmed.photo
    assert (photo.id, photo.title, list(photo.tags)) == (
        ticket.upload_id,
        "Été à Paris",
        ["web", "paris"],
    )
    assert (await http.get(photo.url)).content == data

    got, native_got = await both("GetPhoto", pb.GetPhotoRequest(id=photo.id))
    assert got == native_got == pb.GetPhotoResponse(photo=photo)

    listed, native_listed = await both("ListPhotos", pb.ListPhotosRequest(tags=["web"]))
    assert listed == native_listed == pb.ListPhotosResponse(photos=[photo])

    batch = pb.BatchGetPhotoUrlsRequest(photo_ids=[photo.id, photo.id])
    urls, native_urls = await both("BatchGetPhotoUrls", batch)
    assert urls == native_urls
    assert isinstance(urls, pb.BatchGetPhotoUrlsResponse)
    assert [u.photo_id for u in urls.urls] == [photo.id, photo.id]

    update = pb.UpdatePhotoRequest(
        photo=photo_pb2.Photo(id=photo.id, title="Renamed ✓"),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
    )
    updated = (await caller("UpdatePhoto", update, alice)).reply
    assert isinstance(updated, pb.UpdatePhotoResponse)
    assert updated.photo.title == "Renamed ✓"
    after = (await native("GetPhoto", pb.GetPhotoRequest(id=photo.id), alice)).reply
    assert updated == pb.UpdatePhotoResponse(photo=cast(pb.GetPhotoResponse, after).photo)
    # The same update natively answers the same photo (a later update_time: every update
    # touches it).
    _, native_updated = await both("UpdatePhoto", update)
    assert isinstance(native_updated, pb.UpdatePhotoResponse)
    assert without(native_updated.photo, "update_time") == without(updated.photo, "update_time")
    assert (
        native_updated.photo.update_time.ToNanoseconds() > updated.photo.update_time.ToNanoseconds()
    )

    account, native_account = await both("GetAccount", pb.GetAccountRequest())
    assert account == native_account
    assert isinstance(account, pb.GetAccountResponse)
    assert (account.account.user_id, account.account.photo_count) == (alice.id, 1)

    deleted = await caller("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    assert deleted.reply == pb.DeletePhotoResponse()
    gone = await native("GetPhoto", pb.GetPhotoRequest(id=photo.id), alice)
    assert gone.code == grpc.StatusCode.NOT_FOUND.value[0]
    again = await caller("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    native_again = await native("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    assert (again.code, again.message, again.status) == (
        native_again.code,
        native_again.message,
        native_again.status,
    )


ERROR_CASES = [
    pytest.param("GetPhoto", pb.GetPhotoRequest(id="not-a-uuid"), True, 3, id="bad-id"),
    pytest.param("GetPhoto", pb.GetPhotoRequest(id=str(uuid.uuid4())), True, 5, id="unknown-id"),
    pytest.param("GetAccount", pb.GetAccountRequest(), False, 16, id="no-token"),
    pytest.param(
        "CreateUploadUrl",
        pb.CreateUploadUrlRequest(file_name="", content_type="image/svg+xml", size_bytes=-1),
        True,
        3,
        id="bad-fields",
    ),
    pytest.param("ListPhotos", pb.ListPhotosRequest(tags=["é" * 51]), True, 3, id="bad-tag"),
    pytest.param(
        "UpdatePhoto",
        pb.UpdatePhotoRequest(photo=photo_pb2.Photo(id=str(uuid.uuid4()))),
        True,
        3,
        id="bad-mask",
    ),
]


@pytest.mark.parametrize(("rpc", "request_message", "with_token", "code"), ERROR_CASES)
async def test_errors_match_native_grpc(
    caller: Caller,
    native: Caller,
    alice: User,
    rpc: str,
    request_message: Message,
    with_token: bool,
    code: int,
) -> None:
    user = alice if with_token else None
    web_outcome = await caller(rpc, request_message, user)
    native_outcome = await native(rpc, request_message, user)
    assert web_outcome.reply is None
    assert native_outcome.reply is None
    assert web_outcome.code == native_outcome.code == code
    assert web_outcome.message == native_outcome.message
    assert native_outcome.status is not None
    assert web_outcome.status == native_outcome.status


async def test_non_ascii_error_message_matches_native_grpc(
    caller: Caller,
    native: Caller,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
) -> None:
    async def refuse(user_id: str) -> Account:
        raise InvalidArgument.field("title", "«été» 100% ✓")

    patch_core(monkeypatch, app, "get_account", refuse)
    web_outcome = await caller("GetAccount", pb.GetAccountRequest(), alice)
    native_outcome = await native("GetAccount", pb.GetAccountRequest(), alice)
    assert web_outcome.message == native_outcome.message == "title: «été» 100% ✓"
    assert web_outcome.status == native_outcome.status


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


async def test_request_id_is_echoed_or_made(web: httpx.AsyncClient, alice: User) -> None:
    given = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", "x-request-id": "trace-42", **auth(alice)},
    )
    assert given.headers["x-request-id"] == "trace-42"
    made = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", **auth(alice)},
    )
    assert len(made.headers["x-request-id"]) == 32


async def test_preflight_allows_requested_custom_metadata_headers(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-trace-bin, x-tenant, cookie",
        },
    )
    allowed = header_list(response.headers["access-control-allow-headers"])
    assert {"x-trace-bin", "x-tenant", "content-type"} <= allowed
    assert "cookie" not in allowed
