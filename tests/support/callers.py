"""One call, any protocol: the same RPC through native gRPC, gRPC-web (binary, text),
Connect JSON and the independent `connectrpc` client, each answered as an Outcome, so that
parity tests compare what a client of each transport learns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from connectrpc.client import ConnectClient
from connectrpc.codec import Codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.protocol import ProtocolType
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App

from .grpc_web import (
    CONNECT_CODES,
    SERVICE,
    auth,
    grpc_web_call,
    read_grpc_web,
    response_type,
    unpadded_b64decode,
)
from .users import User


@dataclass
class Outcome:
    """What a client learns from one call: the reply, or the code, message and Status."""

    reply: Message | None
    code: int = 0
    message: str = ""
    status: status_pb2.Status | None = None


Caller = Callable[[str, Message, User | None], Awaitable[Outcome]]


def native_caller(stub: pb_grpc.PhotoServiceAsyncStub) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        metadata = user.metadata if user else ()
        try:
            reply: Message = await getattr(stub, rpc)(request, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            status: status_pb2.Status | None = rpc_status.from_call(error)
            return Outcome(None, error.code().value[0], error.details() or "", status)
        return Outcome(reply)

    return call


def grpc_web_caller(web: httpx.AsyncClient, *, text: bool) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        reply = read_grpc_web(await grpc_web_call(web, rpc, request, user, text=text), text=text)
        if reply.code != 0:
            assert reply.messages == []
            return Outcome(None, reply.code, reply.message, reply.status)
        assert len(reply.messages) == 1
        return Outcome(response_type(rpc).FromString(reply.messages[0]))

    return call


def connect_status(body: dict[str, Any]) -> status_pb2.Status:
    """A Connect JSON error as the google.rpc.Status it carries."""
    code, _ = CONNECT_CODES[body["code"]]
    return status_pb2.Status(
        code=code,
        message=body.get("message", ""),
        details=[
            any_pb2.Any(
                type_url=f"type.googleapis.com/{d['type']}", value=unpadded_b64decode(d["value"])
            )
            for d in body.get("details", [])
        ],
    )


def connect_json_caller(web: httpx.AsyncClient) -> Caller:
    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        response = await web.post(
            f"/{SERVICE}/{rpc}",
            content=json_format.MessageToJson(request),
            headers={
                "content-type": "application/json",
                "connect-protocol-version": "1",
                **auth(user),
            },
        )
        assert response.headers["content-type"] == "application/json"
        if response.status_code == 200:
            reply = response_type(rpc)()
            json_format.Parse(response.text, reply)
            return Outcome(reply)
        body = response.json()
        assert response.status_code == CONNECT_CODES[body["code"]][1], body
        status = connect_status(body)
        return Outcome(None, status.code, status.message, status)

    return call


def connectrpc_caller(base_url: str, protocol: ProtocolType, codec: Codec) -> Caller:
    """The `connectrpc` PyPI client, with our own generated message classes."""
    client = ConnectClient(
        base_url, codec=codec, protocol=protocol, send_compression=None, accept_compression=[]
    )

    async def call(rpc: str, request: Message, user: User | None) -> Outcome:
        method: MethodInfo[Message, Message] = MethodInfo(
            name=rpc,
            service_name=SERVICE,
            input=type(request),
            output=response_type(rpc),
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type=StreamType.UNARY,
        )
        try:
            reply = await client.execute_unary(request=request, method=method, headers=auth(user))
        except ConnectError as error:
            code, _ = CONNECT_CODES[error.code.value]
            status = status_pb2.Status(
                code=code,
                message=error.message,
                details=[
                    any_pb2.Any(
                        type_url=f"type.googleapis.com/{d.type_name}", value=d.message_bytes
                    )
                    for d in error.details
                ],
            )
            return Outcome(None, code, error.message, status)
        return Outcome(reply)

    return call


PROTOCOLS = [
    "grpc-web",
    "grpc-web-text",
    "connect-json",
    "connectrpc-grpc-web",
    "connectrpc-connect-json",
    "connectrpc-connect-proto",
]


def patch_core(
    monkeypatch: pytest.MonkeyPatch, app: App, name: str, replacement: Callable[..., Any]
) -> None:
    """Replaces one PhotoService method for both transports (they share the core)."""
    monkeypatch.setattr(app.service, name, replacement)
