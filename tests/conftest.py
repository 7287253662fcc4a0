"""Real backends for the integration tests: Postgres and Redis on this machine (DATABASE_URL /
REDIS_URL may point elsewhere), moto's S3 server on a loopback port, and the real grpc.aio server
on 127.0.0.1:0 reached over a real channel. Each test gets fresh users, so tests never share
rows and need no truncation."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from redis.asyncio import Redis

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev import s3 as dev_s3
from photovault_server.adapters.migrations import migrate
from photovault_server.app import App, open_app
from photovault_server.auth import mint_token
from photovault_server.server import RunningServer, running_grpc_server
from photovault_server.settings import Settings, load_settings

from .support.s3_servers import moto_s3_server

JWT_SECRET = "test-secret-" + "x" * 32
BUCKET = "photovault-test"
REGION = "us-east-1"
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


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    dev_s3.create_bucket(endpoint, bucket, REGION)


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


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "PHOTOVAULT_BUCKET": BUCKET,
        "AWS_REGION": REGION,
        "PHOTOVAULT_S3_ADDRESSING_STYLE": "path",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHOTOVAULT_JWT_SECRET": JWT_SECRET,
        "PHOTOVAULT_GRPC_ADDR": "127.0.0.1:0",
        "PHOTOVAULT_DB_POOL_MAX_SIZE": 20,
        "PHOTOVAULT_QUOTA_BYTES": 10 * 1024 * 1024,
        "PHOTOVAULT_MAX_UPLOAD_BYTES": 1024 * 1024,
        "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS": 1,
        # Redis alone, so cache tests see every hit and round trip; the in-process tier in
        # front of it has its own tests (tests/test_local_cache.py).
        "PHOTOVAULT_LOCAL_URL_CACHE_SIZE": 0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
async def app(database_url: str, redis_url: str, aws_env: None) -> AsyncIterator[App]:
    async with open_app(make_settings(database_url, redis_url)) as app:
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


@dataclass(frozen=True)
class User:
    id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def new_user() -> User:
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    return User(user_id, mint_token(JWT_SECRET, user_id))


@pytest.fixture
def alice() -> User:
    return new_user()


@pytest.fixture
def bob() -> User:
    return new_user()


async def put_bytes(
    http: httpx.AsyncClient, ticket: pb.CreateUploadUrlResponse, data: bytes
) -> httpx.Response:
    """PUTs the bytes as a browser would: to the URL, with exactly the required headers."""
    return await http.request(
        ticket.method, ticket.upload_url, content=data, headers=dict(ticket.required_headers)
    )


async def upload_photo(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    user: User,
    data: bytes,
    *,
    content_type: str = "image/jpeg",
    file_name: str = "photo.jpg",
    **confirm: Any,
) -> photo_pb2.Photo:
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name=file_name, content_type=content_type, size_bytes=len(data)
        ),
        metadata=user.metadata,
    )
    response = await put_bytes(http, ticket, data)
    assert response.status_code == 200, response.text
    confirmed = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id, **confirm),
        metadata=user.metadata,
    )
    return confirmed.photo
