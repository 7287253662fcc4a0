"""The interceptor chain of the native gRPC server, outermost first:
request log (request id, method, code, duration) -> error mapping -> authentication.

Each wraps the unary behaviour of PhotoService methods only; health and reflection pass through.
"""

from __future__ import annotations

import contextvars
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from photovault_server.auth import TokenVerifier
from photovault_server.core.errors import PhotoVaultError

from .status import internal_status, protocol_status, to_status

SERVICE_PREFIX = "/photovault.v1.PhotoService/"
log = structlog.get_logger("photovault.rpc")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]

_current_user: contextvars.ContextVar[str] = contextvars.ContextVar("photovault_user")


def current_user() -> str:
    """The authenticated caller of the RPC being served (set by AuthInterceptor)."""
    return _current_user.get()


class _UnaryWrapper(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None or not method.startswith(SERVICE_PREFIX):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            # grpc.aio hands async behaviours through the sync type of RpcMethodHandler.
            self.wrap(handler.unary_unary, method),  # type: ignore[arg-type]
            request_deserializer=self.deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        raise NotImplementedError

    def deserializer(self, inner: Any) -> Any:
        return inner


def _metadata(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key and isinstance(v, str):
            return v
    return None


class RequestLogInterceptor(_UnaryWrapper):
    """One structured line per call; never logs tokens, request bodies or URLs."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        rpc = method.removeprefix(SERVICE_PREFIX)

        async def logged(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            given = _metadata(context, "x-request-id") or ""
            request_id = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
            structlog.contextvars.bind_contextvars(request_id=request_id, rpc=rpc)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                await context.send_initial_metadata((("x-request-id", request_id),))
                return await behavior(request, context)
            except BaseException:
                code = context.code() or grpc.StatusCode.CANCELLED
                raise
            finally:
                level = log.warning if code in _SERVER_FAULTS else log.info
                level(
                    "rpc",
                    code=code.name if isinstance(code, grpc.StatusCode) else str(code),
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
                structlog.contextvars.unbind_contextvars("request_id", "rpc", "user")

        return logged


_SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}
)


class _Undecodable:
    """Stands for a request message that did not parse, so that it is answered as
    INVALID_ARGUMENT with details rather than grpc's UNKNOWN naming a Python exception."""


_UNDECODABLE = _Undecodable()


class ErrorInterceptor(_UnaryWrapper):
    """Core errors -> status with google.rpc.Status details; anything else -> INTERNAL with a
    fixed message (the type and place are logged, never the text: it may hold URLs)."""

    def deserializer(self, inner: Any) -> Any:
        def tolerant(data: bytes) -> Any:
            try:
                return inner(data)
            except (DecodeError, RecursionError):
                return _UNDECODABLE

        return tolerant if inner is not None else None

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if request is _UNDECODABLE:
                status = protocol_status(3, "request is not a valid message", "MALFORMED_REQUEST")
                await context.abort_with_status(rpc_status.to_status(status))
            try:
                return await behavior(request, context)
            except PhotoVaultError as error:
                await context.abort_with_status(rpc_status.to_status(to_status(error)))
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                log.error(
                    "unexpected_error",
                    error_type=type(exc).__name__,
                    where=f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}",
                )
                await context.abort_with_status(rpc_status.to_status(internal_status()))

        return mapped


class AuthInterceptor(_UnaryWrapper):
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        async def authenticated(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            user = await self._verifier.user_id(_metadata(context, "authorization"))
            structlog.contextvars.bind_contextvars(user=user)
            token = _current_user.set(user)
            try:
                return await behavior(request, context)
            finally:
                _current_user.reset(token)

        return authenticated


def interceptors(verifier: TokenVerifier) -> list[grpc.aio.ServerInterceptor]:
    return [RequestLogInterceptor(), ErrorInterceptor(), AuthInterceptor(verifier)]
