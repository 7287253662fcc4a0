"""Each port's implementations, one fixture per port parametrised over them, so that a contract
test is written once against the Protocol and runs against the real adapter and the fake alike.

The real ones run on the session's backends: a fresh Postgres database (`database_url`), the
test Redis database (`redis_url`) and moto's S3 server (`s3_endpoint`). Tests isolate themselves
by fresh owner ids and key prefixes, never by truncating what other tests wrote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aioboto3
import asyncpg
import pytest
from redis.asyncio import Redis

from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.postgres import PostgresPhotoRepository
from photovault_server.adapters.postgres_albums import (
    PostgresAlbumRepository,
    PostgresShareLinkRepository,
)
from photovault_server.adapters.postgres_multipart import PostgresMultipartRepository
from photovault_server.adapters.read_router import ReadRouter, RoutedPhotoRepository
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.adapters.s3 import S3ObjectStore
from photovault_server.app import s3_config
from photovault_server.core.ports import (
    AlbumRepository,
    MultipartRepository,
    PhotoRepository,
    ShareLinkRepository,
)
from photovault_server.settings import load_settings
from tests.support.clock import FakeClock
from tests.support.contracts import CacheUnderTest, StoreUnderTest
from tests.support.fakes import (
    InMemoryAlbumRepository,
    InMemoryMultipartRepository,
    InMemoryObjectStore,
    InMemoryPhotoRepository,
    InMemoryShareLinkRepository,
    InMemoryUrlCache,
)
from tests.support.settings import BUCKET, JWT_SECRET, REGION


@pytest.fixture(scope="session")
async def postgres_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    # Bigger than any gather in the suites, so that concurrent calls really run concurrently.
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=12)
    yield pool
    await pool.close()


@pytest.fixture(params=["postgres", "routed", "in-memory"])
def repository(request: pytest.FixtureRequest) -> PhotoRepository:
    if request.param == "postgres":
        return PostgresPhotoRepository(request.getfixturevalue("postgres_pool"))
    if request.param == "routed":
        # The read router's repository keeps the contract: here with the database as its own
        # "replica" (no replay position: reads of users without a recent write go there);
        # tests/test_read_replica.py runs it on a real streaming replica.
        pool = request.getfixturevalue("postgres_pool")
        return RoutedPhotoRepository(ReadRouter(pool, pool))
    return InMemoryPhotoRepository()


@pytest.fixture(params=["postgres", "in-memory"])
def multipart_repository(
    request: pytest.FixtureRequest,
) -> tuple[PhotoRepository, MultipartRepository]:
    """The multipart rows and the pending uploads they belong to, on one storage."""
    if request.param == "postgres":
        both = PostgresMultipartRepository(request.getfixturevalue("postgres_pool"))
        return both, both
    repo = InMemoryPhotoRepository()
    return repo, InMemoryMultipartRepository(repo)


@pytest.fixture(params=["postgres", "in-memory"])
def album_repositories(
    request: pytest.FixtureRequest,
) -> tuple[PhotoRepository, AlbumRepository, ShareLinkRepository]:
    """Photos, albums and share links on one storage."""
    if request.param == "postgres":
        pool = request.getfixturevalue("postgres_pool")
        return (
            PostgresPhotoRepository(pool),
            PostgresAlbumRepository(pool),
            PostgresShareLinkRepository(pool),
        )
    repo = InMemoryPhotoRepository()
    albums = InMemoryAlbumRepository(repo)
    return repo, albums, InMemoryShareLinkRepository(repo, albums)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


async def _sleep_until(moment: datetime) -> None:
    # Redis and the local tier evict by the wall clock (to the millisecond): wait it out.
    # A loop, not an event: nothing but the wall clock signals the moment.
    while (left := (moment - datetime.now(UTC)).total_seconds()) >= 0:  # noqa: ASYNC110
        await asyncio.sleep(left + 0.005)


@pytest.fixture(scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture(params=["redis", "tiered-over-redis", "in-memory"])
def url_cache(request: pytest.FixtureRequest) -> CacheUnderTest:
    if request.param == "in-memory":
        clock = FakeClock(_wall_clock().replace(microsecond=0))

        async def advance_to(moment: datetime) -> None:
            clock.now = moment

        return CacheUnderTest(InMemoryUrlCache(clock), clock, advance_to)
    # A generous timeout: a slow CI machine must not turn a write into a fail-open miss.
    redis = RedisUrlCache(request.getfixturevalue("redis_client"), timeout=timedelta(seconds=5))
    cache = redis if request.param == "redis" else TieredUrlCache(redis)
    return CacheUnderTest(cache, _wall_clock, _sleep_until)


@pytest.fixture(scope="session")
async def s3_store(s3_endpoint: str, aws_env: None) -> AsyncIterator[StoreUnderTest]:
    settings = load_settings(
        PHOTOVAULT_BUCKET=BUCKET,
        PHOTOVAULT_JWT_SECRET=JWT_SECRET,
        PHOTOVAULT_S3_ADDRESSING_STYLE="path",
        AWS_REGION=REGION,
    )
    session = aioboto3.Session()
    async with session.client(
        "s3", region_name=REGION, endpoint_url=s3_endpoint, config=s3_config(settings)
    ) as client:

        async def the_client() -> object:
            return client

        async def put(key: str, data: bytes, content_type: str) -> None:
            await client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)

        async def put_part(key: str, s3_upload_id: str, number: int, data: bytes) -> None:
            await client.upload_part(
                Bucket=BUCKET, Key=key, UploadId=s3_upload_id, PartNumber=number, Body=data
            )

        yield StoreUnderTest(
            S3ObjectStore(the_client, bucket=BUCKET), put, _wall_clock, put_part=put_part
        )


@pytest.fixture(params=["s3-on-moto", "in-memory"])
def object_store(request: pytest.FixtureRequest) -> StoreUnderTest:
    if request.param == "s3-on-moto":
        store: StoreUnderTest = request.getfixturevalue("s3_store")
        return store
    clock = FakeClock(_wall_clock())
    fake = InMemoryObjectStore(clock)

    async def put(key: str, data: bytes, content_type: str) -> None:
        fake.put(key, data, content_type)

    async def put_part(key: str, s3_upload_id: str, number: int, data: bytes) -> None:
        fake.put_part(s3_upload_id, number, data)

    return StoreUnderTest(fake, put, clock, put_part=put_part)
