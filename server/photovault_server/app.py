"""The composition root: builds the pool, clients and core once per process and closes them in
reverse order. Every entry point (serve, Lambda, sweep, tests, benchmarks) goes through
`open_app`; each backend can be handed in instead of built, and the clock too.

Each component is built from its own settings section, in one function here: `create_pool`
(DatabaseSettings), `open_read_router` (the replica, DATABASE_READ_URL), `open_url_cache`
(CacheSettings), `open_s3_store` (S3Settings); the core's
policy comes from LimitSettings.service_config() and AuthSettings.page_token_key()."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from msgspec import Struct, field
from msgspec.structs import replace

from photovault_server.adapters.cloudfront import CloudFrontUrls
from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.no_url_cache import NoUrlCache
from photovault_server.adapters.postgres import PostgresPhotoRepository
from photovault_server.adapters.postgres_albums import (
    PostgresAlbumRepository,
    PostgresShareLinkRepository,
)
from photovault_server.adapters.postgres_multipart import PostgresMultipartRepository
from photovault_server.adapters.read_router import (
    ReadRouter,
    RoutedAlbumRepository,
    RoutedPhotoRepository,
)
from photovault_server.adapters.redis_attempts import ATTEMPTS_TIMEOUT, RedisAttemptLimiter
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.adapters.redis_rate_limit import RedisRateLimiter
from photovault_server.adapters.redis_topology import Topology
from photovault_server.adapters.redis_topology import connect as connect_redis
from photovault_server.adapters.redis_write_marks import RedisWriteMarks
from photovault_server.adapters.s3 import S3ObjectStore
from photovault_server.adapters.s3_endpoints import s3_endpoint
from photovault_server.auth import TokenVerifier
from photovault_server.core import (
    ObjectStore,
    PageTokenCodec,
    PhotoRepository,
    PhotoService,
    ServiceConfig,
    UrlCache,
)
from photovault_server.core.ports import (
    AlbumRepository,
    AttemptLimiter,
    DownloadSigner,
    MultipartRepository,
    ShareLinkRepository,
)
from photovault_server.core.service import Clock, DownloadUrlsFactory, utc_now
from photovault_server.core.urls import DownloadUrls
from photovault_server.job_backlog import BacklogGauge
from photovault_server.settings import (
    AdmissionSettings,
    CacheSettings,
    CdnSettings,
    DatabaseSettings,
    S3Settings,
    Settings,
    SettingsError,
)
from photovault_server.tracing import NO_TRACING, Tracing, start_tracing
from photovault_server.transport.admission import Admission
from photovault_server.transport.rpc_stats import RpcStats


class Backends(Struct, frozen=True):
    """The ports the core runs on. `signer` signs private download URLs when it is not the
    store itself (a CDN)."""

    repository: PhotoRepository
    store: ObjectStore
    url_cache: UrlCache
    signer: DownloadSigner | None = None
    # Multipart uploads' rows (None: multipart uploads refused).
    multipart: MultipartRepository | None = None
    # Albums, share links and the share links' password attempts (None: those RPCs refused).
    albums: AlbumRepository | None = None
    share_links: ShareLinkRepository | None = None
    attempts: AttemptLimiter | None = None


def build_service(
    backends: Backends,
    config: ServiceConfig,
    *,
    page_token_key: bytes,
    clock: Clock = utc_now,
    download_urls: DownloadUrlsFactory = DownloadUrls,
) -> PhotoService:
    """The core on the given ports: how every PhotoService is made (the app, the benchmarks'
    variants; the in-memory test harness can use it with its fakes)."""
    return PhotoService(
        repo=backends.repository,
        store=backends.store,
        cache=backends.url_cache,
        config=config,
        page_tokens=PageTokenCodec(page_token_key),
        clock=clock,
        download_urls=download_urls,
        signer=backends.signer,
        multipart=backends.multipart,
        albums=backends.albums,
        share_links=backends.share_links,
        attempts=backends.attempts,
    )


def cdn_signer(settings: CdnSettings) -> CloudFrontUrls | None:
    """CloudFront signed URLs when the CDN is configured; the key is checked now, so that a bad
    key stops the start-up rather than a request (reading a key file is the only I/O)."""
    if not settings.cdn_enabled:
        return None
    from photovault_server.adapters.cloudfront import CdnKeyError, CloudFrontSigner

    pem = (
        settings.cdn_private_key.encode()
        if settings.cdn_private_key
        else Path(settings.cdn_private_key_file).read_bytes()
    )
    signer = CloudFrontSigner(settings.cdn_key_pair_id, pem)
    try:
        signer.check()
    except CdnKeyError as exc:
        raise SettingsError(
            f"invalid configuration:\n  PHOTOVAULT_CDN_PRIVATE_KEY: {exc}"
        ) from None
    return CloudFrontUrls(settings.cdn_base_url, signer)


class App(Struct, frozen=True):
    settings: Settings
    service: PhotoService
    verifier: TokenVerifier
    pool: asyncpg.Pool
    # The ports the service runs on (the URL cache is the outermost tier in use).
    backends: Backends
    # The Redis adapter, for its counters and breaker (None with PHOTOVAULT_URL_CACHE=off or a
    # cache handed in), and the in-process tier in front of it (None when switched off).
    redis_cache: RedisUrlCache | None
    local_cache: TieredUrlCache | None = None
    clock: Clock = utc_now
    # Calls by method, code and transport, shared by every transport of the process.
    rpc_stats: RpcStats = field(default_factory=RpcStats)
    tracing: Tracing = NO_TRACING
    # The cap on calls in progress and the per-user rate, shared by every transport.
    admission: Admission = field(default_factory=Admission)
    # The processing queue's last reading (refreshed by `serve`, the worker Lambda).
    job_backlog: BacklogGauge = field(default_factory=BacklogGauge)
    # Reads on the replica (DATABASE_READ_URL), None without one.
    read_router: ReadRouter | None = None

    def build_service(
        self,
        *,
        store: ObjectStore | None = None,
        url_cache: UrlCache | None = None,
        clock: Clock | None = None,
        download_urls: DownloadUrlsFactory = DownloadUrls,
    ) -> PhotoService:
        """Another service on this app's backends and settings, some of them replaced."""
        backends = Backends(
            repository=self.backends.repository,
            store=store or self.backends.store,
            url_cache=url_cache or self.backends.url_cache,
            signer=self.backends.signer,
            multipart=self.backends.multipart,
            albums=self.backends.albums,
            share_links=self.backends.share_links,
            attempts=self.backends.attempts,
        )
        return build_service(
            backends,
            self.settings.service_config(),
            page_token_key=self.settings.page_token_key(),
            clock=clock or self.clock,
            download_urls=download_urls,
        )

    def with_service(self, service: PhotoService) -> App:
        """This app serving another service (which must share its backends' lifetimes)."""
        return replace(self, service=service)


def s3_config(settings: S3Settings) -> Any:
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


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, in place of asyncpg's default `SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`: a round trip to Postgres
    after every call, undoing session state this service never creates (no session advisory
    lock, LISTEN, SET or cursor WITH HOLD on a pooled connection; migrations lock on a
    connection of their own). asyncpg still rolls back a transaction left open before calling
    this, and a connection that died is still dropped."""


async def create_pool(settings: DatabaseSettings, *, replica: bool = False) -> asyncpg.Pool:
    """The primary's pool, or with `replica` the read replica's (connected on first use, so
    that the service starts while the replica is down)."""
    return await asyncpg.create_pool(
        settings.database_read_url if replica else settings.database_url,
        min_size=0 if replica else settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        statement_cache_size=settings.db_statement_cache_size,
        command_timeout=settings.db_command_timeout_seconds,
        reset=_keep_session,
    )


class UrlCaches(Struct, frozen=True):
    """The cache the core uses, and the adapters behind it (for their counters)."""

    outer: UrlCache
    redis: RedisUrlCache | None = None
    local: TieredUrlCache | None = None
    # The Redis client behind `redis` and its topology, for others to share (the rate limit).
    client: Any = None
    topology: Topology | None = None


def open_url_cache(settings: CacheSettings, stack: AsyncExitStack) -> UrlCaches:
    """Redis, with the in-process tier in front when sized; NoUrlCache when switched off. The
    Redis client is closed by `stack`."""
    if settings.url_cache == "off":
        return UrlCaches(NoUrlCache())
    redis, topology = connect_redis(
        settings.redis_url,
        mode=settings.redis_mode,
        timeout=settings.redis_timeout.total_seconds(),
    )
    stack.push_async_callback(redis.aclose)
    stack.push_async_callback(topology.aclose)
    shared = RedisUrlCache(redis, timeout=settings.redis_timeout, topology=topology)
    if not settings.local_url_cache_size:
        return UrlCaches(shared, redis=shared, client=redis, topology=topology)
    local = TieredUrlCache(
        shared,
        maxsize=settings.local_url_cache_size,
        max_age=timedelta(seconds=settings.local_url_cache_seconds),
    )
    return UrlCaches(local, redis=shared, local=local, client=redis, topology=topology)


async def open_attempt_limiter(cache: CacheSettings, stack: AsyncExitStack) -> RedisAttemptLimiter:
    """Share link password attempts, on a Redis client of their own: the URL cache's client
    gives up after PHOTOVAULT_REDIS_TIMEOUT_MS (its path fails open), while these fail closed,
    so they wait for a slow Redis up to ATTEMPTS_TIMEOUT and refuse only on an outage."""
    seconds = ATTEMPTS_TIMEOUT.total_seconds()
    client, topology = connect_redis(cache.redis_url, mode=cache.redis_mode, timeout=seconds)
    stack.push_async_callback(client.aclose)
    stack.push_async_callback(topology.aclose)
    await topology.start()
    return RedisAttemptLimiter(client, timeout=ATTEMPTS_TIMEOUT, topology=topology)


async def open_admission(
    settings: AdmissionSettings, cache: CacheSettings, caches: UrlCaches, stack: AsyncExitStack
) -> Admission:
    """The concurrency cap, and the rate limit on the URL cache's Redis client (a client of
    its own when the cache is off or handed in), bounded by the same timeout."""
    limiter = None
    if settings.rate_limit_per_second:
        client, topology = caches.client, caches.topology
        if client is None or topology is None:
            client, topology = connect_redis(
                cache.redis_url, mode=cache.redis_mode, timeout=cache.redis_timeout.total_seconds()
            )
            stack.push_async_callback(client.aclose)
            stack.push_async_callback(topology.aclose)
            await topology.start()
        limiter = RedisRateLimiter(
            client,
            per_second=settings.rate_limit_per_second,
            burst=settings.effective_rate_limit_burst,
            timeout=cache.redis_timeout,
            topology=topology,
        )
    return Admission(max_concurrent_calls=settings.max_concurrent_calls, rate_limiter=limiter)


async def open_read_router(
    settings: Settings, primary: asyncpg.Pool, caches: UrlCaches, stack: AsyncExitStack
) -> ReadRouter | None:
    """The replica's pool and the router in front of both pools (None without
    DATABASE_READ_URL); the write marks on the URL cache's Redis client (one of their own
    when the cache is off or handed in), bounded by the Redis timeout."""
    if not settings.database_read_url:
        return None
    replica = await create_pool(settings, replica=True)
    stack.push_async_callback(replica.close)
    client, topology = caches.client, caches.topology
    if client is None or topology is None:
        client, topology = connect_redis(
            settings.redis_url,
            mode=settings.redis_mode,
            timeout=settings.redis_timeout.total_seconds(),
        )
        stack.push_async_callback(client.aclose)
        stack.push_async_callback(topology.aclose)
        await topology.start()
    return ReadRouter(
        primary,
        replica,
        marks=RedisWriteMarks(client, timeout=settings.redis_timeout),
        max_lag=timedelta(milliseconds=settings.db_read_max_lag_ms),
    )


def open_s3_store(
    settings: S3Settings, stack: AsyncExitStack, tracing: Tracing = NO_TRACING
) -> S3ObjectStore:
    """The store signs without a client when it can; the client, built on first need, is
    closed by `stack`."""
    credentials = settings.environment_credentials()

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

    return S3ObjectStore(
        open_s3_client,
        bucket=settings.bucket,
        endpoint=s3_endpoint(
            settings.bucket,
            settings.aws_region,
            settings.effective_addressing_style(),
            settings.s3_endpoint_url,
        ),
        credentials=credentials,
        temporary_credentials_cap=settings.temporary_credentials_cap,
        tracing=tracing,
    )


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    repository: PhotoRepository | None = None,
    store: ObjectStore | None = None,
    url_cache: UrlCache | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[App]:
    """`clock` is for tests and benchmarks that simulate the passing of time; a backend handed
    in is used instead of the one the settings describe (the pool is built regardless: it is
    lazy, and the App's runtime gauges and Lambda's reconnects read it); `tracing` replaces
    the OTLP tracing the settings describe (tests hand in an in-memory exporter's)."""
    async with AsyncExitStack() as stack:
        if tracing is None:
            tracing = start_tracing(
                settings.otel_exporter_otlp_endpoint, settings.otel_service_name
            )
        stack.callback(tracing.shutdown)
        pool = await create_pool(settings)
        stack.push_async_callback(pool.close)
        caches = UrlCaches(url_cache) if url_cache is not None else open_url_cache(settings, stack)
        if caches.redis is not None:
            await caches.redis.topology.start()  # the cluster's slot map, off the request path
        acquire_timeout = settings.db_acquire_timeout_ms / 1000
        router = await open_read_router(settings, pool, caches, stack)
        if repository is None:
            repository = (
                RoutedPhotoRepository(router, acquire_timeout=acquire_timeout)
                if router is not None
                else PostgresPhotoRepository(pool, acquire_timeout=acquire_timeout)
            )
        backends = Backends(
            repository=repository,
            store=store or open_s3_store(settings, stack, tracing),
            url_cache=caches.outer,
            signer=cdn_signer(settings),
            multipart=PostgresMultipartRepository(pool, acquire_timeout=acquire_timeout),
            albums=RoutedAlbumRepository(router, acquire_timeout=acquire_timeout)
            if router is not None
            else PostgresAlbumRepository(pool, acquire_timeout=acquire_timeout),
            share_links=PostgresShareLinkRepository(pool, acquire_timeout=acquire_timeout),
            attempts=await open_attempt_limiter(settings, stack),
        )
        service = build_service(
            backends,
            settings.service_config(),
            page_token_key=settings.page_token_key(),
            clock=clock,
        )
        yield App(
            settings=settings,
            service=service,
            verifier=TokenVerifier(settings.auth_config()),
            pool=pool,
            backends=backends,
            redis_cache=caches.redis,
            local_cache=caches.local,
            clock=clock,
            tracing=tracing,
            admission=await open_admission(settings, settings, caches, stack),
            read_router=router,
        )
