"""The issued-URL cache end to end: the real gRPC server over a real channel, real Redis over
real sockets (a redis-server of this module's own, and per-test ones that the tests stop, pause
and restart), real Postgres, moto's S3. Checks the rules of docs/url-cache.md:
stable bytes within a signing window, never less than the margin of life left, invalidation on
delete and visibility changes, keys that cover what a URL points at but not who signed it,
fail-open with a
bounded cost when Redis is down or hung, one read and at most one write round trip per page,
garbage read as a miss."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2
from msgspec.structs import replace
from redis.asyncio import Redis

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App, open_app
from photovault_server.core.models import Photo, Visibility
from photovault_server.core.service import Clock, utc_now
from photovault_server.core.urls import UrlStats, cache_key
from photovault_server.server import running_grpc_server

from .support.clock import FakeClock
from .support.grpc_status import call_error
from .support.images import jpeg
from .support.listing import seed
from .support.redis_server import RedisServer, redis_server
from .support.settings import make_settings
from .support.users import User, new_user, upload_photo

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=3600)
MARGIN = timedelta(seconds=900)
WINDOW = TTL - MARGIN
# A correctness bound on fail-open (one 50 ms timeout per round trip, then the breaker), not a
# benchmark: generous on purpose.
CALL_BOUND_SECONDS = 1.0
BREAKER_COOLDOWN = 2.0


# --------------------------------------------------------------------------------------------
# helpers


@asynccontextmanager
async def serve(
    database_url: str, redis_url: str, *, clock: Clock = utc_now, **overrides: object
) -> AsyncIterator[tuple[App, pb_grpc.PhotoServiceAsyncStub]]:
    """A second server (as support.servers.server_with), with its own settings and clock."""
    settings = make_settings(database_url, redis_url, **overrides)
    async with (
        open_app(settings, clock=clock) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield app, pb_grpc.PhotoServiceStub(channel)


@pytest.fixture(scope="module")
def cache_redis() -> Iterator[RedisServer]:
    """This module's own redis-server: other test sessions on this machine flush the shared
    test Redis when they start, which would wipe entries between two calls here (and the
    concurrency test flushes it, which must not hit anyone else)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def cache_url(cache_redis: RedisServer) -> str:
    return cache_redis.url


@pytest.fixture(scope="module")
async def served(
    database_url: str, cache_url: str, aws_env: None
) -> AsyncIterator[tuple[App, pb_grpc.PhotoServiceAsyncStub]]:
    async with serve(database_url, cache_url) as pair:
        yield pair


@pytest.fixture(scope="module")
def app(served: tuple[App, pb_grpc.PhotoServiceAsyncStub]) -> App:
    """Overrides conftest's `app`: the same composition, on this module's Redis."""
    return served[0]


@pytest.fixture(scope="module")
def stub(served: tuple[App, pb_grpc.PhotoServiceAsyncStub]) -> pb_grpc.PhotoServiceAsyncStub:
    return served[1]


@pytest.fixture
async def redis(cache_url: str) -> AsyncIterator[Redis]:
    """A client of the cache's Redis, to look at and tamper with its entries."""
    client = Redis.from_url(cache_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, pause and restart."""
    with redis_server() as server:
        yield server


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def access_key_id(url: str) -> str:
    return query(url)["X-Amz-Credential"].split("/")[0]


def signed_at(url: str) -> datetime:
    return datetime.strptime(query(url)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def expire_of(photo: photo_pb2.Photo) -> datetime:
    assert photo.HasField("url_expire_time"), f"private photo {photo.id} without an expiry"
    return photo.url_expire_time.ToDatetime(tzinfo=UTC)


def entry(url: str, expire_time: datetime) -> bytes:
    """A cache entry as RedisUrlCache writes it: `<expire epoch ms>\\n<url>`."""
    return f"{int(expire_time.timestamp() * 1000)}\n{url}".encode()


def entry_url(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    return text.partition("\n")[2]


async def key_of(app: App, photo: Photo) -> str:
    return cache_key(await app.backends.store.url_scope(), photo)


async def core_photo(app: App, user: User, photo_id: str) -> Photo:
    photo = await app.backends.repository.get_photo(user.id, uuid.UUID(photo_id))
    assert photo is not None
    return photo


async def list_page(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, page_size: int = 100
) -> list[photo_pb2.Photo]:
    response = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=page_size), metadata=user.metadata
    )
    return list(response.photos)


async def urls_of(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, page_size: int = 100
) -> dict[str, str]:
    return {p.id: p.url for p in await list_page(stub, user, page_size)}


async def batch_urls(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, ids: list[str]
) -> dict[str, tuple[str, datetime]]:
    response = await stub.BatchGetPhotoUrls(
        pb.BatchGetPhotoUrlsRequest(photo_ids=ids), metadata=user.metadata
    )
    assert [u.photo_id for u in response.urls] == ids
    return {u.photo_id: (u.url, u.expire_time.ToDatetime(tzinfo=UTC)) for u in response.urls}


async def fetch_photo(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, photo_id: str
) -> photo_pb2.Photo:
    got = await stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=user.metadata)
    return got.photo


async def get_url(stub: pb_grpc.PhotoServiceAsyncStub, user: User, photo_id: str) -> str:
    got = await stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=user.metadata)
    return got.photo.url


async def set_visibility(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, photo_id: str, visibility: int
) -> photo_pb2.Photo:
    response = await stub.UpdatePhoto(
        pb.UpdatePhotoRequest(
            photo=photo_pb2.Photo(id=photo_id, visibility=visibility),  # type: ignore[arg-type]
            update_mask=field_mask_pb2.FieldMask(paths=["visibility"]),
        ),
        metadata=user.metadata,
    )
    assert response.photo.visibility == visibility
    return response.photo


def snapshot(stats: UrlStats) -> UrlStats:
    return replace(stats)


def delta(after: UrlStats, before: UrlStats) -> dict[str, int]:
    return {
        "hits": after.hits - before.hits,
        "misses": after.misses - before.misses,
        "signatures": after.signatures - before.signatures,
    }


async def clear_of_window_end(app: App, needed: float = 20.0) -> None:
    """Real-clock tests expect one signing window throughout: if the current window ends within
    `needed` seconds (rare: a window lasts lifetime - margin, 90 minutes by default), wait."""
    now = datetime.now(UTC)
    window = app.settings.service_config().urls.window(now)
    left = (window.expire_at - window.margin - now).total_seconds()
    if left < needed:
        await asyncio.sleep(left + 0.05)


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def wait_for_hits(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, user: User, *, within: float
) -> float:
    """Lists until the cache answers with hits again; returns how long that took."""
    assert app.redis_cache is not None
    started = time.monotonic()
    while True:
        before = app.service.url_stats.hits
        await list_page(stub, user)
        if app.service.url_stats.hits > before:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(
                f"no cache hits {within} s after Redis came back: "
                f"breaker {app.redis_cache.breaker.state}, {app.redis_cache.stats}"
            )
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------------------------
# 1. within a window: the same bytes from every RPC, served from the cache


async def test_same_window_gives_byte_identical_urls_from_the_cache(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    redis: Redis,
    alice: User,
) -> None:
    await clear_of_window_end(app)
    images = [jpeg(rgb=(i * 40, 10, 10)) for i in range(3)]
    for data in images:
        await upload_photo(stub, http, alice, data)

    first = await list_page(stub, alice)
    before = snapshot(app.service.url_stats)
    second = await list_page(stub, alice)
    listed = delta(app.service.url_stats, before)

    assert [p.id for p in second] == [p.id for p in first]
    assert [p.url for p in second] == [p.url for p in first]
    assert [expire_of(p) for p in second] == [expire_of(p) for p in first]
    assert listed == {"hits": 3, "misses": 0, "signatures": 0}

    ids = [p.id for p in first]
    expected = {p.id: (p.url, expire_of(p)) for p in first}
    for photo_id in ids:
        got = await fetch_photo(stub, alice, photo_id)
        assert (got.url, expire_of(got)) == expected[photo_id]
    assert await batch_urls(stub, alice, ids) == expected
    assert delta(app.service.url_stats, before)["signatures"] == 0

    # What Redis holds is exactly what was handed out, and the URLs work.
    for photo_id in ids:
        key = await key_of(app, await core_photo(app, alice, photo_id))
        assert entry_url(await redis.get(key)) == expected[photo_id][0]
    fetched = {(await http.get(url)).content for url, _ in expected.values()}
    assert fetched == set(images)


# --------------------------------------------------------------------------------------------
# 2. time passing (a simulated clock): never less than the margin of life left


async def test_urls_keep_the_margin_across_windows_with_a_simulated_clock(
    database_url: str, cache_url: str, aws_env: None, redis: Redis
) -> None:
    step = int(WINDOW.total_seconds())
    # The clock starts 1 s into the next window (in the future, so that the entries' wall-clock
    # PXAT is in the future too and Redis keeps them).
    first_window = _EPOCH + timedelta(seconds=(int(time.time()) // step + 1) * step)
    clock = FakeClock(first_window + timedelta(seconds=1))
    async with serve(
        database_url,
        cache_url,
        clock=clock,
        PHOTOVAULT_URL_TTL_SECONDS=int(TTL.total_seconds()),
        PHOTOVAULT_CACHE_MARGIN_SECONDS=int(MARGIN.total_seconds()),
    ) as (app, stub):
        user = new_user()
        photos = await seed(app, user, 3, visibility=Visibility.PRIVATE)
        ids = [str(p.id) for p in photos]
        keys = {str(p.id): await key_of(app, p) for p in photos}
        stats = app.service.url_stats

        # Cold: signed in the first window, cached.
        cold = {p.id: p for p in await list_page(stub, user)}
        window1 = {pid: p.url for pid, p in cold.items()}
        for pid, p in cold.items():
            assert signed_at(p.url) == first_window
            assert expire_of(p) == first_window + TTL
            assert entry_url(await redis.get(keys[pid])) == window1[pid]

        # Last second of the window: the cached URL still has margin + 1 s left -> a hit.
        clock.now = first_window + WINDOW - timedelta(seconds=1)
        before = snapshot(stats)
        late = {p.id: p for p in await list_page(stub, user)}
        assert {pid: p.url for pid, p in late.items()} == window1
        assert delta(stats, before) == {"hits": 3, "misses": 0, "signatures": 0}
        assert all(expire_of(p) - clock.now >= MARGIN for p in late.values())

        # One second later it would have margin - 1 s left. Redis still holds it (its PXAT is
        # wall-clock and the wall clock has not moved), so only the core's own check keeps it
        # from being handed out.
        clock.now = first_window + WINDOW + timedelta(seconds=1)
        for pid in ids:
            assert entry_url(await redis.get(keys[pid])) == window1[pid]
            assert await redis.pttl(keys[pid]) > 0
        before = snapshot(stats)
        after = {p.id: p for p in await list_page(stub, user)}
        assert delta(stats, before) == {"hits": 0, "misses": 3, "signatures": 3}
        for pid, p in after.items():
            assert p.url != window1[pid]
            assert signed_at(p.url) == first_window + WINDOW
            assert expire_of(p) - clock.now >= MARGIN
        for pid in ids:
            assert await get_url(stub, user, pid) == after[pid].url
            assert (await batch_urls(stub, user, [pid]))[pid][0] == after[pid].url

        # Then on, forward only, across two more window ends, at many points: every URL handed
        # out by any RPC has at least the margin left, was signed in the window `now` falls in,
        # and there is one URL per photo per window. Redis's clock stands still meanwhile (as
        # one lagging behind ours would), so each window's first call finds the previous
        # window's entry still there and too old: one signature per photo per window, then
        # hits, shows the cache replaced it rather than deferring to it for the whole window.
        before = snapshot(stats)
        seen: dict[tuple[str, int], set[str]] = defaultdict(set)
        for t in range(step + 1, 3 * step + 700, 97):
            clock.now = first_window + timedelta(seconds=t)
            index = t // step
            handed_out: list[tuple[str, str, datetime]] = []
            for p in await list_page(stub, user):
                handed_out.append((p.id, p.url, expire_of(p)))
            got = await fetch_photo(stub, user, ids[0])
            handed_out.append((got.id, got.url, expire_of(got)))
            for pid, (url, expire) in (await batch_urls(stub, user, ids)).items():
                handed_out.append((pid, url, expire))
            for pid, url, expire in handed_out:
                assert expire - clock.now >= MARGIN, (t, pid)
                assert expire - clock.now <= TTL, (t, pid)
                assert signed_at(url) == first_window + index * WINDOW, (t, pid)
                lifetime = timedelta(seconds=int(query(url)["X-Amz-Expires"]))
                assert signed_at(url) + lifetime == expire
                seen[(pid, index)].add(url)
        assert {index for _, index in seen} == {1, 2, 3}
        for pid in ids:
            assert seen[(pid, 1)] == {after[pid].url}
            per_window = [seen[(pid, i)] for i in (1, 2, 3)]
            assert all(len(urls) == 1 for urls in per_window), per_window
            assert len(set.union(*per_window)) == 3  # a new URL in each window
        assert delta(stats, before)["signatures"] == len(ids) * 2


# --------------------------------------------------------------------------------------------
# 3. invalidation: delete and visibility changes


async def test_delete_drops_the_cached_url(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    redis: Redis,
    alice: User,
) -> None:
    await clear_of_window_end(app)
    photo = await upload_photo(stub, http, alice, jpeg())
    core = await core_photo(app, alice, photo.id)
    key = await key_of(app, core)
    url = await get_url(stub, alice, photo.id)
    assert entry_url(await redis.get(key)) == url

    # A marked entry: if it is ever handed out again, the test sees it.
    planted = url + "&planted=delete"
    await redis.set(key, entry(planted, datetime.now(UTC) + TTL), px=600_000)
    assert await get_url(stub, alice, photo.id) == planted  # control: served from Redis

    await stub.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=alice.metadata)

    assert await redis.exists(key) == 0
    error = await call_error(
        stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await call_error(
        stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=[photo.id]), metadata=alice.metadata
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await list_page(stub, alice) == []
    async for other in redis.scan_iter(match="pv:url:*"):
        assert core.object_key not in (entry_url(await redis.get(other)) or "")


async def test_visibility_changes_drop_the_cached_url(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    redis: Redis,
    alice: User,
) -> None:
    await clear_of_window_end(app)
    photo = await upload_photo(stub, http, alice, jpeg())
    core = await core_photo(app, alice, photo.id)
    private_key = await key_of(app, core)
    public_key = await key_of(app, replace(core, visibility=Visibility.PUBLIC))
    assert private_key != public_key
    url = await get_url(stub, alice, photo.id)
    far = datetime.now(UTC) + TTL

    planted_private = url + "&planted=private"
    await redis.set(private_key, entry(planted_private, far), px=600_000)
    assert await get_url(stub, alice, photo.id) == planted_private  # control

    public = await set_visibility(stub, alice, photo.id, photo_pb2.VISIBILITY_PUBLIC)
    assert await redis.exists(private_key) == 0
    assert public.url != planted_private
    assert await get_url(stub, alice, photo.id) != planted_private

    # No public base URL is configured, so PUBLIC photos are presigned and cached too.
    planted_public = url + "&planted=public"
    await redis.set(public_key, entry(planted_public, far), px=600_000)
    assert await get_url(stub, alice, photo.id) == planted_public  # control

    private = await set_visibility(stub, alice, photo.id, photo_pb2.VISIBILITY_PRIVATE)
    assert await redis.exists(public_key) == 0
    handed_out = [
        private.url,
        await get_url(stub, alice, photo.id),
        (await urls_of(stub, alice))[photo.id],
        (await batch_urls(stub, alice, [photo.id]))[photo.id][0],
    ]
    assert not {planted_private, planted_public} & set(handed_out)
    # Freshly signed in the same window: the same bytes as the very first URL.
    assert set(handed_out) == {url}
    assert entry_url(await redis.get(private_key)) == url


# --------------------------------------------------------------------------------------------
# 4. other credentials: every process of a fleet shares one entry per object


async def test_a_process_with_other_credentials_hands_out_the_same_urls(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    redis: Redis,
    database_url: str,
    cache_url: str,
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Role credentials give every Lambda environment, pod or task its own access key and
    session token: the cache key leaves them out, so another process hits the first one's
    entries and hands out its URLs, byte for byte, while they have the margin left."""
    await clear_of_window_end(app)
    data = [jpeg(rgb=(10, 10, i * 60)) for i in range(2)]
    for image in data:
        await upload_photo(stub, http, alice, image)
    first = await urls_of(stub, alice)
    assert {access_key_id(u) for u in first.values()} == {"test"}
    keys = {pid: await key_of(app, await core_photo(app, alice, pid)) for pid in first}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "OTHERPROCESSKEY1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "other-session-token")
    async with serve(database_url, cache_url) as (other, other_stub):
        before = snapshot(other.service.url_stats)
        assert await urls_of(other_stub, alice) == first
        handed_out = [await get_url(other_stub, alice, pid) for pid in first]
        handed_out += [u for u, _ in (await batch_urls(other_stub, alice, list(first))).values()]
        assert delta(other.service.url_stats, before) == {
            "hits": 3 * len(first),
            "misses": 0,
            "signatures": 0,
        }
        assert {pid: await key_of(other, await core_photo(other, alice, pid)) for pid in first} == (
            keys
        )
        bodies = {(await http.get(u)).content for u in first.values()}

    assert set(handed_out) == set(first.values())
    assert bodies == set(data)
    for pid in first:
        assert entry_url(await redis.get(keys[pid])) == first[pid]


# --------------------------------------------------------------------------------------------
# 5. users never share entries


async def test_users_never_share_entries(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User, bob: User
) -> None:
    await clear_of_window_end(app)
    # The same key pattern for both: users/{uid}/photos/{i}.jpg
    alice_photos = await seed(app, alice, 3, visibility=Visibility.PRIVATE)
    bob_photos = await seed(app, bob, 3, visibility=Visibility.PRIVATE)

    rounds: list[tuple[dict[str, str], dict[str, str]]] = []
    for _ in range(2):  # cold, then warm
        rounds.append((await urls_of(stub, alice), await urls_of(stub, bob)))
    assert rounds[0] == rounds[1]
    a_urls, b_urls = rounds[1]
    assert len(a_urls) == len(b_urls) == 3
    assert not set(a_urls.values()) & set(b_urls.values())
    for urls, own, other in ((a_urls, alice, bob), (b_urls, bob, alice)):
        for url in urls.values():
            assert f"/users/{own.id}/photos/" in urlsplit(url).path
            assert other.id not in url

    a_keys = {await key_of(app, p) for p in alice_photos}
    b_keys = {await key_of(app, p) for p in bob_photos}
    assert len(a_keys) == len(b_keys) == 3
    assert not a_keys & b_keys
    for keys, own in ((a_keys, alice), (b_keys, bob)):
        for key in keys:
            assert f"/users/{own.id}/photos/" in (entry_url(await redis.get(key)) or "")

    # Someone else's photo is NOT_FOUND before the cache is even asked.
    assert app.redis_cache is not None
    trips = app.redis_cache.stats.round_trips
    for photo_id in (str(p.id) for p in alice_photos):
        error = await call_error(
            stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=bob.metadata)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await call_error(
        stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=[str(alice_photos[0].id)]),
            metadata=bob.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert app.redis_cache.stats.round_trips == trips


# --------------------------------------------------------------------------------------------
# 6. Redis stopped and restarted under a running service


async def test_redis_stopped_fails_open_and_recovers(
    database_url: str, aws_env: None, private_redis: RedisServer
) -> None:
    async with serve(database_url, private_redis.url) as (app, stub):
        await clear_of_window_end(app)
        cache = app.redis_cache
        assert cache is not None
        user = new_user()
        await seed(app, user, 5, visibility=Visibility.PRIVATE)
        expected = await urls_of(stub, user)
        before = snapshot(app.service.url_stats)
        assert await urls_of(stub, user) == expected
        assert delta(app.service.url_stats, before)["hits"] == 5
        assert cache.breaker.state == "closed"

        private_redis.stop()
        errors, skipped, opened = (
            cache.stats.errors,
            cache.stats.skipped,
            cache.stats.breaker_opened,
        )
        before = snapshot(app.service.url_stats)
        for _ in range(6):
            urls, took = await timed(urls_of(stub, user))
            assert urls == expected  # freshly signed in the same window: the same bytes
            assert took < CALL_BOUND_SECONDS, f"ListPhotos took {took:.3f} s with Redis down"
        assert delta(app.service.url_stats, before) == {"hits": 0, "misses": 30, "signatures": 30}
        assert cache.breaker.state == "open"
        assert cache.stats.errors - errors >= cache.breaker.threshold
        assert cache.stats.skipped > skipped
        assert cache.stats.breaker_opened > opened

        private_redis.start()
        took = await wait_for_hits(app, stub, user, within=BREAKER_COOLDOWN + 5)
        assert took >= BREAKER_COOLDOWN * 0.5  # the breaker did hold Redis off for a while
        assert cache.breaker.state == "closed"
        assert await urls_of(stub, user) == expected


# --------------------------------------------------------------------------------------------
# 7. Redis hung (SIGSTOP): bounded calls, then recovery


async def test_redis_hung_is_bounded_and_recovers(
    database_url: str, aws_env: None, private_redis: RedisServer
) -> None:
    async with serve(database_url, private_redis.url) as (app, stub):
        await clear_of_window_end(app)
        cache = app.redis_cache
        assert cache is not None
        alice, bob = new_user(), new_user()
        await seed(app, alice, 5, visibility=Visibility.PRIVATE)
        await seed(app, bob, 5, visibility=Visibility.PRIVATE)
        expected = {u.id: await urls_of(stub, u) for u in (alice, bob)}
        before = snapshot(app.service.url_stats)
        for user in (alice, bob):
            assert await urls_of(stub, user) == expected[user.id]
        assert delta(app.service.url_stats, before)["hits"] == 10

        private_redis.pause()
        try:
            errors = cache.stats.errors
            before = snapshot(app.service.url_stats)
            for i in range(6):
                user = (alice, bob)[i % 2]
                urls, took = await timed(urls_of(stub, user))
                assert urls == expected[user.id]
                assert took < CALL_BOUND_SECONDS, f"ListPhotos took {took:.3f} s, Redis hung"
            assert delta(app.service.url_stats, before)["hits"] == 0
            assert cache.stats.errors > errors
            assert cache.breaker.state == "open"
        finally:
            private_redis.resume()

        await wait_for_hits(app, stub, alice, within=BREAKER_COOLDOWN + 5)
        # Commands cut off by the timeouts must not leave replies behind on a connection that
        # a later command would read as its own: every URL is still the right photo's.
        for _ in range(5):
            for user in (alice, bob):
                assert await urls_of(stub, user) == expected[user.id]
        assert cache.breaker.state == "closed"


# --------------------------------------------------------------------------------------------
# 8. concurrent misses on a cold cache


async def test_concurrent_cold_lists_hand_out_one_url_per_photo(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    photos = await seed(app, alice, 20, visibility=Visibility.PRIVATE)
    await redis.flushdb()
    await clear_of_window_end(app)
    # Start just before a wall-clock second ends, so that the burst (best effort) straddles a
    # change of X-Amz-Date: then only the signing window and the cache keep the URLs identical.
    await asyncio.sleep((0.97 - time.time() % 1) % 1)
    responses = await asyncio.gather(*(list_page(stub, alice, 20) for _ in range(50)))
    by_photo: dict[str, set[str]] = defaultdict(set)
    for page in responses:
        assert len(page) == 20
        for p in page:
            by_photo[p.id].add(p.url)
    assert set(by_photo) == {str(p.id) for p in photos}
    assert all(len(urls) == 1 for urls in by_photo.values()), by_photo
    for seeded in photos:
        stored = entry_url(await redis.get(await key_of(app, seeded)))
        assert stored is not None
        assert stored in by_photo[str(seeded.id)]


# --------------------------------------------------------------------------------------------
# 9. garbage in Redis is a miss


async def test_garbage_entries_are_misses(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    assert app.redis_cache is not None
    await clear_of_window_end(app)
    photos = await seed(app, alice, 5, visibility=Visibility.PRIVATE)
    ids = [str(p.id) for p in photos]
    expected = await urls_of(stub, alice)
    keys = [await key_of(app, p) for p in photos]
    now = datetime.now(UTC)
    margin = app.settings.service_config().urls.cache_margin
    bad = [
        b"garbage",
        entry(expected[ids[1]] + "&stale=past", now - timedelta(seconds=1)),
        b"\xff\xfe\x00 not utf-8",
        entry("not-a-url", now + TTL),
        # Unexpired, but with less than the margin left: must not be handed out either.
        entry(expected[ids[4]] + "&stale=margin", now + margin - timedelta(seconds=5)),
    ]
    for key, value in zip(keys, bad, strict=True):
        await redis.set(key, value, px=600_000)

    errors = app.redis_cache.stats.errors
    before = snapshot(app.service.url_stats)
    listed = await list_page(stub, alice)
    assert delta(app.service.url_stats, before) == {"hits": 0, "misses": 5, "signatures": 5}
    assert {p.id: p.url for p in listed} == expected
    assert all(expire_of(p) - datetime.now(UTC) >= margin for p in listed)
    for pid in ids:
        assert await get_url(stub, alice, pid) == expected[pid]
    assert {pid: u for pid, (u, _) in (await batch_urls(stub, alice, ids)).items()} == expected
    assert app.redis_cache.stats.errors == errors


async def test_wrong_type_entry_is_a_miss(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    """A key holding something other than a string (MGET reads it as nil)."""
    await clear_of_window_end(app)
    photos = await seed(app, alice, 2, visibility=Visibility.PRIVATE)
    expected = await urls_of(stub, alice)
    key = await key_of(app, photos[0])
    await redis.delete(key)
    await redis.rpush(key, "garbage")
    await redis.pexpire(key, 600_000)
    assert await urls_of(stub, alice) == expected
    assert await get_url(stub, alice, str(photos[0].id)) == expected[str(photos[0].id)]


async def test_garbage_entry_is_replaced(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    """An entry that does not decode reads as an expired URL, so the core overwrites it (it was
    once a plain miss, and `SET … NX GET` deferred to the garbage forever)."""
    await clear_of_window_end(app)
    photos = await seed(app, alice, 2, visibility=Visibility.PRIVATE)
    expected = await urls_of(stub, alice)
    key = await key_of(app, photos[0])
    await redis.set(key, b"garbage")  # no TTL
    assert await urls_of(stub, alice) == expected  # a miss, a valid URL
    before = snapshot(app.service.url_stats)
    assert await urls_of(stub, alice) == expected
    assert delta(app.service.url_stats, before) == {"hits": 2, "misses": 0, "signatures": 0}
    assert entry_url(await redis.get(key)) == expected[str(photos[0].id)]


async def test_wrong_type_entry_does_not_count_as_a_redis_failure(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    """MGET reads a non-string key as nil (a miss), and `SET … NX GET` on it answers WRONGTYPE:
    that one command fails, not the pipeline, and it is not a Redis outage. (It once failed the
    whole write and opened the breaker for every user, again and again while the key lived.)"""
    assert app.redis_cache is not None
    await clear_of_window_end(app)
    photos = await seed(app, alice, 2, visibility=Visibility.PRIVATE)
    expected = await urls_of(stub, alice)
    key = await key_of(app, photos[0])
    await redis.delete(key)
    await redis.rpush(key, "garbage")
    await redis.pexpire(key, 600_000)
    errors = app.redis_cache.stats.errors
    opened = app.redis_cache.stats.breaker_opened
    try:
        pages = await asyncio.gather(*(urls_of(stub, alice) for _ in range(30)))
        assert all(page == expected for page in pages)
        assert app.redis_cache.stats.breaker_opened == opened, "one bad key opened the breaker"
        assert app.redis_cache.stats.errors == errors
        assert app.redis_cache.stats.command_errors > 0
    finally:
        await redis.delete(key)
        if app.redis_cache.breaker.state != "closed":  # leave the shared app's breaker closed
            await asyncio.sleep(BREAKER_COOLDOWN)
            await urls_of(stub, alice)
        assert app.redis_cache.breaker.state == "closed"


# --------------------------------------------------------------------------------------------
# 10. one round trip to read and at most one to write per page


async def test_a_page_costs_one_read_and_at_most_one_write(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    cache = app.redis_cache
    assert cache is not None
    photos = await seed(app, alice, 100, visibility=Visibility.PRIVATE)
    await clear_of_window_end(app)

    def trips() -> int:
        return cache.stats.round_trips

    start = trips()
    before = snapshot(app.service.url_stats)
    cold = await urls_of(stub, alice, 100)
    assert len(cold) == 100
    assert trips() - start == 2
    assert delta(app.service.url_stats, before) == {"hits": 0, "misses": 100, "signatures": 100}

    start = trips()
    before = snapshot(app.service.url_stats)
    assert await urls_of(stub, alice, 100) == cold
    assert trips() - start == 1
    assert delta(app.service.url_stats, before) == {"hits": 100, "misses": 0, "signatures": 0}

    # Partly warm: still one read and one write.
    await redis.delete(*[await key_of(app, p) for p in photos[::10]])
    start = trips()
    before = snapshot(app.service.url_stats)
    assert await urls_of(stub, alice, 100) == cold
    assert trips() - start == 2
    assert delta(app.service.url_stats, before) == {"hits": 90, "misses": 10, "signatures": 10}


async def test_stale_entries_are_replaced_within_the_one_write(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, redis: Redis, alice: User
) -> None:
    """Entries that decode but have less than the margin left (the cache's clock behind ours,
    or a raised margin) are overwritten inside the one write: MGET + SET = 2 round trips (a
    separate DEL once made it 3, where the rule allows one read and at most one write)."""
    cache = app.redis_cache
    assert cache is not None
    photos = await seed(app, alice, 10, visibility=Visibility.PRIVATE)
    await clear_of_window_end(app)
    expected = await urls_of(stub, alice)
    margin = app.settings.service_config().urls.cache_margin
    too_old = datetime.now(UTC) + margin - timedelta(seconds=5)
    for seeded in photos[:3]:
        url = expected[str(seeded.id)]
        await redis.set(await key_of(app, seeded), entry(url + "&stale=1", too_old), px=600_000)
    start = cache.stats.round_trips
    assert await urls_of(stub, alice) == expected
    assert cache.stats.round_trips - start <= 2
