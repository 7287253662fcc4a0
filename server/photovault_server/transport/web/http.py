"""The gateway's view of HTTP: one request in, one response out, whatever carried them (uvicorn's
ASGI server in `photovault serve`, a Lambda event)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from msgspec import Struct, field


class HttpRequest(Struct, frozen=True):
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type alone, lower case (parameters such as charset dropped)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class HttpResponse(Struct):
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class HttpHandler(Protocol):
    """What the ASGI app and the Lambda handler serve: the gateway, and wrappers around it."""

    async def handle(
        self,
        request: HttpRequest,
        *,
        deadline_cap: float | None = None,
        verified_claims: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """`deadline_cap` bounds every call's deadline (Lambda's remaining time);
        `verified_claims` are an upstream JWT authorizer's, trusted instead of the token."""
        ...

    def refuse(self, request: HttpRequest, refusal: Refusal) -> HttpResponse:
        """A request the server will not read in full (its body too large or too slow),
        answered from its headers alone, in the caller's protocol."""
        ...


class HttpError(Exception):
    """A request refused below the RPC layer with a plain HTTP answer (a grpc-web-text body
    that is not base64): the caller's protocol could not even be spoken back."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.response = HttpResponse(status, [("content-type", "text/plain")], f"{text}\n".encode())


class Envelope(Struct, frozen=True):
    """What a protocol reads from a request before the call runs: the body its messages are
    framed in (still undecoded) and the caller's deadline."""

    body: bytes
    timeout: float | None


class Refusal(Struct, frozen=True):
    grpc_code: int
    message: str
    reason: str
    # For callers that speak neither gRPC-web nor Connect:
    http_status: int
    text: str
