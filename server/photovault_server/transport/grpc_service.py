"""photovault.v1.PhotoService on a grpc.aio server: one method handler per RPC, each running the
call through the pipeline (transport/calls.py) with no interceptors.

Handlers take the request's bytes (no deserializer) so that the pipeline authenticates before it
decodes, and an undecodable message is answered INVALID_ARGUMENT with details rather than
grpc's UNKNOWN naming a Python exception; they return the reply's bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2
from grpc_status import rpc_status

from .calls import Call, CallFailed, CallPipeline
from .handlers import SERVICE, Method
from .status import protocol_status

Context = grpc.aio.ServicerContext[bytes, bytes]
Behavior = Callable[[bytes, Context], Awaitable[bytes]]


def decode_request(method: Method, data: bytes) -> Message:
    try:
        return method.request_type.FromString(data)
    except (DecodeError, RecursionError):
        raise CallFailed(
            protocol_status(
                code_pb2.INVALID_ARGUMENT,
                f"request is not a valid {method.request_type.__name__}",
                "MALFORMED_REQUEST",
            )
        ) from None


def _headers(context: Context) -> dict[str, str]:
    # Text metadata only (-bin values are bytes); the first value of a repeated key wins.
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            headers.setdefault(key, value)
    return headers


def _behavior(pipeline: CallPipeline, method: Method) -> Behavior:
    async def behavior(data: bytes, context: Context) -> bytes:
        outcome = await pipeline.run(
            Call(
                method=method,
                transport="grpc",
                headers=_headers(context),
                decode=lambda: decode_request(method, data),
                timeout=context.time_remaining(),
            )
        )
        # The request id goes back in the trailers, written with the reply and the status:
        # as initial metadata it was an operation of its own per call, a hand-off to grpc's
        # completion queue and back (docs/benchmarks.md, "One unary call per protocol").
        request_id = (("x-request-id", outcome.request_id),)
        if outcome.status is not None:
            status = rpc_status.to_status(outcome.status)
            await context.abort(
                status.code, status.details, tuple(status.trailing_metadata) + request_id
            )
        assert outcome.reply is not None  # an Outcome holds a reply or a status
        context.set_trailing_metadata(request_id)
        return outcome.reply.SerializeToString()

    return behavior


def add_photo_service(
    server: grpc.aio.Server, pipeline: CallPipeline, methods: Mapping[str, Method]
) -> None:
    """Registers every RPC of `methods` (the method table of transport/handlers.py)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        method.name: grpc.unary_unary_rpc_method_handler(
            _behavior(pipeline, method),
        )
        for method in methods.values()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
