"""gRPC-web (grpc/grpc doc/PROTOCOL-WEB.md), unary calls: length-prefixed frames, a trailer
frame, and the base64 "text" variant. The wire functions are pure, over bytes; `PROTOCOL` is
this module's implementation of the gateway's WebProtocol (protocol.py)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from photovault_server.transport.calls import CallFailed, Transport
from photovault_server.transport.status import protocol_status

from .http import Envelope, HttpError, HttpRequest, HttpResponse

BINARY_TYPES = frozenset({"application/grpc-web", "application/grpc-web+proto"})
TEXT_TYPES = frozenset({"application/grpc-web-text", "application/grpc-web-text+proto"})
CONTENT_TYPES = BINARY_TYPES | TEXT_TYPES
BINARY_REPLY_TYPE = "application/grpc-web+proto"
TEXT_REPLY_TYPE = "application/grpc-web-text+proto"

DATA_FLAG = 0x00
TRAILER_FLAG = 0x80
COMPRESSED_FLAG = 0x01
_HEADER = 5

_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/=]*")


class FrameError(ValueError):
    """The request body is not a well-formed gRPC-web message; `grpc_code` says how to answer."""

    def __init__(self, message: str, grpc_code: int) -> None:
        super().__init__(message)
        self.grpc_code = grpc_code


class Base64Error(ValueError):
    """grpc-web-text body that is not base64 (answered with HTTP 400)."""


def decode_text(body: bytes) -> bytes:
    """Decodes a grpc-web-text body: base64 in 4-character blocks, where a client may send
    several padded segments one after another (each chunk of a stream encoded on its own)."""
    if len(body) % 4:
        raise Base64Error("grpc-web-text body length is not a multiple of 4")
    if not _BASE64_CHARS.fullmatch(body):
        raise Base64Error("grpc-web-text body is not base64")
    for block in range(0, len(body), 4):
        # '=' may only end a block ("xx==" or "xxx="): "====" or "x===" is base64 nowhere,
        # though Python's decoder would quietly drop such padding after a segment.
        if body[block + 1 : block + 2] == b"=" or (
            body[block + 2 : block + 3] == b"=" and body[block + 3 : block + 4] != b"="
        ):
            raise Base64Error("grpc-web-text body is not base64")
    try:
        if b"=" not in body[:-2]:
            return base64.b64decode(body, validate=True)
        # Padding inside: decode segment by segment (each ends at a padded block).
        out = bytearray()
        start = 0
        for block in range(0, len(body), 4):
            if body[block + 3 : block + 4] == b"=":
                out += base64.b64decode(body[start : block + 4], validate=True)
                start = block + 4
        out += base64.b64decode(body[start:], validate=True)
        return bytes(out)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error("grpc-web-text body is not base64") from exc


def read_message(data: bytes, *, max_message_bytes: int) -> bytes:
    """The one message of a unary request: a single uncompressed data frame. Whatever follows
    it is refused at its header, so a body of a million frames costs no more than one."""
    if len(data) < _HEADER:
        raise FrameError(
            "truncated frame header" if data else "a unary call carries one message, got 0",
            grpc_code=3,
        )
    flags = data[0]
    length = int.from_bytes(data[1:_HEADER], "big")
    if length > max_message_bytes:
        raise FrameError(
            f"message of {length} bytes exceeds the limit of {max_message_bytes}",
            grpc_code=8,  # RESOURCE_EXHAUSTED, as gRPC answers an over-long message
        )
    end = _HEADER + length
    if end > len(data):
        raise FrameError("frame shorter than its length prefix", grpc_code=3)
    if flags & TRAILER_FLAG:
        raise FrameError("unexpected trailer frame in a request", grpc_code=3)
    if flags & COMPRESSED_FLAG:
        raise FrameError("compressed messages are not supported", grpc_code=12)
    if flags:
        raise FrameError(f"unknown frame flags 0x{flags:02x}", grpc_code=3)
    if end < len(data):
        raise FrameError("a unary call carries one message, got more", grpc_code=3)
    return data[_HEADER:end]


def frame(payload: bytes, flags: int = DATA_FLAG) -> bytes:
    return bytes([flags]) + len(payload).to_bytes(4, "big") + payload


def trailer_frame(trailers: Iterable[tuple[str, str]]) -> bytes:
    """Lower-case `key: value` lines, each ending in CRLF, in a frame flagged 0x80."""
    block = "".join(f"{k.lower()}: {v}\r\n" for k, v in trailers)
    return frame(block.encode("ascii"), TRAILER_FLAG)


def base64_body(data: bytes) -> bytes:
    """A grpc-web-text response body."""
    return base64.b64encode(data)


def encode_grpc_message(message: str) -> str:
    """grpc-message is percent-encoded UTF-8: everything outside 0x20-0x7E, and '%' itself."""
    out = []
    for byte in message.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def parse_timeout(value: str) -> float:
    """grpc-timeout (e.g. "500m", "2S") in seconds; ValueError when malformed."""
    match = _TIMEOUT.fullmatch(value.strip())
    if not match:
        raise ValueError(f"malformed grpc-timeout {value!r}")
    return int(match[1]) * _TIMEOUT_UNITS[match[2]]


def b64_header(value: bytes) -> str:
    """-bin metadata: base64 without padding, as gRPC sends it."""
    return base64.b64encode(value).decode().rstrip("=")


def decode_bin_header(value: str) -> bytes:
    """-bin metadata from a client: padded or not."""
    return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)


def _malformed(message: str, code: int = code_pb2.INVALID_ARGUMENT) -> CallFailed:
    return CallFailed(protocol_status(code, message, "MALFORMED_REQUEST"))


class GrpcWebProtocol:
    name: Transport = "grpc-web"

    def envelope(self, request: HttpRequest, max_message_bytes: int) -> Envelope:
        # Headers only: the body (base64 included) is decoded once the caller is known.
        timeout = None
        if "grpc-timeout" in request.headers:
            try:
                timeout = parse_timeout(request.headers["grpc-timeout"])
            except ValueError as exc:
                raise _malformed(str(exc)[:200]) from None
        for name, value in request.headers.items():
            if name.endswith("-bin"):
                try:
                    decode_bin_header(value)
                except ValueError:
                    raise _malformed(f"{name} is not base64") from None
        return Envelope(request.body, timeout)

    def decode(
        self,
        request: HttpRequest,
        body: bytes,
        message_type: type[Message],
        max_message_bytes: int,
    ) -> Message:
        if request.content_type in TEXT_TYPES:
            try:
                body = decode_text(body)
            except Base64Error as exc:
                raise HttpError(400, str(exc)) from None
        try:
            return message_type.FromString(read_message(body, max_message_bytes=max_message_bytes))
        except FrameError as exc:
            raise _malformed(str(exc), exc.grpc_code) from None
        except (DecodeError, RecursionError):
            raise _malformed(f"request is not a valid {message_type.__name__}") from None

    def encode_reply(self, request: HttpRequest, reply: Message) -> HttpResponse:
        frames = frame(reply.SerializeToString()) + trailer_frame(
            [("grpc-status", "0"), ("grpc-message", "")]
        )
        text = request.content_type in TEXT_TYPES
        return HttpResponse(
            200,
            [("content-type", TEXT_REPLY_TYPE if text else BINARY_REPLY_TYPE)],
            base64_body(frames) if text else frames,
        )

    def encode_error(self, request: HttpRequest, status: status_pb2.Status) -> HttpResponse:
        """Trailers-only: the status in the headers and an empty body."""
        text = request.content_type in TEXT_TYPES
        return HttpResponse(
            200,
            [
                ("content-type", TEXT_REPLY_TYPE if text else BINARY_REPLY_TYPE),
                ("grpc-status", str(status.code)),
                ("grpc-message", encode_grpc_message(status.message)),
                ("grpc-status-details-bin", b64_header(status.SerializeToString())),
            ],
        )


PROTOCOL = GrpcWebProtocol()
