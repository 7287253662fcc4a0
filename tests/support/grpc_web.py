"""gRPC-web on the wire, written from the spec (not imported from the gateway): frames, the
trailer block, base64 text bodies, and a POST to the gateway taken apart."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import unquote

import httpx
from google.protobuf.message import Message
from google.rpc import status_pb2

from photovault.v1 import photo_service_pb2 as pb

from .users import User

DATA = Path(__file__).resolve().parents[1] / "data" / "grpc_web"
SERVICE = "photovault.v1.PhotoService"
# The one origin the test gateway's CORS policy allows (the `gateway_port` fixture).
ALLOWED_ORIGIN = "http://allowed.test"
BINARY_REPLY = "application/grpc-web+proto"
TEXT_REPLY = "application/grpc-web-text+proto"
GET_ACCOUNT_FRAME = (DATA / "get_account_request.bin").read_bytes()

SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["PhotoService"]
OTHER_ORIGIN = "http://evil.test"
# A Host unlike any origin, sent explicitly: an implementation that echoes the Host is caught.
GATEWAY_HOST = "photos.internal:8080"
FOUR_MIB = 4 * 1024 * 1024

BINARY_TYPES = ("application/grpc-web", "application/grpc-web+proto")
TEXT_TYPES = ("application/grpc-web-text", "application/grpc-web-text+proto")

OK_TRAILER_FRAME = (DATA / "ok_trailer_frame.bin").read_bytes()
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


def response_type(rpc: str) -> type[Message]:
    name = SERVICE_DESCRIPTOR.methods_by_name[rpc].output_type.name
    return cast(type[Message], getattr(pb, name))


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
