"""The composition root: builds the pool, clients and core once per process and closes them in
reverse order. Every entry point (serve, Lambda, tests, benchmarks) goes through `open_app`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.postgres import PostgresPhotoRepository
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.adapters.s3 import S3ObjectStore
from photovault_server.adapters.s3_endpoints import environment_credentials, s3_endpoint
from photovault_server.auth import TokenVerifier
from photovault_server.core import PageTokenCodec, PhotoService, UrlCache
from photovault_server.core.models import SignedUrl
from photovault_server.core.service import Clock, utc_now
from photovault_server.settings import Settings


@dataclass(frozen=True, slots=True)
class App:
    settings: Settings
    service: PhotoService
    verifier: TokenVerifier
    pool: asyncpg.Pool
    # The Redis adapter, for its counters and breaker (None with PHOTOVAULT_URL_CACHE=off),
    # and the in-process tier in front of it (None when switched off).
    redis_cache: RedisUrlCache | None
    local_cache: TieredUrlCache | None = None


class NoUrlCache:
    """PHOTOVAULT_URL_CACHE=off: every URL is signed afresh (the baseline in benchmarks)."""

    async def get_many(self, keys: object) -> dict[str, SignedUrl]:
        return {}

    async def put_many(
        self, entries: object, margin: timedelta, *, replace: object = ()
    ) -> dict[str, SignedUrl]:
        return {}

    async def delete_many(self, keys: object) -> None:
        return None


def s3_config(settings: Settings) -> Any:
    from botocore.config import Config

    return Config(
        # botocore would otherwise emit SigV2 query strings for us-east-1 presigns.
        signature_version="s3v4",
        s3={
            "addressing_style": settings.effective_addressing_style(),
            # The regional endpoint in us-east-1 too, as for every other region.
            "us_east_1_regional_endpoint": "regional",
        },
        # Presigned PUTs must not require SDK-computed checksums that a browser cannot send.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=3,
        read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=50,
    )


async def create_pool(settings: Settings) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        statement_cache_size=settings.db_statement_cache_size,
        command_timeout=settings.db_command_timeout_seconds,
    )


@asynccontextmanager
async def open_app(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[App]:
    """`clock` is for tests and benchmarks that simulate the passing of time."""
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings)
        stack.push_async_callback(pool.close)

        cache: UrlCache = NoUrlCache()
        redis_cache = local_cache = None
        if settings.url_cache == "redis":
            timeout = settings.redis_timeout_ms / 1000
            redis = Redis.from_url(
                settings.redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                health_check_interval=30,
            )
            stack.push_async_callback(redis.aclose)
            cache = redis_cache = RedisUrlCache(
                redis, timeout=timedelta(milliseconds=settings.redis_timeout_ms)
            )
            if settings.local_url_cache_size:
                cache = local_cache = TieredUrlCache(
                    redis_cache, maxsize=settings.local_url_cache_size
                )

        # Read now, like the settings: the client built later signs and calls with the same.
        credentials = environment_credentials(os.environ)

        async def open_s3_client() -> Any:
            # Imported and built on first need: ~0.4 s that listing photos does not need.
            import aioboto3

            keys = {}
            if credentials is not None:
                keys = {
                    "aws_access_key_id": credentials.access_key,
                    "aws_secret_access_key": credentials.secret_key,
                    "aws_session_token": credentials.token,
                }
            client = aioboto3.Session(**keys).client(
                "s3",
                region_name=settings.aws_region,
                endpoint_url=settings.s3_endpoint_url or None,
                config=s3_config(settings),
            )
            return await stack.enter_async_context(client)

        store = S3ObjectStore(
            open_s3_client,
            bucket=settings.bucket,
            endpoint=s3_endpoint(
                settings.bucket,
                settings.aws_region,
                settings.effective_addressing_style(),
                settings.s3_endpoint_url,
            ),
            credentials=credentials,
            temporary_credentials_cap=timedelta(
                seconds=settings.temporary_credentials_url_cap_seconds
            ),
        )
        service = PhotoService(
            repo=PostgresPhotoRepository(pool),
            store=store,
            cache=cache,
            config=settings.service_config(),
            page_tokens=PageTokenCodec(settings.page_token_key()),
            clock=clock,
        )
        yield App(
            settings=settings,
            service=service,
            verifier=TokenVerifier(settings.auth_config()),
            pool=pool,
            redis_cache=redis_cache,
            local_cache=local_cache,
        )
