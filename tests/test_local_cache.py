"""The in-process tier in front of Redis: local hits skip the shared cache, entries leave at
(URL expiry - margin) like Redis's, deletes reach both tiers; and through the real server, a
warm page costs no Redis round trip."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.core.models import SignedUrl

from .support.clock import FakeClock
from .support.fakes import InMemoryUrlCache
from .support.images import jpeg
from .support.servers import server_with
from .support.users import User, upload_photo

MARGIN = timedelta(minutes=5)


def url(name: str, lives: timedelta) -> SignedUrl:
    return SignedUrl(f"https://s3.test/{name}", datetime.now(UTC) + lives)


def shared_cache() -> InMemoryUrlCache:
    # The shared tier's clock is real time here, as Redis's would be.
    clock = FakeClock(datetime.now(UTC))
    return InMemoryUrlCache(clock)


async def test_local_hits_skip_the_shared_cache() -> None:
    shared = shared_cache()
    tiered = TieredUrlCache(shared)
    entries = {"a": url("a", timedelta(hours=1)), "b": url("b", timedelta(hours=1))}
    assert await tiered.put_many(entries, MARGIN) == entries
    trips = shared.round_trips
    assert await tiered.get_many(["a", "b"]) == entries
    assert shared.round_trips == trips  # both from the local tier
    assert tiered.local_hits == 2


async def test_entries_read_from_the_shared_tier_are_kept_locally() -> None:
    shared = shared_cache()
    await shared.put_many({"a": url("a", timedelta(hours=1))}, MARGIN)
    tiered = TieredUrlCache(shared)
    first = await tiered.get_many(["a", "missing"])
    trips = shared.round_trips
    assert await tiered.get_many(["a"]) == first
    assert shared.round_trips == trips


async def test_local_entries_leave_when_only_the_margin_is_left() -> None:
    shared = shared_cache()
    tiered = TieredUrlCache(shared)
    short = {
        "a": SignedUrl("https://s3.test/a", datetime.now(UTC) + MARGIN + timedelta(seconds=0.3))
    }
    await tiered.put_many(short, MARGIN)
    assert "a" in await tiered.get_many(["a"])
    await asyncio.sleep(0.4)
    shared.down = True  # so a hit could only come from the local tier
    assert await tiered.get_many(["a"]) == {}


async def test_the_local_tier_is_bounded_the_oldest_write_leaving_first() -> None:
    shared = shared_cache()
    tiered = TieredUrlCache(shared, maxsize=3)
    for name in "abcd":
        await tiered.put_many({name: url(name, timedelta(hours=1))}, MARGIN)
    await tiered.put_many({"b": url("b2", timedelta(hours=1))}, MARGIN, replace=["b"])  # newest
    await tiered.put_many({"e": url("e", timedelta(hours=1))}, MARGIN)
    shared.down = True  # so a hit could only come from the local tier
    kept = await tiered.get_many(list("abcde"))
    assert sorted(kept) == ["b", "d", "e"]
    assert kept["b"].url == "https://s3.test/b2"


async def test_delete_reaches_both_tiers() -> None:
    shared = shared_cache()
    tiered = TieredUrlCache(shared)
    await tiered.put_many({"a": url("a", timedelta(hours=1))}, MARGIN)
    await tiered.delete_many(["a"])
    assert await tiered.get_many(["a"]) == {}
    assert "a" not in shared.entries


async def test_a_warm_page_costs_no_redis_round_trip(
    database_url: str, redis_url: str, aws_env: None, alice: User, http: httpx.AsyncClient
) -> None:
    async with server_with(
        DATABASE_URL=database_url, REDIS_URL=redis_url, PHOTOVAULT_LOCAL_URL_CACHE_SIZE=1000
    ) as (app, stub):
        for _ in range(3):
            await upload_photo(stub, http, alice, jpeg())
        redis = app.redis_cache
        assert isinstance(redis, RedisUrlCache)
        first = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
        trips = redis.stats.round_trips
        second = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
        assert redis.stats.round_trips == trips
        assert [p.url for p in second.photos] == [p.url for p in first.photos]
