"""ListPhotos, a page of 100, over real gRPC on loopback with real Postgres and Redis:

- floor:       URLs omitted (the URL layer replaced by a no-op): metadata only;
- seed's way:  no cache, botocore's generate_presigned_url once per photo;
- fast, no cache: the fast signer, every URL signed on every call;
- cold cache:  Redis flushed before each call (MGET misses, one batch signed, one pipelined SET);
- warm Redis:  every URL from Redis (one MGET), the in-process tier off;
- warm in-process tier: the default configuration, every URL from the process's own tier.

Also: Redis round trips per page, and the signatures a simulated day of listings costs with and
without the cache (fake clock, no gRPC)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import asyncpg
import grpc
from redis.asyncio import Redis

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.adapters.migrations import ensure_database, migrate
from photovault_server.adapters.no_url_cache import NoUrlCache
from photovault_server.adapters.s3 import S3ObjectStore
from photovault_server.app import App, open_app
from photovault_server.auth import mint_token
from photovault_server.core.models import Photo, ServedPhoto, SignedUrl
from photovault_server.core.urls import DownloadUrls
from photovault_server.logs import configure_logging
from photovault_server.server import running_grpc_server
from photovault_server.settings import Settings, load_settings

DATABASE_URL = os.environ.get(
    "PHOTOVAULT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/photovault_bench"
)
REDIS_URL = os.environ.get("PHOTOVAULT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "bench-secret-" + "x" * 32
USER = "bench-user"
PAGE = 100
FLOOR = "URLs omitted (floor)"
SEED = "seed's way: botocore per photo, no cache"


@dataclass(frozen=True)
class Latency:
    name: str
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.samples_ms, n=20)[-1]


@dataclass(frozen=True)
class ListResults:
    latencies: list[Latency]
    round_trips_cold: int
    round_trips_warm: int
    day_signatures_cached: int
    day_signatures_uncached: int
    day_calls: int


class BotocorePerPhotoStore(S3ObjectStore):
    """The seed's way: botocore signs each URL on its own, nothing cached."""

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        seconds = int((expire_at - signed_at).total_seconds())
        urls = []
        client = await self.client()
        for key in keys:
            url = await client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
            )
            urls.append(SignedUrl(url, datetime.now(UTC) + timedelta(seconds=seconds)))
        return urls


class UrlsOmitted(DownloadUrls):
    """The floor: photos handed back without URLs, so a call costs its metadata alone."""

    async def attach(
        self, photos: Sequence[Photo], now: datetime, variants: Collection[str] = ()
    ) -> list[ServedPhoto]:
        return [ServedPhoto(p, "", None) for p in photos]


def bench_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        # Signing needs credentials, not a reachable S3: listing never calls it.
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK0000000"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "bench-secret-key"),
        "PHOTOVAULT_BUCKET": "photovault-bench",
        "AWS_REGION": "eu-west-1",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "PHOTOVAULT_JWT_SECRET": SECRET,
        "PHOTOVAULT_DB_POOL_MIN_SIZE": 2,
    }
    values.update(overrides)
    return load_settings(**values)


async def prepare_database() -> None:
    """A fresh bench database with PAGE photos for one user (rows only: listing needs no bytes)."""
    await ensure_database(DATABASE_URL)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await migrate(conn)
        await conn.execute("DELETE FROM photos; DELETE FROM uploads; DELETE FROM accounts;")
        await conn.execute("INSERT INTO accounts (user_id, create_time) VALUES ($1, now())", USER)
        await conn.execute(
            """
            INSERT INTO photos (id, owner_id, object_key, file_name, content_type, size_bytes,
                                title, description, tags, visibility, create_time, update_time)
            SELECT gen_random_uuid(), $1,
                   'users/' || $1 || '/photos/' || gen_random_uuid() || '.jpg',
                   'IMG_' || i || '.jpg', 'image/jpeg', 1000000 + i, 'Photo ' || i,
                   'A photo in the benchmark', ARRAY['bench', 'tag' || (i % 5)], 1,
                   now() - i * interval '1 minute', now()
              FROM generate_series(1, $2::int) i
            """,
            USER,
            PAGE,
        )
        await conn.execute("ANALYZE photos")
    finally:
        await conn.close()


@asynccontextmanager
async def stub_for(app: App) -> AsyncIterator[pb_grpc.PhotoServiceAsyncStub]:
    async with (
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield pb_grpc.PhotoServiceStub(channel)


# A string: PhotoServiceAsyncStub exists in the .pyi stubs only.
Variant: TypeAlias = (
    "tuple[str, pb_grpc.PhotoServiceAsyncStub, Callable[[], Awaitable[None]] | None]"
)


async def time_interleaved(variants: list[Variant], iterations: int) -> list[Latency]:
    """Round by round, one call per variant in each round, so that drift in the machine's load
    hits every variant alike (these machines are noisy; the ratios are what counts)."""
    metadata = (("authorization", f"Bearer {mint_token(SECRET, USER)}"),)
    request = pb.ListPhotosRequest(page_size=PAGE)
    for _, stub, _ in variants:  # warm-up: connections, statement cache
        for _ in range(max(iterations // 10, 5)):
            await stub.ListPhotos(request, metadata=metadata)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(iterations):
        for name, stub, before_each in variants:
            if before_each is not None:
                await before_each()
            started = time.perf_counter()
            response = await stub.ListPhotos(request, metadata=metadata)
            samples[name].append((time.perf_counter() - started) * 1000)
            assert len(response.photos) == PAGE
    return [Latency(name, values) for name, values in samples.items()]


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def simulated_day(app: App, calls_per_day: int) -> tuple[int, int]:
    """Signatures for `calls_per_day` listings of the page spread over 24 h (fake clock):
    with the Redis cache, and without any cache."""
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    # From now on: the cache's entries expire by Redis's own clock (PXAT), so a simulated day in
    # the past would never be stored; in the future, the core's clock decides what is stale.
    start = datetime.now(UTC)
    step = timedelta(days=1) / calls_per_day
    results = []
    for cache in (app.backends.url_cache, NoUrlCache()):
        clock = _Clock(start)
        service = app.build_service(url_cache=cache, clock=clock)
        for _ in range(calls_per_day):
            await service.list_photos(USER, page_size=PAGE)
            clock.now += step
        results.append(service.url_stats.signatures)
    return results[0], results[1]


async def measure(iterations: int = 300, calls_per_day: int = 1440) -> ListResults:
    configure_logging("WARNING", "json")
    await prepare_database()
    redis = Redis.from_url(REDIS_URL)

    async def flush() -> None:
        await redis.flushdb()

    async with (
        open_app(bench_settings(PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0)) as app,
        open_app(bench_settings()) as tiered,
    ):
        store = app.backends.store
        assert isinstance(store, S3ObjectStore)
        seed_store = BotocorePerPhotoStore(store.client, bucket="photovault-bench")
        no_cache = NoUrlCache()
        floor = app.build_service(url_cache=no_cache, download_urls=UrlsOmitted)
        seed = app.build_service(store=seed_store, url_cache=no_cache)
        fast = app.build_service(url_cache=no_cache)
        variants: list[tuple[str, App, Callable[[], Awaitable[None]] | None]] = [
            (FLOOR, app.with_service(floor), None),
            (SEED, app.with_service(seed), None),
            ("fast signer, no cache", app.with_service(fast), None),
            ("cold cache (Redis flushed before each call)", app, flush),
            ("warm Redis (in-process tier off)", app, None),
            ("warm in-process tier (default)", tiered, None),
        ]
        async with AsyncExitStack() as stubs:
            running = [
                (name, await stubs.enter_async_context(stub_for(variant)), setup)
                for name, variant, setup in variants
            ]
            latencies = await time_interleaved(running, iterations)

        stats = app.redis_cache.stats if app.redis_cache else None
        assert stats is not None
        async with stub_for(app) as stub:
            metadata = (("authorization", f"Bearer {mint_token(SECRET, USER)}"),)
            await flush()
            trips = stats.round_trips
            await stub.ListPhotos(pb.ListPhotosRequest(page_size=PAGE), metadata=metadata)
            cold = stats.round_trips - trips
            trips = stats.round_trips
            await stub.ListPhotos(pb.ListPhotosRequest(page_size=PAGE), metadata=metadata)
            warm = stats.round_trips - trips
        cached, uncached = await simulated_day(app, calls_per_day)
    await redis.aclose()
    return ListResults(latencies, cold, warm, cached, uncached, calls_per_day)


def report(results: ListResults) -> None:
    by_name = {lat.name: lat for lat in results.latencies}
    seed = by_name[SEED].p50
    floor = by_name[FLOOR].p50
    for lat in results.latencies:
        print(
            f"{lat.name:46s} p50 {lat.p50:7.2f} ms  p95 {lat.p95:7.2f} ms  "
            f"{seed / lat.p50:5.1f}x seed  {lat.p50 / floor:5.2f}x floor"
        )
    print(
        "Redis round trips per page: "
        f"cold {results.round_trips_cold}, warm {results.round_trips_warm}"
    )
    saved = 1 - results.day_signatures_cached / results.day_signatures_uncached
    print(
        f"simulated day ({results.day_calls} listings of {PAGE}): "
        f"{results.day_signatures_cached} signatures with the cache vs "
        f"{results.day_signatures_uncached} without ({saved:.1%} fewer)"
    )


if __name__ == "__main__":
    report(asyncio.run(measure()))
