"""The URL policy on the in-memory fakes: URLs are signed in windows and cached until their
window ends, so cached URLs are reused while they keep more than the margin; public photos go
unsigned through the public base URL, a page costs one cache read and at most one write, and
the policy's own limits. (The signing windows themselves: test_core_signing_window.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from photovault_server.core import (
    Photo,
    PhotoChanges,
    ServedPhoto,
    UrlPolicy,
    Visibility,
    default_cache_margin,
)
from photovault_server.core.models import SignedUrl
from photovault_server.core.urls import cache_key
from tests.support.fakes import Harness, make_harness, window_of

TTL = timedelta(hours=2)
MARGIN = timedelta(minutes=30)
CDN = "https://cdn.example.com/photos"


@pytest.fixture
def harness() -> Harness:
    return make_harness(download_ttl=TTL, cache_margin=MARGIN)


async def _get(harness: Harness, photo: Photo) -> ServedPhoto:
    return await harness.service.get_photo(photo.owner_id, str(photo.id))


def _window(harness: Harness) -> tuple[datetime, datetime]:
    """(signed_at, expire_at) of the window the clock is in, for TTL and MARGIN."""
    return window_of(harness.clock(), TTL, MARGIN)


def _move_to(harness: Harness, when: datetime) -> None:
    assert when >= harness.clock()
    harness.clock.advance(when - harness.clock())


# --- The cache --------------------------------------------------------------------------------


async def test_cache_hit_returns_the_same_url_without_signing(harness: Harness) -> None:
    photo = harness.add_photo()
    harness.clock.advance(timedelta(minutes=10))  # not at the start of the window
    first = await _get(harness, photo)
    assert harness.store.signatures == 1
    signed_at, expire_at = _window(harness)
    assert first.url_expire_time == expire_at == signed_at + TTL
    _move_to(harness, expire_at - MARGIN - timedelta(microseconds=1))  # the window's last µs
    again = await _get(harness, photo)
    assert (again.url, again.url_expire_time) == (first.url, first.url_expire_time)
    assert harness.store.signatures == 1


async def test_url_is_re_signed_once_less_than_the_margin_is_left(harness: Harness) -> None:
    """A cached URL is handed out while it has more than the margin left; it has exactly the
    margin left when its window ends, and from then on the next window's URL is handed out."""
    photo = harness.add_photo()
    first = await _get(harness, photo)
    _, expire_at = _window(harness)
    assert first.url_expire_time == expire_at
    _move_to(harness, expire_at - MARGIN - timedelta(microseconds=1))
    assert (await _get(harness, photo)).url == first.url  # the margin and 1 µs left
    assert harness.store.signatures == 1
    _move_to(harness, expire_at - MARGIN)  # no more than the margin left: the next window
    next_signed_at, next_expire_at = _window(harness)
    assert next_signed_at == harness.clock()
    second = await _get(harness, photo)
    assert second.url != first.url
    assert second.url_expire_time == next_expire_at == next_signed_at + TTL
    assert harness.store.signatures == 2
    third = await _get(harness, photo)
    assert third.url == second.url  # the new URL is cached in turn
    assert harness.store.signatures == 2


async def test_core_checks_the_margin_itself(harness: Harness) -> None:
    """A cached entry that outlives its margin (a cache written with another margin) is not
    handed out once less than the configured margin is left."""
    photo = harness.add_photo()
    key = cache_key(harness.store.scope, photo)
    now = harness.clock()
    stale = SignedUrl("https://s3.test/stale?sig=0", now + MARGIN - timedelta(microseconds=1))
    harness.cache.entries[key] = (stale, stale.expire_time)
    got = await _get(harness, photo)
    assert got.url != stale.url
    assert got.url_expire_time == _window(harness)[1]
    assert harness.store.signatures == 1


async def test_url_with_exactly_the_margin_left_is_handed_out(harness: Harness) -> None:
    photo = harness.add_photo()
    key = cache_key(harness.store.scope, photo)
    cached = SignedUrl("https://s3.test/cached?sig=0", harness.clock() + MARGIN)
    harness.cache.entries[key] = (cached, cached.expire_time)
    got = await _get(harness, photo)
    assert (got.url, got.url_expire_time) == (cached.url, cached.expire_time)
    assert harness.store.signatures == 0


async def test_cache_entry_lives_until_expiry_minus_margin(harness: Harness) -> None:
    """... which is where the URL's window ends and the next one starts."""
    photo = harness.add_photo()
    harness.clock.advance(timedelta(minutes=25))
    got = await _get(harness, photo)
    _, expire_at = _window(harness)
    (entry,) = harness.cache.entries.values()
    assert entry == (SignedUrl(got.url, expire_at), expire_at - MARGIN)
    assert window_of(expire_at - MARGIN, TTL, MARGIN)[0] == expire_at - MARGIN


async def test_url_shortened_by_the_credentials_is_handed_out_but_not_cached(
    harness: Harness,
) -> None:
    photo = harness.add_photo()
    expiry = harness.clock().replace(microsecond=0) + timedelta(minutes=20)  # a whole second
    harness.store.credentials_expire_time = expiry
    first = await _get(harness, photo)
    assert first.url_expire_time == harness.store.credentials_expire_time
    assert harness.cache.entries == {}
    second = await _get(harness, photo)
    assert harness.store.signatures == 2  # signed again, not taken from the cache
    assert (second.url, second.url_expire_time) == (first.url, first.url_expire_time)


async def test_a_new_endpoint_means_new_urls(harness: Harness) -> None:
    photo = harness.add_photo()
    before = await _get(harness, photo)
    harness.store.scope = "s3.other|photos|path"  # another endpoint: URLs point elsewhere
    after = await _get(harness, photo)
    assert after.url != before.url
    assert harness.store.signatures == 2


async def test_another_process_of_the_fleet_hands_out_the_first_ones_url(
    harness: Harness,
) -> None:
    photo = harness.add_photo()
    other = harness.process_with_other_credentials()
    first = await _get(harness, photo)
    assert (await _get(other, photo)).url == first.url
    assert other.store.signatures == 0


async def test_a_url_is_never_handed_out_past_the_credentials_that_signed_it(
    harness: Harness,
) -> None:
    """A process whose credentials die in 40 minutes signs first; the fleet shares its URL only
    while it has the margin (30 minutes) left, then a process with longer credentials signs
    its own and the shared entry is replaced."""
    photo = harness.add_photo()
    short_lived = harness.process_with_other_credentials()
    dies_at = harness.clock().replace(microsecond=0) + timedelta(minutes=40)
    short_lived.store.credentials_expire_time = dies_at
    signed_short = await _get(short_lived, photo)
    assert signed_short.url_expire_time == dies_at
    shared = await _get(harness, photo)
    assert (shared.url, harness.store.signatures) == (signed_short.url, 0)
    margin = harness.config.urls.cache_margin
    for _ in range(8):
        harness.clock.advance(timedelta(minutes=5))
        for process in (harness, short_lived):
            handed = await _get(process, photo)
            assert handed.url_expire_time is not None
            assert handed.url_expire_time - harness.clock() >= margin
    assert harness.store.signatures >= 1


async def test_cache_outage_still_serves_fresh_urls(harness: Harness) -> None:
    """... and, signed in the same window, the very same URL: browsers and CDNs keep theirs."""
    photo = harness.add_photo()
    harness.cache.down = True
    first = await _get(harness, photo)
    harness.clock.advance(timedelta(minutes=20))
    second = await _get(harness, photo)
    assert first.url.startswith(f"https://s3.test/{photo.object_key}?sig=")
    assert harness.store.signatures == 2
    assert (second.url, second.url_expire_time) == (first.url, first.url_expire_time)
    assert first.url_expire_time == _window(harness)[1]


async def test_concurrent_misses_hand_out_the_same_url(harness: Harness) -> None:
    """Even were the racing signatures different (other credentials), the first one stored
    is the one every caller hands out."""
    harness.store.unique_signatures = True
    photo = harness.add_photo()
    got = await asyncio.gather(*(_get(harness, photo) for _ in range(5)))
    assert harness.store.signatures > 1  # the misses really raced
    assert len({p.url for p in got}) == 1
    assert len({p.url_expire_time for p in got}) == 1
    later = await _get(harness, photo)
    assert later.url == got[0].url


async def test_losers_url_is_used_when_the_winners_is_too_old(harness: Harness) -> None:
    """put_many returns a stored URL with less than the margin left: the core keeps its own."""
    photo = harness.add_photo()
    key = cache_key(harness.store.scope, photo)
    old = SignedUrl("https://s3.test/old?sig=0", harness.clock() + timedelta(minutes=10))
    original_put = harness.cache.put_many

    async def put_many_after_a_race(
        entries: dict[str, SignedUrl], margin: timedelta, *, replace: Collection[str] = ()
    ) -> dict[str, SignedUrl]:
        await original_put(entries, margin, replace=replace)
        return {**entries, key: old}

    harness.cache.put_many = put_many_after_a_race  # type: ignore[method-assign,assignment]
    got = await _get(harness, photo)
    assert got.url != old.url
    assert got.url_expire_time == _window(harness)[1]


# --- Public photos ----------------------------------------------------------------------------


@pytest.mark.parametrize("base", [CDN, CDN + "/"])
async def test_public_photo_with_a_base_url_is_unsigned(base: str) -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=base)
    photo = harness.add_photo(visibility=Visibility.PUBLIC)
    got = await _get(harness, photo)
    assert got.url == f"{CDN}/{photo.object_key}"
    assert got.url_expire_time is None
    assert harness.store.signatures == 0
    assert harness.cache.round_trips == 0


async def test_public_url_quotes_the_object_key() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    photo = harness.add_photo("user with space?&#", visibility=Visibility.PUBLIC)
    got = await _get(harness, photo)
    assert got.url == f"{CDN}/{quote(photo.object_key)}"
    assert " " not in got.url
    assert "?" not in got.url


async def test_public_photo_without_a_base_url_is_presigned(harness: Harness) -> None:
    photo = harness.add_photo(visibility=Visibility.PUBLIC)
    got = await _get(harness, photo)
    assert got.url.startswith(f"https://s3.test/{photo.object_key}?sig=")
    assert got.url_expire_time == _window(harness)[1]
    assert harness.store.signatures == 1


async def test_private_photo_is_presigned_even_with_a_base_url() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    photo = harness.add_photo(visibility=Visibility.PRIVATE)
    got = await _get(harness, photo)
    assert got.url.startswith("https://s3.test/")
    assert got.url_expire_time == _window(harness)[1]


async def test_publishing_a_photo_switches_it_to_the_public_url() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    photo = await harness.upload_photo()
    changes = PhotoChanges(paths=frozenset({"visibility"}), visibility=Visibility.PUBLIC)
    public = await harness.service.update_photo("alice", str(photo.id), changes)
    assert (public.url, public.url_expire_time) == (f"{CDN}/{photo.object_key}", None)


async def test_public_and_private_urls_mixed_in_one_page() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    private = harness.add_photo()
    public = harness.add_photo(visibility=Visibility.PUBLIC)
    urls = await harness.service.batch_get_photo_urls("alice", [str(public.id), str(private.id)])
    assert [u.url.startswith(CDN) for u in urls] == [True, False]
    assert [u.expire_time is None for u in urls] == [True, False]
    assert harness.store.download_batches == [[private.object_key]]


# --- Round trips per page ---------------------------------------------------------------------


async def test_a_page_costs_one_cache_read_and_one_write(harness: Harness) -> None:
    photos = [harness.add_photo() for _ in range(20)]
    page = await harness.service.list_photos("alice", page_size=20)
    assert len(page.photos) == 20
    assert (harness.cache.get_many_calls, harness.cache.put_many_calls) == (1, 1)
    assert len(harness.store.download_batches) == 1
    assert sorted(harness.store.download_batches[0]) == sorted(p.object_key for p in photos)
    again = await harness.service.list_photos("alice", page_size=20)
    assert (harness.cache.get_many_calls, harness.cache.put_many_calls) == (2, 1)
    assert harness.store.signatures == 20
    assert [p.url for p in again.photos] == [p.url for p in page.photos]


async def test_a_partly_cached_page_signs_only_the_misses(harness: Harness) -> None:
    old = [harness.add_photo() for _ in range(3)]
    await harness.service.batch_get_photo_urls("alice", [str(p.id) for p in old])
    new = [harness.add_photo() for _ in range(4)]
    await harness.service.list_photos("alice")
    assert (harness.cache.get_many_calls, harness.cache.put_many_calls) == (2, 2)
    assert sorted(harness.store.download_batches[-1]) == sorted(p.object_key for p in new)
    assert harness.store.signatures == 7


async def test_a_page_of_only_public_photos_costs_no_round_trip() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    for _ in range(5):
        harness.add_photo(visibility=Visibility.PUBLIC)
    page = await harness.service.list_photos("alice")
    assert len(page.photos) == 5
    assert harness.cache.round_trips == 0
    assert harness.store.signatures == 0


# --- Policy limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "margin"),
    [
        pytest.param(timedelta(hours=2), timedelta(minutes=30), id="quarter"),
        pytest.param(timedelta(hours=1), timedelta(minutes=15), id="quarter-of-an-hour"),
        pytest.param(timedelta(minutes=20), timedelta(minutes=5), id="quarter-is-the-floor"),
        pytest.param(timedelta(minutes=10), timedelta(minutes=5), id="floor"),
        pytest.param(timedelta(minutes=8), timedelta(minutes=4), id="half-below-ten-minutes"),
        pytest.param(timedelta(minutes=1), timedelta(seconds=30), id="half-of-a-minute"),
        pytest.param(timedelta(days=7), timedelta(hours=42), id="seven-days"),
    ],
)
def test_default_cache_margin(ttl: timedelta, margin: timedelta) -> None:
    assert default_cache_margin(ttl) == margin


@pytest.mark.parametrize(
    "ttl", [timedelta(minutes=5), timedelta(minutes=1), timedelta(seconds=2)], ids=str
)
def test_default_cache_margin_is_accepted_for_short_lifetimes(
    ttl: timedelta,
) -> None:
    """Every lifetime UrlPolicy accepts also accepts its default margin (it once returned the
    lifetime itself for 5 minutes or less, so PHOTOVAULT_URL_TTL_SECONDS=300 could not start)."""
    policy = UrlPolicy(download_ttl=ttl, cache_margin=default_cache_margin(ttl))
    assert policy.cache_margin < policy.download_ttl


@pytest.mark.parametrize(
    ("ttl", "margin"),
    [
        pytest.param(timedelta(days=7, seconds=1), timedelta(hours=1), id="over-7-days"),
        pytest.param(timedelta(days=8), timedelta(hours=1), id="8-days"),
        pytest.param(timedelta(0), timedelta(0), id="zero-lifetime"),
        pytest.param(timedelta(seconds=-1), timedelta(0), id="negative-lifetime"),
        pytest.param(timedelta(hours=1), timedelta(hours=1), id="margin-equals-lifetime"),
        pytest.param(timedelta(hours=1), timedelta(hours=2), id="margin-over-lifetime"),
        pytest.param(timedelta(hours=1), timedelta(seconds=-1), id="negative-margin"),
    ],
)
def test_url_policy_rejects(ttl: timedelta, margin: timedelta) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        UrlPolicy(download_ttl=ttl, cache_margin=margin)


@pytest.mark.parametrize(
    ("ttl", "margin"),
    [
        pytest.param(timedelta(days=7), timedelta(hours=42), id="exactly-7-days"),
        pytest.param(timedelta(seconds=2), timedelta(0), id="two-seconds-no-margin"),
    ],
)
def test_url_policy_accepts(ttl: timedelta, margin: timedelta) -> None:
    policy = UrlPolicy(download_ttl=ttl, cache_margin=margin)
    assert (policy.download_ttl, policy.cache_margin) == (ttl, margin)
