"""The Connect protocol, unary calls (connectrpc.com/docs/protocol): a plain POST whose body is
the message as JSON or binary protobuf; errors as JSON with Connect's code names."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

JSON_TYPES = frozenset({"application/json"})
PROTO_TYPES = frozenset({"application/proto"})
CONTENT_TYPES = JSON_TYPES | PROTO_TYPES

# gRPC code number -> (Connect code name, HTTP status): the table of the Connect protocol.
CODES: dict[int, tuple[str, int]] = {
    1: ("canceled", 499),
    2: ("unknown", 500),
    3: ("invalid_argument", 400),
    4: ("deadline_exceeded", 504),
    5: ("not_found", 404),
    6: ("already_exists", 409),
    7: ("permission_denied", 403),
    8: ("resource_exhausted", 429),
    9: ("failed_precondition", 400),
    10: ("aborted", 409),
    11: ("out_of_range", 400),
    12: ("unimplemented", 501),
    13: ("internal", 500),
    14: ("unavailable", 503),
    15: ("data_loss", 500),
    16: ("unauthenticated", 401),
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
