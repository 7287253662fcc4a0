"""The Connect protocol, unary calls (connectrpc.com/docs/protocol): a plain POST whose body is
the message as JSON or binary protobuf; errors as JSON with Connect's code names. `PROTOCOL` is
this module's implementation of the gateway's WebProtocol (protocol.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from photovault_server.transport.calls import CallFailed, Transport
from photovault_server.transport.status import protocol_status

from .http import Envelope, HttpRequest, HttpResponse

JSON_TYPES = frozenset({"application/json"})
PROTO_TYPES = frozenset({"application/proto"})
CONTENT_TYPES = JSON_TYPES | PROTO_TYPES

# gRPC code -> (Connect code name, HTTP status): the table of the Connect protocol.
CODES: dict[int, tuple[str, int]] = {
    code_pb2.CANCELLED: ("canceled", 499),
    code_pb2.UNKNOWN: ("unknown", 500),
    code_pb2.INVALID_ARGUMENT: ("invalid_argument", 400),
    code_pb2.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    code_pb2.NOT_FOUND: ("not_found", 404),
    code_pb2.ALREADY_EXISTS: ("already_exists", 409),
    code_pb2.PERMISSION_DENIED: ("permission_denied", 403),
    code_pb2.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    code_pb2.FAILED_PRECONDITION: ("failed_precondition", 400),
    code_pb2.ABORTED: ("aborted", 409),
    code_pb2.OUT_OF_RANGE: ("out_of_range", 400),
    code_pb2.UNIMPLEMENTED: ("unimplemented", 501),
    code_pb2.INTERNAL: ("internal", 500),
    code_pb2.UNAVAILABLE: ("unavailable", 503),
    code_pb2.DATA_LOSS: ("data_loss", 500),
    code_pb2.UNAUTHENTICATED: ("unauthenticated", 401),
}


class ConnectDecodeError(ValueError):
    pass


def decode(body: bytes, content_type: str, message_type: type[Message]) -> Message:
    message = message_type()
    try:
        if content_type in JSON_TYPES:
            # An empty body is the empty message (curl -d '' or no body at all).
            # Unknown fields are ignored, as in binary protobuf: newer clients, older server.
            json_format.Parse(body.decode("utf-8") or "{}", message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConnectDecodeError(f"request body is not a valid {message_type.__name__}") from exc
    return message


def encode(message: Message, content_type: str) -> bytes:
    if content_type in JSON_TYPES:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def error_body(status: status_pb2.Status) -> tuple[int, bytes]:
    """HTTP status and JSON body of a Connect error, details carried as type + base64 value."""
    name, http_status = CODES.get(status.code, ("unknown", 500))
    body: dict[str, Any] = {"code": name, "message": status.message}
    if status.details:
        body["details"] = [
            {
                "type": detail.type_url.rsplit("/", 1)[-1],
                "value": base64.b64encode(detail.value).decode().rstrip("="),
            }
            for detail in status.details
        ]
    return http_status, json.dumps(body, separators=(",", ":")).encode()


def parse_timeout_ms(value: str) -> float:
    """connect-timeout-ms: a positive integer of at most 10 digits, in seconds."""
    text = value.strip()
    if not text.isdigit() or len(text) > 10:
        raise ValueError(f"malformed connect-timeout-ms {value!r}")
    return int(text) / 1000


def _refused(code: int, message: str) -> CallFailed:
    return CallFailed(protocol_status(code, message, "MALFORMED_REQUEST"))


class ConnectProtocol:
    name: Transport = "connect"

    def envelope(self, request: HttpRequest, max_message_bytes: int) -> Envelope:
        version = request.headers.get("connect-protocol-version")
        if version is not None and version != "1":
            raise _refused(code_pb2.INVALID_ARGUMENT, "connect-protocol-version must be 1")
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise _refused(
                code_pb2.UNIMPLEMENTED, f"content-encoding {encoding[:40]} not supported"
            )
        timeout = None
        if "connect-timeout-ms" in request.headers:
            try:
                timeout = parse_timeout_ms(request.headers["connect-timeout-ms"])
            except ValueError as exc:
                raise _refused(code_pb2.INVALID_ARGUMENT, str(exc)[:200]) from None
        if len(request.body) > max_message_bytes:
            raise _refused(
                code_pb2.RESOURCE_EXHAUSTED, "request body exceeds the message size limit"
            )
        return Envelope(request.body, timeout)

    def decode(
        self,
        request: HttpRequest,
        body: bytes,
        message_type: type[Message],
        max_message_bytes: int,
    ) -> Message:
        try:
            return decode(body, request.content_type, message_type)
        except ConnectDecodeError as exc:
            raise _refused(code_pb2.INVALID_ARGUMENT, str(exc)) from None

    def encode_reply(self, request: HttpRequest, reply: Message) -> HttpResponse:
        content_type = request.content_type
        return HttpResponse(200, [("content-type", content_type)], encode(reply, content_type))

    def encode_error(self, request: HttpRequest, status: status_pb2.Status) -> HttpResponse:
        http_status, body = error_body(status)
        return HttpResponse(http_status, [("content-type", "application/json")], body)


PROTOCOL = ConnectProtocol()
