"""Health follows the database: NOT_SERVING (gRPC health, the gateway's /healthz) while the
schema lacks migrations, SERVING once they are applied; and native gRPC connections get GOAWAY
after PHOTOVAULT_GRPC_MAX_CONNECTION_AGE_SECONDS while calls keep succeeding."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.adapters.migrations import ensure_database, migrate
from photovault_server.app import open_app
from photovault_server.readiness import database_ready, pool_busy
from photovault_server.server import running_grpc_server
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.settings import make_settings
from .support.users import new_user

ADMIN_DATABASE_URL = os.environ.get(
    "PHOTOVAULT_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def unmigrated_database() -> AsyncIterator[str]:
    name = f"photovault_unmigrated_{uuid.uuid4().hex[:8]}"
    url = ADMIN_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    await ensure_database(url)
    yield url
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_health_is_not_serving_until_the_schema_is_migrated(
    unmigrated_database: str, redis_url: str, aws_env: None
) -> None:
    settings = make_settings(unmigrated_database, redis_url)
    async with open_app(settings) as app:
        gateway = web_gateway(app)
        async with (
            running_web_gateway(gateway, "127.0.0.1:0") as http_port,
            running_grpc_server(
                app, "127.0.0.1:0", on_readiness=gateway.set_ready, readiness_every=0.05
            ) as running,
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as web,
        ):
            health = health_pb2_grpc.HealthStub(channel)
            before = await health.Check(health_pb2.HealthCheckRequest())
            assert before.status == NOT_SERVING
            assert (await web.get("/healthz")).status_code == 503

            watch = health.Watch(health_pb2.HealthCheckRequest())
            assert (await watch.read()).status == NOT_SERVING
            conn = await asyncpg.connect(unmigrated_database)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            assert (await watch.read()).status == SERVING  # the next change, whenever it comes
            watch.cancel()
            healthz = await web.get("/healthz")
            assert (healthz.status_code, healthz.text) == (200, "SERVING\n")


async def test_connections_get_goaway_after_the_max_age_and_calls_go_on(
    database_url: str, redis_url: str, aws_env: None
) -> None:
    settings = make_settings(database_url, redis_url, PHOTOVAULT_GRPC_MAX_CONNECTION_AGE_SECONDS=1)
    user = new_user()
    async with (
        open_app(settings) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = pb_grpc.PhotoServiceStub(channel)
        await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        # Calls keep going while the server ages the connection out: the channel leaves READY
        # (GOAWAY), reconnects, and no call fails on the way.
        left_ready = asyncio.create_task(
            channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        )
        calls = 0
        while calls < 400:  # a bound, so a connection never aged out fails the test
            await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
            calls += 1
            if left_ready.done():
                break
            await asyncio.sleep(0.05)
        assert left_ready.done(), "the connection outlived its max age"
        await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        assert calls > 1  # some on the first connection, some around the GOAWAY


async def test_a_busy_pool_is_not_checked(database_url: str) -> None:
    """Every connection in use: the watch keeps its state instead of waiting in line (and,
    timing out under load, taking a loaded process out of rotation)."""
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        assert not pool_busy(pool)
        async with pool.acquire():
            assert pool_busy(pool)
        assert not pool_busy(pool)
        assert await database_ready(pool)
    finally:
        await pool.close()
