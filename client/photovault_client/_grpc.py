"""Native gRPC over a grpc.aio channel (HTTP/2), TLS or plaintext."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from grpc_status import rpc_status

from ._errors import Code, PhotoVaultError, error_from_code, error_from_status
from ._rpcs import Req, Resp, Rpc

ChannelOptions = Sequence[tuple[str, Any]]

# Client-side health checking (gRFC A17): the channel watches grpc.health.v1 on each server and
# sends no call to one that says NOT_SERVING, as `photovault serve` does from SIGTERM on, so a
# draining server gets no new calls (they go to another address of the target, or fail at once
# with UNAVAILABLE, which the client retries). For direct connections (a headless Service's DNS
# name); behind a per-request proxy the watch would see one backend's health, not the proxy's.
HEALTH_CHECKED_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": "photovault.v1.PhotoService"},
    }
)


class GrpcTransport:
    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: ChannelOptions = (),
    ) -> None:
        """`credentials` None means plaintext; grpc.ssl_channel_credentials() for TLS."""
        self._target = target
        self._credentials = credentials
        self._options = list(options)
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable[Any, Any]] = {}

    async def open(self) -> None:
        if self._channel is not None:
            return
        if self._credentials is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=self._options)
        else:
            self._channel = grpc.aio.secure_channel(
                self._target, self._credentials, options=self._options
            )

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        self._calls.clear()
        if channel is not None:
            await channel.close()

    def _callable(self, rpc: Rpc[Req, Resp]) -> grpc.aio.UnaryUnaryMultiCallable[Req, Resp]:
        if self._channel is None:
            raise RuntimeError("the transport is closed: use `async with PhotoVaultClient...`")
        call = self._calls.get(rpc.name)
        if call is None:
            call = self._channel.unary_unary(
                rpc.path,
                request_serializer=rpc.request_type.SerializeToString,
                response_deserializer=rpc.response_type.FromString,
            )
            self._calls[rpc.name] = call
        return call

    async def unary(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        *,
        metadata: Mapping[str, str],
        time_left: float | None,
    ) -> Resp:
        call = self._callable(rpc)
        try:
            response: Resp = await call(
                request, metadata=tuple(metadata.items()), timeout=time_left
            )
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from None
        return response


def rpc_error(error: grpc.aio.AioRpcError) -> PhotoVaultError:
    """The typed error of a failed call: from its google.rpc.Status details when it carries
    them (grpc-status-details-bin), else from its code and message alone."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # details inconsistent with the call's status: trust the call
        status = None
    if status is not None:
        return error_from_status(status)
    return error_from_code(Code.of(error.code().value[0]), error.details() or "")
