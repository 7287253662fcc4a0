"""The web gateway for browsers: gRPC-web (binary and text) and Connect unary over HTTP, as one
HttpHandler that the ASGI server of `photovault serve` and the Lambda handler both serve.

It is assembled from parts with one job each: CORS (cors.py) around the router (router.py),
which negotiates the protocol (protocol.py: grpc_web.py, connect.py) and runs the call through
the pipeline shared with native gRPC (transport/calls.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.rpc import code_pb2

from photovault_server.auth import TokenVerifier
from photovault_server.core import PhotoService
from photovault_server.tracing import NO_TRACING, Tracing
from photovault_server.transport.admission import NO_ADMISSION, Admission
from photovault_server.transport.calls import CallPipeline
from photovault_server.transport.handlers import (
    DEFAULT_MAX_REPLY_BYTES,
    PhotoHandlers,
    method_table,
)
from photovault_server.transport.rpc_stats import RpcStats

from .cors import CorsHandler, CorsPolicy
from .http import HttpRequest, HttpResponse, Refusal
from .router import Router

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

BODY_TOO_LARGE = Refusal(
    grpc_code=code_pb2.RESOURCE_EXHAUSTED,
    message="request body exceeds the message size limit",
    reason="MESSAGE_TOO_LARGE",
    http_status=413,
    text="body too large",
)
BODY_TOO_SLOW = Refusal(
    grpc_code=code_pb2.DEADLINE_EXCEEDED,
    message="request body not received in time",
    reason="REQUEST_TOO_SLOW",
    http_status=408,
    text="request body not received in time",
)


class WebGateway:
    def __init__(
        self,
        service: PhotoService,
        verifier: TokenVerifier,
        *,
        cors: CorsPolicy,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        stats: RpcStats | None = None,
        tracing: Tracing = NO_TRACING,
        admission: Admission = NO_ADMISSION,
    ) -> None:
        router = Router(
            method_table(PhotoHandlers(service, max_reply_bytes=max_reply_bytes)),
            CallPipeline(verifier, stats, tracing, admission),
            max_message_bytes=max_message_bytes,
        )
        self._handler = CorsHandler(router, cors)
        self._closing = False
        self._ready = True

    async def handle(
        self,
        request: HttpRequest,
        *,
        deadline_cap: float | None = None,
        verified_claims: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """`deadline_cap` bounds every call's deadline (Lambda's remaining time);
        `verified_claims` are an upstream JWT authorizer's, trusted instead of the token."""
        return await self._handler.handle(
            request, deadline_cap=deadline_cap, verified_claims=verified_claims
        )

    def refuse(self, request: HttpRequest, refusal: Refusal) -> HttpResponse:
        """A body over the transport's cap or too slow to arrive (read no further): answered
        in the caller's protocol, with CORS, so a browser sees the status, not a network error."""
        return self._handler.refuse(request, refusal)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def ready(self) -> bool:
        """Whether /healthz says SERVING: the database answers with its schema current
        (readiness.py; `photovault serve` keeps it up to date) and no shutdown has begun."""
        return self._ready and not self._closing

    async def set_ready(self, ready: bool) -> None:
        self._ready = ready

    def begin_closing(self) -> None:
        """Shutdown has begun: calls are still served, but each response closes its connection
        (`Connection: close`), so that no keep-alive client is left sending a request on a
        connection at the moment the server drops it; the next call reconnects and, once the
        listener is closed, is refused cleanly (or reaches another instance)."""
        self._closing = True
