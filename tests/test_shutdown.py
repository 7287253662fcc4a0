"""The shutdown sequence of `photovault serve`, through the real native server and gateway:
lame duck (health NOT_SERVING, calls still served, the gateway closing each connection after
its answer), then the listeners close while the calls in flight finish with their answers, and
new calls are refused (UNAVAILABLE, connection refused)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import grpc
import httpx
import psutil
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_client import PhotoVaultClient, RetryPolicy, Unavailable
from photovault_server.app import App
from photovault_server.server import RunningServer, lame_duck, running_grpc_server
from photovault_server.transport.web import WebGateway, web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.abandon import grpc_web_request
from .support.grpc_status import call_error
from .support.images import jpeg
from .support.users import User, upload_photo

SERVICE = "/photovault.v1.PhotoService/"
Reply = TypeVar("Reply", bound=Message)


@dataclass
class Served:
    stack: AsyncExitStack  # closing it stops both servers, as leaving `serve`'s block does
    running: RunningServer
    gateway: WebGateway
    channel: grpc.aio.Channel
    stub: pb_grpc.PhotoServiceAsyncStub
    web: httpx.AsyncClient


@pytest.fixture
async def served(app: App) -> AsyncIterator[Served]:
    async with AsyncExitStack() as stack:
        gateway = web_gateway(app)
        running = await stack.enter_async_context(running_grpc_server(app, "127.0.0.1:0"))
        http_port = await stack.enter_async_context(
            running_web_gateway(gateway, "127.0.0.1:0", grace_seconds=5)
        )
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", trust_env=False) as web,
        ):
            yield Served(stack, running, gateway, channel, pb_grpc.PhotoServiceStub(channel), web)


def _rename(photo_id: str, title: str) -> pb.UpdatePhotoRequest:
    request = pb.UpdatePhotoRequest(update_mask=field_mask_pb2.FieldMask(paths=["title"]))
    request.photo.id = photo_id
    request.photo.title = title
    return request


async def _grpc_web(web: httpx.AsyncClient, user: User, rpc: str, message: bytes) -> httpx.Response:
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    return await web.post(
        SERVICE + rpc,
        content=frame,
        headers={
            "authorization": f"Bearer {user.token}",
            "content-type": "application/grpc-web+proto",
        },
    )


def _web_reply(response: httpx.Response, reply: type[Reply]) -> Reply:
    """The message of a successful gRPC-web answer (a data frame, then trailers with OK)."""
    assert response.status_code == 200
    body = response.content
    length = int.from_bytes(body[1:5], "big")
    assert body[5 + length :].endswith(b"grpc-status: 0\r\ngrpc-message: \r\n"), body[-80:]
    return reply.FromString(body[5 : 5 + length])


async def test_lame_duck_says_not_serving_yet_serves_and_closes_keep_alive(
    served: Served, alice: User
) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    before = await health.Check(health_pb2.HealthCheckRequest())
    assert before.status == health_pb2.HealthCheckResponse.SERVING
    kept = await _grpc_web(
        served.web, alice, "GetAccount", pb.GetAccountRequest().SerializeToString()
    )
    assert "connection" not in kept.headers or kept.headers["connection"] != "close"
    healthy = await served.web.get("/healthz")
    assert (healthy.status_code, healthy.text) == (200, "SERVING\n")

    started = time.monotonic()
    ducking = asyncio.create_task(lame_duck(served.running.health, served.gateway, 0.5))
    await asyncio.sleep(0.05)
    during = await health.Check(health_pb2.HealthCheckRequest())
    assert during.status == health_pb2.HealthCheckResponse.NOT_SERVING
    account = await served.stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert account.account.user_id == alice.id
    answered = await _grpc_web(
        served.web, alice, "GetAccount", pb.GetAccountRequest().SerializeToString()
    )
    assert _web_reply(answered, pb.GetAccountResponse).account.user_id == alice.id
    assert answered.headers["connection"] == "close"
    draining = await served.web.get("/healthz")
    assert (draining.status_code, draining.text) == (503, "NOT_SERVING\n")
    await ducking
    assert time.monotonic() - started >= 0.5


async def test_calls_in_flight_finish_and_later_calls_are_refused(
    served: Served,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    database_url: str,
) -> None:
    first = await upload_photo(stub, http, alice, jpeg((8, 8), (1, 2, 3)))
    second = await upload_photo(stub, http, alice, jpeg((8, 8), (4, 5, 6)))
    # Row locks held by another transaction keep one call per transport running across the stop.
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    try:
        await blocker.execute(
            "SELECT 1 FROM photos WHERE id = ANY($1::uuid[]) FOR UPDATE", [first.id, second.id]
        )
        native = asyncio.ensure_future(
            served.stub.UpdatePhoto(_rename(first.id, "native"), metadata=alice.metadata)
        )
        web = asyncio.create_task(
            _grpc_web(
                served.web, alice, "UpdatePhoto", _rename(second.id, "web").SerializeToString()
            )
        )
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
        for _ in range(500):
            if await blocker.fetchval(waiting) == 2:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the two calls never reached the locked rows")

        async def shut_down() -> None:
            await lame_duck(served.running.health, served.gateway, 0.1)
            await served.stack.aclose()

        stopping = asyncio.create_task(shut_down())
        await asyncio.sleep(0.5)  # the listeners are closed by now, the two calls still running
        assert not native.done()
        assert not web.done()
        assert not stopping.done()
    finally:
        await transaction.rollback()
        await blocker.close()

    assert (await native).photo.title == "native"
    assert _web_reply(await web, pb.UpdatePhotoResponse).photo.title == "web"
    await asyncio.wait_for(stopping, 10)

    refused = await call_error(
        served.stub.GetPhoto(pb.GetPhotoRequest(id=first.id), metadata=alice.metadata, timeout=5)
    )
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(httpx.ConnectError):
        await _grpc_web(served.web, alice, "GetAccount", b"")


async def test_a_health_checked_client_sends_nothing_to_a_draining_server(
    served: Served, alice: User
) -> None:
    target = f"127.0.0.1:{served.running.port}"
    async with PhotoVaultClient.grpc(
        target, health_checked=True, token=alice.token, retry=RetryPolicy(max_attempts=1)
    ) as client:
        assert (await client.get_account()).user_id == alice.id
        ducking = asyncio.create_task(lame_duck(served.running.health, served.gateway, 5.0))
        # Once its health watch hears NOT_SERVING, the channel sends the server nothing.
        refused = False
        for _ in range(80):
            try:
                await client.get_account(timeout=2)
            except Unavailable:
                refused = True
                break
            await asyncio.sleep(0.05)
        assert refused, "the health-checked client kept calling a draining server"
        assert not ducking.done()
        # The server itself still serves: a plain channel gets its answer.
        account = await served.stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
        assert account.account.user_id == alice.id
        ducking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ducking


async def test_a_request_sent_as_the_gateway_stops_is_answered_not_reset(
    served: Served, alice: User
) -> None:
    """A client that connected just before the stop (say, after a `Connection: close`) and
    whose request is on its way: the listener closes, but its connection is given a moment
    for the request, which is answered, and then closed."""
    port = int(str(served.web.base_url).rsplit(":", 1)[1].rstrip("/"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        stopping = asyncio.create_task(served.stack.aclose())
        await asyncio.sleep(0.1)  # uvicorn has begun its shutdown: listener closed
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        writer.write(grpc_web_request(alice.token, None, "GetAccount", b""))
        answer = await asyncio.wait_for(reader.read(-1), 5)  # to the close
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b"grpc-status: 0" in answer
    await asyncio.wait_for(stopping, 10)


async def test_connections_waiting_to_be_accepted_are_answered_at_the_stop(
    served: Served, alice: User
) -> None:
    """Connections the kernel completed but the event loop had not accepted yet (a busy loop)
    would be reset when the listener closes, their requests already sent; they are accepted
    at the stop and answered."""
    port = int(str(served.web.base_url).rsplit(":", 1)[1].rstrip("/"))
    listener = next(
        c.fd
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    )
    asyncio.get_running_loop().remove_reader(listener)  # the loop accepts nothing more
    waiting = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        for _, writer in waiting:
            writer.write(grpc_web_request(alice.token, None, "GetAccount", b""))
        stopping = asyncio.create_task(served.stack.aclose())
        answers = [await asyncio.wait_for(reader.read(-1), 5) for reader, _ in waiting]
    finally:
        for _, writer in waiting:
            writer.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b"grpc-status: 0" in answer
    await asyncio.wait_for(stopping, 10)
