"""UrlCache's contract (core/ports.py), run against Redis, the in-process tier over Redis, and
the in-memory fake. Keys are fresh per test. Expiry times are whole milliseconds: Redis stores
them so (as epoch milliseconds)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from photovault_server.core.models import SignedUrl
from tests.support.contracts import CacheUnderTest

MARGIN = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def keys(count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:12]
    return [f"contract:{prefix}:{i}" for i in range(count)]


def url(name: str, expire_time: datetime) -> SignedUrl:
    return SignedUrl(
        url=f"https://s3.test/{name}?sig={uuid.uuid4().hex[:8]}", expire_time=expire_time
    )


def at(c: CacheUnderTest, delta: timedelta) -> datetime:
    """now + delta, to the millisecond."""
    moment = c.now() + delta
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def test_what_is_put_is_got_and_missing_keys_are_absent(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    a, b, missing = keys(3)
    entries = {a: url("a", at(url_cache, HOUR)), b: url("b", at(url_cache, 2 * HOUR))}
    assert await cache.put_many(entries, MARGIN) == entries
    assert await cache.get_many([a, missing, b]) == entries
    assert await cache.get_many([missing]) == {}
    assert await cache.get_many([]) == {}
    assert await cache.put_many({}, MARGIN) == {}


async def test_the_first_writer_wins(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    [key] = keys(1)
    first = url("first", at(url_cache, HOUR))
    second = url("second", at(url_cache, 2 * HOUR))
    assert await cache.put_many({key: first}, MARGIN) == {key: first}
    assert await cache.put_many({key: second}, MARGIN) == {key: first}
    assert await cache.get_many([key]) == {key: first}


async def test_concurrent_writers_are_all_handed_one_winner(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    [key] = keys(1)
    candidates = [url(f"writer-{i}", at(url_cache, HOUR)) for i in range(8)]
    results = await asyncio.gather(*(cache.put_many({key: c}, MARGIN) for c in candidates))
    winners = {r.get(key, c) for r, c in zip(results, candidates, strict=True)}
    assert len(winners) == 1
    [winner] = winners
    assert winner in candidates
    assert await cache.get_many([key]) == {key: winner}


async def test_replace_overwrites_the_stale_entries_only(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    stale, kept = keys(2)
    old = {stale: url("old", at(url_cache, HOUR)), kept: url("kept", at(url_cache, HOUR))}
    await cache.put_many(old, MARGIN)
    new = {stale: url("new", at(url_cache, 2 * HOUR)), kept: url("late", at(url_cache, 2 * HOUR))}
    assert await cache.put_many(new, MARGIN, replace=[stale]) == {
        stale: new[stale],
        kept: old[kept],
    }
    assert await cache.get_many([stale, kept]) == {stale: new[stale], kept: old[kept]}


async def test_an_entry_lives_until_its_expiry_minus_the_margin(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    short, long = keys(2)
    # Evicted 300 ms from now (a wall-clock wait for the real ones), the other in an hour.
    entries = {
        short: url("short", at(url_cache, MARGIN + timedelta(milliseconds=300))),
        long: url("long", at(url_cache, MARGIN + HOUR)),
    }
    await cache.put_many(entries, MARGIN)
    assert await cache.get_many([short, long]) == entries
    await url_cache.advance_to(entries[short].expire_time - MARGIN)
    assert await cache.get_many([short, long]) == {long: entries[long]}
    # Gone, so a new writer is first again.
    fresh = url("fresh", at(url_cache, HOUR))
    assert await cache.put_many({short: fresh}, MARGIN) == {short: fresh}


async def test_a_url_without_the_margin_left_is_not_stored(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    key, other = keys(2)
    ours = url("too-short", at(url_cache, MARGIN - timedelta(seconds=1)))
    won = await cache.put_many({key: ours}, MARGIN)
    # Nobody else's URL: the caller's own stands (absent means "yours").
    assert won.get(key, ours) == ours
    assert await cache.get_many([key]) == {}
    # ...and it does not block a later writer.
    later = url("later", at(url_cache, HOUR))
    assert await cache.put_many({key: later, other: later}, MARGIN) == {key: later, other: later}


async def test_delete_many_forgets_the_keys(url_cache: CacheUnderTest) -> None:
    cache = url_cache.cache
    a, b, never = keys(3)
    entries = {a: url("a", at(url_cache, HOUR)), b: url("b", at(url_cache, HOUR))}
    await cache.put_many(entries, MARGIN)
    await cache.delete_many([a, never])
    assert await cache.get_many([a, b]) == {b: entries[b]}
    await cache.delete_many([])
    # A deleted key is free for the next writer.
    again = url("again", at(url_cache, HOUR))
    assert await cache.put_many({a: again}, MARGIN) == {a: again}
