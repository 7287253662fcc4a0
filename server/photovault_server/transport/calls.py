"""The one per-call pipeline every transport runs a PhotoService call through: native gRPC
(transport/grpc_service.py), the web gateway's gRPC-web and Connect (transport/web/router.py)
and so the Lambda handler, which serves through the same gateway.

For each call, in this order: a request id (the caller's `x-request-id` when sane, else a new
one), the log context, a slot under the process's cap on concurrent calls (admission.py: shed
before any work), authentication from the headers (before the body is even decoded, so an
anonymous caller costs no parsing), the caller's rate limit, decoding, the deadline, the
handler, the mapping of every failure to a google.rpc.Status (transport/status.py), and one
log line. A method the table marks anonymous (handlers.ANONYMOUS_METHODS: GetSharedAlbum)
skips authentication and the per-user rate, on every transport alike. Transports only frame:
they hand over headers and a decode function, and encode what comes back. Per-RPC metrics and
spans belong here too, once for all transports.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from msgspec import Struct

from photovault_server.auth import TokenVerifier, user_id_from_claims
from photovault_server.core.errors import DeadlineExceeded, PhotoVaultError
from photovault_server.tracing import NO_TRACING, Tracing

from .admission import NO_ADMISSION, Admission
from .handlers import Method
from .rpc_stats import RpcStats
from .status import internal_status, to_status

log = structlog.get_logger("photovault.rpc")

Transport = Literal["grpc", "grpc-web", "connect"]

MAX_REQUEST_ID_LENGTH = 64

# Codes that say the server (or a backend) failed, not the caller: logged as warnings.
SERVER_FAULTS = frozenset({code_pb2.INTERNAL, code_pb2.UNKNOWN, code_pb2.UNAVAILABLE})


class CallFailed(Exception):
    """A call that ends with `status`; raised by decoders and envelopes with a ready status."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


class Call(Struct, frozen=True):
    """One call as a transport received it, before anything is trusted."""

    method: Method
    transport: Transport
    headers: Mapping[str, str]  # lower-case names
    decode: Callable[[], Message]  # raises CallFailed when the body is not the request message
    timeout: float | None = None  # seconds left until the caller's deadline
    # Claims an upstream authorizer verified (API Gateway's JWT authorizer): trusted instead of
    # the bearer token.
    verified_claims: Mapping[str, Any] | None = None


class Outcome(Struct, frozen=True):
    """The reply, or the status the call failed with, and the request id to echo."""

    request_id: str
    reply: Message | None = None
    status: status_pb2.Status | None = None


def request_id_of(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id", "")
    if 0 < len(given) <= MAX_REQUEST_ID_LENGTH and given.isprintable():
        return given
    return uuid.uuid4().hex


class CallPipeline:
    def __init__(
        self,
        verifier: TokenVerifier,
        stats: RpcStats | None = None,
        tracing: Tracing = NO_TRACING,
        admission: Admission = NO_ADMISSION,
    ) -> None:
        """`stats`, shared by every transport of a process, counts calls by method, code and
        transport (observability.py exports them); `tracing` opens a span per call;
        `admission`, shared too, caps the calls in progress and rates each user."""
        self._verifier = verifier
        self.stats = stats if stats is not None else RpcStats()
        self._tracing = tracing
        self._admission = admission

    async def run(self, call: Call) -> Outcome:
        request_id = request_id_of(call.headers)
        started = time.perf_counter()
        code = code_pb2.CANCELLED  # unless the call gets further: cancelled under us
        with (
            structlog.contextvars.bound_contextvars(
                request_id=request_id, rpc=call.method.name, transport=call.transport
            ),
            self._tracing.rpc(call.method.name, call.transport, call.headers) as span,
        ):
            try:
                with self._admission.slot():
                    reply = await self._authorized(call)
                code = code_pb2.OK
                return Outcome(request_id, reply=reply)
            except CallFailed as failed:
                code = failed.status.code
                return Outcome(request_id, status=failed.status)
            except PhotoVaultError as error:
                status = to_status(error)
                code = status.code
                return Outcome(request_id, status=status)
            except Exception as exc:  # never a stack trace or an exception's text to the caller
                code = code_pb2.INTERNAL
                log.error("unexpected_error", error_type=type(exc).__name__, where=_where(exc))
                return Outcome(request_id, status=internal_status())
            finally:
                seconds = time.perf_counter() - started
                name = code_pb2.Code.Name(code)
                self.stats.record(call.method.name, name, call.transport, seconds)
                span.finished(name)
                level = log.warning if code in SERVER_FAULTS else log.info
                level("rpc", code=name, duration_ms=round(seconds * 1000, 2))
                structlog.contextvars.unbind_contextvars("user")

    async def _authorized(self, call: Call) -> Message:
        if call.method.anonymous:
            # Served without a bearer token (handlers.ANONYMOUS_METHODS), whatever the caller
            # sends: the handler checks its own credential in the body (a share link's token).
            # No user, so no per-user rate either.
            return await self._handle(call, "")
        if call.verified_claims is not None:
            user = user_id_from_claims(call.verified_claims)
        else:
            user = await self._verifier.user_id(call.headers.get("authorization"))
        structlog.contextvars.bind_contextvars(user=user)  # until the call's log line
        await self._admission.check_rate(user)
        return await self._handle(call, user)

    async def _handle(self, call: Call, user: str) -> Message:
        message = call.decode()
        deadline = asyncio.timeout(call.timeout)
        try:
            async with deadline:
                return await call.method.handler(user, message)
        except TimeoutError:
            if deadline.expired():
                raise DeadlineExceeded("deadline exceeded") from None
            raise


def _where(exc: BaseException) -> str:
    """`file.py:line` of the innermost frame: where to look, without the exception's text
    (it may hold URLs or data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
