"""Fixtures only (helpers live in tests/support/). Real backends for the integration tests:
Postgres and Redis on this machine (DATABASE_URL / REDIS_URL may point elsewhere), moto's S3
server on a loopback port, and the real grpc.aio server on 127.0.0.1:0 reached over a real
channel. Each test gets fresh users, so tests never share rows and need no truncation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import grpc
import httpx
import pytest
from redis.asyncio import Redis

from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev.pgbouncer import pgbouncer
from photovault_server.adapters.migrations import migrate
from photovault_server.app import App, open_app
from photovault_server.server import RunningServer, running_grpc_server
from photovault_server.transport.web import WebGateway
from photovault_server.transport.web.asgi import running_web_gateway
from photovault_server.transport.web.cors import CorsPolicy

from .support.buckets import create_bucket
from .support.grpc_web import ALLOWED_ORIGIN
from .support.native_clients import photovault_serve
from .support.s3_servers import moto_s3_server
from .support.settings import REGION, make_settings
from .support.users import User, new_user

ADMIN_DATABASE_URL = os.environ.get(
    "PHOTOVAULT_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# One database per test run: runs side by side (developers, CI) never drop each other's.
TEST_DATABASE = f"photovault_test_{os.getpid()}"
TEST_REDIS_URL = os.environ.get("PHOTOVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


async def _drop_database() -> None:
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database for this run, migrated by the real migration code, dropped after."""
    await _drop_database()
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await admin.close()
    url = ADMIN_DATABASE_URL.rsplit("/", 1)[0] + f"/{TEST_DATABASE}"
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield url
    await _drop_database()


@pytest.fixture(scope="session")
async def redis_url() -> str:
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def aws_env(s3_endpoint: str) -> Iterator[None]:
    """botocore reads these itself, as it would in production."""
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL_S3=s3_endpoint,
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    create_bucket(s3_endpoint)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
async def app(database_url: str, redis_url: str, aws_env: None) -> AsyncIterator[App]:
    async with open_app(make_settings(database_url, redis_url)) as app:
        yield app


# PgBouncer's server connections for the suites run through it: as few as a small RDS Proxy
# target gives one process, so that calls really queue for them.
POOLER_SERVER_CONNECTIONS = 2


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
async def app_direct_and_pooled(
    request: pytest.FixtureRequest, database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[App]:
    """An app on the session's database, then (the module's tests run again) on the same
    database through a real PgBouncer in transaction mode with two server connections and
    asyncpg's statement cache off, as behind RDS Proxy. A module runs its suite both ways by
    overriding `app`, `grpc_server` with it (tests/pooled/conftest.py)."""
    if request.param == "direct":
        async with open_app(make_settings(database_url, redis_url)) as app:
            yield app
        return
    with pgbouncer(database_url, pool_size=POOLER_SERVER_CONNECTIONS) as bouncer:
        settings = make_settings(
            bouncer.database_url,
            redis_url,
            PHOTOVAULT_DB_STATEMENT_CACHE_SIZE=0,
            # Waits for the two server connections are the point, not shedding (a loaded
            # machine's waits passed the 1 s default).
            PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS=30_000,
        )
        async with open_app(settings) as app:
            yield app


@pytest.fixture(scope="session")
async def grpc_server(app: App) -> AsyncIterator[RunningServer]:
    async with running_grpc_server(app, "127.0.0.1:0") as running:
        yield running


@pytest.fixture(scope="session")
async def channel(grpc_server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def stub(channel: grpc.aio.Channel) -> pb_grpc.PhotoServiceAsyncStub:
    return pb_grpc.PhotoServiceStub(channel)


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, as a browser would PUT/GET the presigned URLs."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def alice() -> User:
    return new_user()


@pytest.fixture
def bob() -> User:
    return new_user()


@pytest.fixture(scope="session")
async def gateway_port(app: App) -> AsyncIterator[int]:
    gateway = WebGateway(
        app.service, app.verifier, cors=CorsPolicy([ALLOWED_ORIGIN]), stats=app.rpc_stats
    )
    async with running_web_gateway(gateway, "127.0.0.1:0") as port:
        yield port


@pytest.fixture(scope="session")
def gateway_url(gateway_port: int) -> str:
    return f"http://127.0.0.1:{gateway_port}"


@pytest.fixture(scope="session")
async def web(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the session's web gateway (tests/test_gateway_*.py)."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def served_port(
    database_url: str, redis_url: str, s3_endpoint: str, aws_env: None
) -> Iterator[int]:
    """`photovault serve` as a subprocess for the module (the clients in other languages)."""
    with photovault_serve(database_url, redis_url, s3_endpoint) as port:
        yield port


@pytest.fixture
async def served_stub(served_port: int) -> AsyncIterator[pb_grpc.PhotoServiceAsyncStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served_port}") as channel:
        yield pb_grpc.PhotoServiceStub(channel)
