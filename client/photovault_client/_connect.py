"""The Connect protocol, unary, over HTTP/1.1 or HTTP/2 with httpx: a POST of the binary
protobuf (`application/proto`) to `<base URL>/photovault.v1.PhotoService/<Rpc>`; errors come back
as JSON {"code", "message", "details": [{"type", "value"}]} (connectrpc.com/docs/protocol).
This reaches the web gateway of `photovault serve` and the Lambda Function URL."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import httpx
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from ._errors import Code, PhotoVaultError, error_from_code, error_from_status
from ._rpcs import Req, Resp, Rpc

CONTENT_TYPE = "application/proto"
TYPE_URL_PREFIX = "type.googleapis.com/"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# httpx's own timeout trails the deadline sent to the server, so the server's DEADLINE_EXCEEDED
# (with its status) normally wins the race.
CLIENT_TIMEOUT_GRACE = 0.5

# Connect's HTTP status -> code, for error responses without a Connect JSON body (a proxy's).
HTTP_CODES: dict[int, Code] = {
    400: Code.INTERNAL,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.UNIMPLEMENTED,
    429: Code.UNAVAILABLE,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}


class ConnectTransport:
    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        """`http` (optional) is a caller's client (TLS settings, proxies); it is not closed."""
        self._base_url = base_url.rstrip("/")
        self._given_http = http
        self._http: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._http is None:
            self._http = self._given_http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None and http is not self._given_http:
            await http.aclose()

    async def unary(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        *,
        metadata: Mapping[str, str],
        time_left: float | None,
    ) -> Resp:
        if self._http is None:
            raise RuntimeError("the transport is closed: use `async with PhotoVaultClient...`")
        headers = {
            **metadata,
            "content-type": CONTENT_TYPE,
            "connect-protocol-version": "1",
        }
        http_timeout: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
        if time_left is not None:
            headers["connect-timeout-ms"] = str(max(1, int(time_left * 1000)))
            http_timeout = httpx.Timeout(time_left + CLIENT_TIMEOUT_GRACE)
        try:
            response = await self._http.post(
                self._base_url + rpc.path,
                content=request.SerializeToString(),
                headers=headers,
                timeout=http_timeout,
            )
        except httpx.TimeoutException as exc:
            raise error_from_code(
                Code.DEADLINE_EXCEEDED, f"no answer in time: {type(exc).__name__}"
            ) from None
        except httpx.TransportError as exc:
            raise error_from_code(
                Code.UNAVAILABLE, f"cannot reach {self._base_url}: {exc or type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise response_error(response.status_code, response.headers, response.content)
        try:
            return rpc.response_type.FromString(response.content)
        except DecodeError:
            raise error_from_code(
                Code.INTERNAL, f"{rpc.name} answered with a malformed {rpc.response_type.__name__}"
            ) from None


def response_error(http_status: int, headers: Mapping[str, str], body: bytes) -> PhotoVaultError:
    """The typed error of a Connect error response: the JSON error body when there is one,
    else the code Connect derives from the HTTP status."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        status = parse_error_body(body)
        if status is not None:
            return error_from_status(status)
    code = HTTP_CODES.get(http_status, Code.UNKNOWN)
    return error_from_code(code, f"HTTP {http_status} from the server")


def parse_error_body(body: bytes) -> status_pb2.Status | None:
    """google.rpc.Status from a Connect JSON error; None when the body is not one."""
    try:
        error = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None
    status = status_pb2.Status(
        code=connect_code(error["code"]), message=str(error.get("message", ""))
    )
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        type_name, value = detail.get("type"), detail.get("value")
        if not isinstance(type_name, str) or not isinstance(value, str):
            continue
        try:
            raw = base64.b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            continue
        status.details.add(type_url=TYPE_URL_PREFIX + type_name, value=raw)
    return status


def connect_code(name: str) -> Code:
    """Connect's code names are lower-case gRPC names, "canceled" spelt the American way."""
    upper = name.upper()
    if upper == "CANCELED":
        return Code.CANCELLED
    return Code.__members__.get(upper, Code.UNKNOWN)
