"""Routes one HTTP request to the right protocol (by content type) and the right RPC (by path),
authenticates it, applies its deadline, and answers in that protocol's framing.

Handlers never learn which protocol carried the call; errors go through the same status table
as native gRPC (transport/status.py), so every transport answers with the same codes and the
same google.rpc.Status details.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

from photovault_server.auth import TokenVerifier, user_id_from_claims
from photovault_server.core import PhotoService, PhotoVaultError
from photovault_server.core.errors import DeadlineExceeded
from photovault_server.transport.handlers import Method, PhotoHandlers, method_table
from photovault_server.transport.status import internal_status, protocol_status, to_status

from . import connect, grpc_web
from .cors import ALLOWED_METHODS, CorsPolicy

log = structlog.get_logger("photovault.web")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _status(code: int, message: str, reason: str = "MALFORMED_REQUEST") -> status_pb2.Status:
    return protocol_status(code, message, reason)


def _deadline(headers: Mapping[str, str], name: str, parse: Callable[[str], float]) -> float | None:
    """The call's deadline in seconds from its protocol's header; a malformed one fails it."""
    if name not in headers:
        return None
    try:
        return parse(headers[name])
    except ValueError as exc:
        raise _CallFailed(_status(3, str(exc)[:200])) from None


class _CallFailed(Exception):
    def __init__(self, status: status_pb2.Status) -> None:
        self.status = status


class WebGateway:
    def __init__(
        self,
        service: PhotoService,
        verifier: TokenVerifier,
        *,
        cors: CorsPolicy,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._methods = method_table(PhotoHandlers(service))
        self._verifier = verifier
        self._cors = cors
        self._max_message_bytes = max_message_bytes
        self._closing = False

    async def handle(
        self,
        request: HttpRequest,
        *,
        deadline_cap: float | None = None,
        verified_claims: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        """`deadline_cap` bounds every call's deadline (Lambda's remaining time);
        `verified_claims` are an upstream JWT authorizer's, trusted instead of the token."""
        origin = request.headers.get("origin")
        if request.method == "OPTIONS":
            if origin is not None and self._cors.allows(origin):
                requested = request.headers.get("access-control-request-headers", "")
                return HttpResponse(204, self._cors.preflight_headers(origin, requested))
            return HttpResponse(403, [("vary", "Origin")])
        request_id = request.headers.get("x-request-id", "")
        if not (0 < len(request_id) <= 64 and request_id.isprintable()):
            request_id = uuid.uuid4().hex
            request = replace(request, headers={**request.headers, "x-request-id": request_id})
        response = await self._dispatch(request, deadline_cap, verified_claims)
        response.headers.append(("x-request-id", request_id))
        response.headers.extend(self._cors.response_headers(origin))
        return response

    @property
    def closing(self) -> bool:
        return self._closing

    def begin_closing(self) -> None:
        """Shutdown has begun: calls are still served, but each response closes its connection
        (`Connection: close`), so that no keep-alive client is left sending a request on a
        connection at the moment the server drops it; the next call reconnects and, once the
        listener is closed, is refused cleanly (or reaches another instance)."""
        self._closing = True

    def too_large(self, request: HttpRequest) -> HttpResponse:
        """A body over the transport's cap (read no further): answered in the caller's protocol,
        with CORS, so a browser sees the status rather than a network error."""
        status = _status(8, "request body exceeds the message size limit", "MESSAGE_TOO_LARGE")
        return self._body_refused(request, status, 413, b"body too large\n")

    def too_slow(self, request: HttpRequest) -> HttpResponse:
        """A body that did not arrive within the transport's time limit, likewise."""
        status = _status(4, "request body not received in time", "REQUEST_TOO_SLOW")
        return self._body_refused(request, status, 408, b"request body not received in time\n")

    def _body_refused(
        self, request: HttpRequest, status: status_pb2.Status, http_status: int, text: bytes
    ) -> HttpResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in grpc_web.CONTENT_TYPES:
            in_text = content_type in grpc_web.TEXT_TYPES
            response = self._grpc_web_error(
                status,
                "application/grpc-web-text+proto" if in_text else "application/grpc-web+proto",
            )
        elif content_type in connect.CONTENT_TYPES:
            code, body = connect.error_body(status)
            response = HttpResponse(code, [("content-type", "application/json")], body)
        else:
            response = HttpResponse(http_status, [("content-type", "text/plain")], text)
        response.headers.extend(self._cors.response_headers(request.headers.get("origin")))
        return response

    async def _dispatch(
        self,
        request: HttpRequest,
        deadline_cap: float | None,
        claims: Mapping[str, Any] | None,
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(405, [("allow", ALLOWED_METHODS)])
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in grpc_web.CONTENT_TYPES:
            return await self._grpc_web(request, content_type, deadline_cap, claims)
        if content_type in connect.CONTENT_TYPES:
            return await self._connect(request, content_type, deadline_cap, claims)
        return HttpResponse(
            415,
            [("content-type", "text/plain; charset=utf-8")],
            b"use application/grpc-web(+proto), application/grpc-web-text(+proto), "
            b"application/json or application/proto\n",
        )

    async def _call(
        self,
        method: Method,
        message: Message,
        request: HttpRequest,
        deadline_seconds: float | None,
        protocol: str,
        claims: Mapping[str, Any] | None,
    ) -> Message:
        """Authenticates and runs one RPC; every failure becomes a google.rpc.Status."""
        request_id = request.headers["x-request-id"]  # set by handle()
        started = time.perf_counter()
        code = 0
        with structlog.contextvars.bound_contextvars(
            request_id=request_id, rpc=method.name, protocol=protocol
        ):
            try:
                if claims is not None:
                    user = user_id_from_claims(claims)
                else:
                    user = await self._verifier.user_id(request.headers.get("authorization"))
                structlog.contextvars.bind_contextvars(user=user)
                try:
                    async with asyncio.timeout(deadline_seconds):
                        return await method.handler(user, message)
                except TimeoutError:
                    raise DeadlineExceeded("deadline exceeded") from None
            except PhotoVaultError as error:
                status = to_status(error)
                code = status.code
                raise _CallFailed(status) from None
            except Exception as exc:  # never a 500 or a stack trace to the caller
                code = 13
                log.error("unexpected_error", error_type=type(exc).__name__)
                raise _CallFailed(internal_status()) from None
            finally:
                log.info(
                    "rpc", code=code, duration_ms=round((time.perf_counter() - started) * 1000, 2)
                )
                structlog.contextvars.unbind_contextvars("user")

    def _method(self, path: str) -> Method:
        method = self._methods.get(path)
        if method is None:
            raise _CallFailed(_status(12, f"unknown method {path[:200]}", "UNKNOWN_METHOD"))
        return method

    @staticmethod
    def _timeout(requested: float | None, cap: float | None) -> float | None:
        if cap is None:
            return requested
        return cap if requested is None else min(requested, cap)

    # gRPC-web ----------------------------------------------------------------------------

    async def _grpc_web(
        self,
        request: HttpRequest,
        content_type: str,
        deadline_cap: float | None,
        claims: Mapping[str, Any] | None,
    ) -> HttpResponse:
        text = content_type in grpc_web.TEXT_TYPES
        reply_type = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
        body = request.body
        if text:
            try:
                body = grpc_web.decode_text(body)
            except grpc_web.Base64Error as exc:
                return HttpResponse(400, [("content-type", "text/plain")], f"{exc}\n".encode())
        try:
            method = self._method(request.path)
            timeout = _deadline(request.headers, "grpc-timeout", grpc_web.parse_timeout)
            for name, value in request.headers.items():
                if name.endswith("-bin"):
                    try:
                        grpc_web.decode_bin_header(value)
                    except ValueError:
                        raise _CallFailed(_status(3, f"{name} is not base64")) from None
            try:
                payload = grpc_web.read_message(body, max_message_bytes=self._max_message_bytes)
                message = method.request_type.FromString(payload)
            except grpc_web.FrameError as exc:
                raise _CallFailed(_status(exc.grpc_code, str(exc))) from None
            except (DecodeError, RecursionError):
                raise _CallFailed(
                    _status(3, f"request is not a valid {method.request_type.__name__}")
                ) from None
            reply = await self._call(
                method,
                message,
                request,
                self._timeout(timeout, deadline_cap),
                "grpc-web",
                claims,
            )
        except _CallFailed as failed:
            return self._grpc_web_error(failed.status, reply_type)
        frames = grpc_web.frame(reply.SerializeToString()) + grpc_web.trailer_frame(
            [("grpc-status", "0"), ("grpc-message", "")]
        )
        if text:
            frames = grpc_web.base64_body(frames)
        return HttpResponse(200, [("content-type", reply_type)], frames)

    @staticmethod
    def _grpc_web_error(status: status_pb2.Status, reply_type: str) -> HttpResponse:
        """Trailers-only: the status in the headers and an empty body."""
        return HttpResponse(
            200,
            [
                ("content-type", reply_type),
                ("grpc-status", str(status.code)),
                ("grpc-message", grpc_web.encode_grpc_message(status.message)),
                ("grpc-status-details-bin", grpc_web.b64_header(status.SerializeToString())),
            ],
        )

    # Connect -----------------------------------------------------------------------------

    async def _connect(
        self,
        request: HttpRequest,
        content_type: str,
        deadline_cap: float | None,
        claims: Mapping[str, Any] | None,
    ) -> HttpResponse:
        try:
            version = request.headers.get("connect-protocol-version")
            if version is not None and version != "1":
                raise _CallFailed(_status(3, "connect-protocol-version must be 1"))
            encoding = request.headers.get("content-encoding", "identity").lower()
            if encoding != "identity":
                raise _CallFailed(_status(12, f"content-encoding {encoding[:40]} not supported"))
            method = self._method(request.path)
            timeout = _deadline(request.headers, "connect-timeout-ms", connect.parse_timeout_ms)
            if len(request.body) > self._max_message_bytes:
                raise _CallFailed(_status(8, "request body exceeds the message size limit"))
            try:
                message = connect.decode(request.body, content_type, method.request_type)
            except connect.ConnectDecodeError as exc:
                raise _CallFailed(_status(3, str(exc))) from None
            reply = await self._call(
                method,
                message,
                request,
                self._timeout(timeout, deadline_cap),
                "connect",
                claims,
            )
        except _CallFailed as failed:
            status, body = connect.error_body(failed.status)
            return HttpResponse(status, [("content-type", "application/json")], body)
        return HttpResponse(
            200, [("content-type", content_type)], connect.encode(reply, content_type)
        )
