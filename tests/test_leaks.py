"""Callers that give up leave nothing behind: after hundreds of expired deadlines, cancelled
calls, closed channels and hung-up HTTP clients (tests/support/abandon.py), and after calls
cancelled while they hold a database connection, the server's event loop is back to its tasks,
every pool connection is idle again, no file descriptor is left open, and nothing half-written."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.server import running_grpc_server
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.abandon import Abandoner, grpc_web_request
from .support.images import jpeg
from .support.sockets import descriptors_apart_from_backends, port_of
from .support.users import User, upload_photo

S3 = "AWS_ENDPOINT_URL_S3"


@dataclass(frozen=True)
class Usage:
    tasks: int
    pool_open: int
    pool_idle: int
    sockets: int  # descriptors apart from the backends' pooled connections

    @classmethod
    def now(cls, app: App) -> Usage:
        s = app.settings
        backends = {port_of(s.database_url), port_of(s.redis_url), port_of(os.environ[S3])}
        return cls(
            tasks=len(asyncio.all_tasks()),
            pool_open=app.pool.get_size(),
            pool_idle=app.pool.get_idle_size(),
            sockets=descriptors_apart_from_backends(os.getpid(), backends),
        )


async def settled(app: App, ok: Callable[[Usage], bool], seconds: float = 10) -> Usage:
    """The usage once `ok` holds, or the last one seen when `seconds` run out."""
    usage = Usage.now(app)
    for _ in range(int(seconds / 0.05)):
        if ok(usage):
            break
        await asyncio.sleep(0.05)
        usage = Usage.now(app)
    return usage


@dataclass(frozen=True)
class Ports:
    grpc: int
    http: int


@pytest.fixture
async def ports(app: App) -> AsyncIterator[Ports]:
    async with (
        running_grpc_server(app, "127.0.0.1:0") as running,
        running_web_gateway(web_gateway(app), "127.0.0.1:0", grace_seconds=5) as http_port,
    ):
        yield Ports(running.port, http_port)


async def test_callers_giving_up_leak_no_task_connection_or_descriptor(
    app: App,
    ports: Ports,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    for i in range(3):
        await upload_photo(stub, http, alice, jpeg((8, 8), (i, 9, 9)))
    # A first batch grows the database and Redis pools to what this concurrency needs: a leak
    # grows with every batch, a pool does not.
    await Abandoner(ports.grpc, ports.http, alice.token).run(rounds=40)
    before = await settled(app, lambda u: u.pool_idle == u.pool_open, 5)

    outcomes = await Abandoner(ports.grpc, ports.http, alice.token, seed=11).run(rounds=40)

    after = await settled(
        app,
        lambda u: (
            u.tasks <= before.tasks and u.pool_idle == u.pool_open and u.sockets <= before.sockets
        ),
    )
    assert after.tasks <= before.tasks, (before, after)
    assert after.pool_idle == after.pool_open, after
    assert after.sockets <= before.sockets, (before, after)
    # The callers really gave up mid-call, not only before or after it.
    assert outcomes["native_deadline: DEADLINE_EXCEEDED"] > 0, outcomes
    assert outcomes["native_cancelled: cancelled"] > 0, outcomes
    assert outcomes["web_deadline: grpc-status 4"] > 0, outcomes
    assert sum(outcomes.values()) == 40 * 6
    # And the server still answers.
    listed = await stub.ListPhotos(pb.ListPhotosRequest(page_size=5), metadata=alice.metadata)
    assert len(listed.photos) == 3


def _rename(photo_id: str, title: str) -> pb.UpdatePhotoRequest:
    request = pb.UpdatePhotoRequest(update_mask=field_mask_pb2.FieldMask(paths=["title"]))
    request.photo.id = photo_id
    request.photo.title = title
    return request


async def test_calls_abandoned_while_holding_a_database_connection_give_it_back(
    app: App,
    ports: Ports,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    database_url: str,
) -> None:
    """The riskiest moment to give up: the call has a pool connection and waits on a row lock.
    Cancelled (native), deadline expired (native and gRPC-web), the connection must come back
    to the pool and the row keep its old title: no half-applied update."""
    photos = [await upload_photo(stub, http, alice, jpeg((8, 8), (i, 1, 1))) for i in range(4)]
    before = await settled(app, lambda u: u.pool_idle == u.pool_open, 5)
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    try:
        await blocker.execute(
            "SELECT 1 FROM photos WHERE id = ANY($1::uuid[]) FOR UPDATE", [p.id for p in photos]
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}") as channel:
            served = pb_grpc.PhotoServiceStub(channel)
            cancelled = served.UpdatePhoto(
                _rename(photos[0].id, "cancelled"), metadata=alice.metadata, timeout=30
            )
            expiring = served.UpdatePhoto(
                _rename(photos[1].id, "expired"), metadata=alice.metadata, timeout=0.5
            )
            web_message = _rename(photos[2].id, "web expired").SerializeToString()
            web = asyncio.create_task(_grpc_web_with_deadline(ports.http, alice, web_message))
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            )
            for _ in range(200):
                if await blocker.fetchval(waiting) >= 3:
                    break
                await asyncio.sleep(0.01)
            checked_out = Usage.now(app)
            assert checked_out.pool_open - checked_out.pool_idle >= 2
            assert cancelled.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as expired:
                await expiring
            assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "grpc-status: 4" in (await web).lower()
            # The lock is still held: only giving up can have released the connections.
            after = await settled(app, lambda u: u.pool_idle == u.pool_open)
            assert after.pool_idle == after.pool_open, after
            assert after.tasks <= before.tasks, (before, after)
    finally:
        await transaction.rollback()
        await blocker.close()
    titles = await blocker_titles(database_url, [p.id for p in photos[:3]])
    assert titles == [p.title for p in photos[:3]]
    # The photo untouched by any of this still updates.
    updated = await stub.UpdatePhoto(_rename(photos[3].id, "later"), metadata=alice.metadata)
    assert updated.photo.title == "later"


async def _grpc_web_with_deadline(http_port: int, user: User, message: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        writer.write(grpc_web_request(user.token, "300m", "UpdatePhoto", message))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    return head.decode("latin-1")


async def blocker_titles(database_url: str, ids: list[str]) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id::text, title FROM photos WHERE id = ANY($1::uuid[])", ids
        )
    finally:
        await conn.close()
    by_id = {row["id"]: row["title"] for row in rows}
    return [by_id[i] for i in ids]
