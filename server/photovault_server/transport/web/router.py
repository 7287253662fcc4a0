"""Routes one HTTP request to its protocol (by content type) and its RPC (by path), and runs the
call through the pipeline (transport/calls.py) that native gRPC uses too, so every transport
answers with the same codes and the same google.rpc.Status details."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from photovault_server.transport.calls import Call, CallFailed, CallPipeline, request_id_of
from photovault_server.transport.handlers import Method
from photovault_server.transport.status import protocol_status

from .cors import ALLOWED_METHODS
from .http import HttpError, HttpRequest, HttpResponse, Refusal
from .protocol import negotiate

UNSUPPORTED_MEDIA_TYPE = (
    b"use application/grpc-web(+proto), application/grpc-web-text(+proto), "
    b"application/json or application/proto\n"
)


class Router:
    def __init__(
        self, methods: Mapping[str, Method], pipeline: CallPipeline, *, max_message_bytes: int
    ) -> None:
        self._methods = methods
        self._pipeline = pipeline
        self._max_message_bytes = max_message_bytes

    async def handle(
        self,
        request: HttpRequest,
        *,
        deadline_cap: float | None = None,
        verified_claims: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        response = await self._route(request, deadline_cap, verified_claims)
        if not any(name == "x-request-id" for name, _ in response.headers):
            response.headers.append(("x-request-id", request_id_of(request.headers)))
        return response

    async def _route(
        self,
        request: HttpRequest,
        deadline_cap: float | None,
        verified_claims: Mapping[str, Any] | None,
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(405, [("allow", ALLOWED_METHODS)])
        protocol = negotiate(request)
        if protocol is None:
            return HttpResponse(
                415, [("content-type", "text/plain; charset=utf-8")], UNSUPPORTED_MEDIA_TYPE
            )
        max_bytes = self._max_message_bytes
        try:
            envelope = protocol.envelope(request, max_bytes)
            method = self._methods.get(request.path)
            if method is None:
                raise CallFailed(
                    protocol_status(
                        code_pb2.UNIMPLEMENTED,
                        f"unknown method {request.path[:200]}",
                        "UNKNOWN_METHOD",
                    )
                )
        except HttpError as refused:
            return refused.response
        except CallFailed as failed:
            return protocol.encode_error(request, failed.status)
        body_refusals: list[HttpError] = []

        def decode() -> Message:
            # Runs after authentication. A body refused in plain HTTP ends the call here; the
            # answer is that refusal, not the call's status.
            try:
                return protocol.decode(request, envelope.body, method.request_type, max_bytes)
            except HttpError as error:
                body_refusals.append(error)
                raise CallFailed(
                    protocol_status(code_pb2.INVALID_ARGUMENT, str(error), "MALFORMED_REQUEST")
                ) from None

        outcome = await self._pipeline.run(
            Call(
                method=method,
                transport=protocol.name,
                headers=request.headers,
                decode=decode,
                timeout=_earliest(envelope.timeout, deadline_cap),
                verified_claims=verified_claims,
            )
        )
        if body_refusals:
            return body_refusals[0].response
        if outcome.status is not None:
            response = protocol.encode_error(request, outcome.status)
        else:
            assert outcome.reply is not None  # an Outcome holds a reply or a status
            response = protocol.encode_reply(request, outcome.reply)
        response.headers.append(("x-request-id", outcome.request_id))
        return response

    def refuse(self, request: HttpRequest, refusal: Refusal) -> HttpResponse:
        protocol = negotiate(request)
        if protocol is None:
            return HttpResponse(
                refusal.http_status,
                [("content-type", "text/plain")],
                f"{refusal.text}\n".encode(),
            )
        status = protocol_status(refusal.grpc_code, refusal.message, refusal.reason)
        return protocol.encode_error(request, status)


def _earliest(requested: float | None, cap: float | None) -> float | None:
    if cap is None:
        return requested
    return cap if requested is None else min(requested, cap)
