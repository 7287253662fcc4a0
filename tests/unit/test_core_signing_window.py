"""Signing windows: `UrlPolicy.window` as properties over random times and policies, and what the
service makes of them on the fakes: URLs that are byte-identical across processes within a
window, the lifetime cap of temporary credentials, URLs cut short by expiring credentials, and
the URL counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from photovault_server.core import Photo, ServedPhoto, UrlPolicy, Visibility, default_cache_margin
from photovault_server.core.models import SignedUrl
from photovault_server.core.urls import SigningWindow, UrlStats
from tests.support.clock import EPOCH
from tests.support.fakes import Harness, make_harness, window_of

TTL = timedelta(hours=2)
MARGIN = timedelta(minutes=30)
CDN = "https://cdn.example.com/photos"
SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIFETIME = 7 * 24 * 3600


def _at(hour: int, minute: int, second: int = 0, microsecond: int = 0) -> datetime:
    """A time on the fake clock's day (its EPOCH is 2025-03-01 12:00:00.123456 UTC)."""
    return datetime(2025, 3, 1, hour, minute, second, microsecond, tzinfo=UTC)


async def _get(harness: Harness, photo: Photo) -> ServedPhoto:
    return await harness.service.get_photo(photo.owner_id, str(photo.id))


def _move_to(harness: Harness, when: datetime) -> None:
    assert when >= harness.clock()
    harness.clock.advance(when - harness.clock())


# --- The window, as properties ----------------------------------------------------------------

# Aware UTC times with microseconds. (`window` counts seconds in a float: exact to the
# microsecond until about the year 2255, past which a window can start after `now`.)
nows = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
# Whole seconds, as PHOTOVAULT_URL_TTL_SECONDS, the credentials cap and X-Amz-Expires are.
lifetimes = st.integers(2, MAX_LIFETIME).map(lambda s: timedelta(seconds=s))
caps = st.none() | st.integers(2, MAX_LIFETIME + 86400).map(lambda s: timedelta(seconds=s))


@st.composite
def policies(draw: st.DrawFn) -> UrlPolicy:
    """A lifetime and a margin below it: whole seconds (PHOTOVAULT_CACHE_MARGIN_SECONDS), the
    default margin for the lifetime, or any microsecond count."""
    ttl = draw(lifetimes)
    margin = draw(
        st.integers(0, int(ttl / SECOND) - 1).map(lambda s: timedelta(seconds=s))
        | st.just(default_cache_margin(ttl))
        | st.integers(0, ttl // MICROSECOND - 1).map(lambda us: timedelta(microseconds=us))
    )
    return UrlPolicy(download_ttl=ttl, cache_margin=margin)


def _expected(policy: UrlPolicy, cap: timedelta | None) -> tuple[timedelta, timedelta, timedelta]:
    """(lifetime, margin, step) as specified, in whole seconds as SigV4 counts them: the
    lifetime capped and rounded down, the margin rounded up but at most half the lifetime, and
    windows of (lifetime - margin)."""
    lifetime = min(policy.download_ttl, cap) if cap is not None else policy.download_ttl
    life = lifetime // SECOND
    margin = min(-(-policy.cache_margin // SECOND), life // 2)
    return life * SECOND, margin * SECOND, (life - margin) * SECOND


@given(now=nows, policy=policies(), cap=caps, data=st.data())
def test_window_holds_now_and_leaves_more_than_the_margin(
    now: datetime, policy: UrlPolicy, cap: timedelta | None, data: st.DataObject
) -> None:
    lifetime, margin, step = _expected(policy, cap)
    window = policy.window(now, cap)
    note(f"{window=} {step=}")
    assert window.expire_at - window.signed_at == lifetime
    assert window.margin == margin
    assert window.signed_at.utcoffset() == timedelta(0)
    assert window.signed_at.microsecond == 0
    assert window.signed_at <= now < window.signed_at + step
    assert (window.signed_at - UNIX_EPOCH) % step == timedelta(0)  # the same in every process
    # Strictly more than the margin left, anywhere in the window (at its end: exactly the
    # margin, and that instant already belongs to the next window).
    assert window.expire_at - now > window.margin
    # Any other time in the window, and the same time in another zone, give the same window.
    other = window.signed_at + data.draw(st.integers(0, step // MICROSECOND - 1)) * MICROSECOND
    assert policy.window(other, cap) == window
    assert policy.window(window.signed_at + step - MICROSECOND, cap) == window
    india = timezone(timedelta(hours=5, minutes=30))
    assert policy.window(now.astimezone(india), cap) == window
    following = policy.window(window.signed_at + step, cap)
    assert following.signed_at == window.signed_at + step
    assert following.expire_at == window.expire_at + step


@given(now=nows, policy=policies(), cap=caps)
def test_next_window_starts_where_the_cache_entry_of_the_last_one_ends(
    now: datetime, policy: UrlPolicy, cap: timedelta | None
) -> None:
    """The cache keeps a URL until expire_at - margin: exactly when the next window begins."""
    window = policy.window(now, cap)
    cache_entry_ends = window.expire_at - window.margin
    assert policy.window(cache_entry_ends, cap).signed_at == cache_entry_ends
    assert policy.window(cache_entry_ends - MICROSECOND, cap) == window


def test_the_fixture_clock_s_window() -> None:
    """The windows the service tests rely on, spelled out: 90-minute windows from the epoch,
    and the test helper `window_of` agrees."""
    policy = UrlPolicy(download_ttl=TTL, cache_margin=MARGIN)
    assert _at(12, 0, 0, 123456) == EPOCH
    assert policy.window(EPOCH) == SigningWindow(_at(12, 0), _at(14, 0), MARGIN)
    assert policy.window(_at(13, 29, 59, 999999)) == SigningWindow(_at(12, 0), _at(14, 0), MARGIN)
    assert policy.window(_at(13, 30)) == SigningWindow(_at(13, 30), _at(15, 30), MARGIN)
    assert window_of(EPOCH, TTL, MARGIN) == (_at(12, 0), _at(14, 0))
    assert window_of(_at(13, 30), TTL, MARGIN) == (_at(13, 30), _at(15, 30))
    # A 40-minute cap: 40-minute URLs, a 20-minute margin, 20-minute windows.
    capped = SigningWindow(_at(12, 0), _at(12, 40), timedelta(minutes=20))
    assert policy.window(EPOCH, timedelta(minutes=40)) == capped
    assert policy.window(EPOCH, timedelta(hours=3)) == policy.window(EPOCH)


# --- Through the service ----------------------------------------------------------------------


async def test_two_processes_hand_out_byte_identical_urls_within_a_window() -> None:
    one = make_harness(download_ttl=TTL, cache_margin=MARGIN)
    other = one.another_process()
    photo = one.add_photo()
    one.clock.advance(timedelta(minutes=10))
    first = await _get(one, photo)
    one.clock.advance(timedelta(hours=1))  # 13:10, still in the 12:00-13:30 window
    second = await _get(other, photo)
    assert one.store.signatures == 2  # both signed: separate caches
    assert (second.url, second.url_expire_time) == (first.url, first.url_expire_time)
    assert "date=20250301T120000Z&expires=7200" in first.url
    assert first.url_expire_time == _at(14, 0)
    # A listing in the second process hands out the same bytes as well (from its cache now).
    (listed,) = (await other.service.list_photos("alice")).photos
    assert listed.url == first.url
    # The next window: both processes sign anew, and again agree.
    _move_to(one, _at(13, 30))
    third = await _get(one, photo)
    fourth = await _get(other, photo)
    assert one.store.signatures == 4
    assert third.url == fourth.url != first.url
    assert "date=20250301T133000Z&expires=7200" in third.url
    assert third.url_expire_time == fourth.url_expire_time == _at(15, 30)


async def test_lifetime_cap_shortens_the_urls_and_the_margin_with_them() -> None:
    cap = timedelta(minutes=40)
    margin = cap / 2  # MARGIN (30 minutes) is more than half the capped lifetime
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN)
    harness.store.lifetime_cap = cap
    photo = harness.add_photo()
    harness.clock.advance(timedelta(minutes=7))
    got = await _get(harness, photo)
    signed_at, expire_at = window_of(harness.clock(), cap, margin)
    assert (signed_at, expire_at) == (_at(12, 0), _at(12, 40))
    assert got.url_expire_time == expire_at == signed_at + cap
    assert "date=20250301T120000Z&expires=2400" in got.url
    assert expire_at - harness.clock() > margin
    (entry,) = harness.cache.entries.values()
    assert entry == (SignedUrl(got.url, expire_at), expire_at - margin)
    # The window's last microsecond: the reduced margin and 1 µs left, still the cached URL.
    _move_to(harness, expire_at - margin - MICROSECOND)
    again = await _get(harness, photo)
    assert (again.url, harness.store.signatures) == (got.url, 1)
    # Then the next 20-minute window.
    _move_to(harness, expire_at - margin)
    fresh = await _get(harness, photo)
    assert harness.store.signatures == 2
    assert fresh.url != got.url
    assert fresh.url_expire_time == _at(13, 0) == harness.clock() + cap


async def test_lifetime_cap_longer_than_the_lifetime_changes_nothing() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN)
    harness.store.lifetime_cap = timedelta(hours=3)
    photo = harness.add_photo()
    got = await _get(harness, photo)
    assert got.url_expire_time == _at(14, 0)
    (entry,) = harness.cache.entries.values()
    assert entry[1] == _at(13, 30)


async def test_url_cut_short_by_the_credentials_is_cached_until_expiry_less_margin() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN)
    # Before the window's 14:00, and on a whole second: URLs live whole seconds, as with SigV4.
    credentials_expire = harness.clock().replace(microsecond=0) + timedelta(hours=1)
    harness.store.credentials_expire_time = credentials_expire
    photo = harness.add_photo()
    got = await _get(harness, photo)
    assert got.url_expire_time == credentials_expire
    assert "date=20250301T120000Z&expires=3600" in got.url
    (entry,) = harness.cache.entries.values()
    assert entry == (SignedUrl(got.url, credentials_expire), credentials_expire - MARGIN)
    _move_to(harness, credentials_expire - MARGIN - MICROSECOND)
    assert (await _get(harness, photo)).url == got.url
    assert harness.store.signatures == 1
    # With no more than the margin left it is signed again (the same bytes: same window, same
    # credentials), handed out, and no longer cached.
    _move_to(harness, credentials_expire - MARGIN)
    again = await _get(harness, photo)
    assert harness.store.signatures == 2
    assert (again.url, again.url_expire_time) == (got.url, credentials_expire)
    assert harness.cache.entries == {}


# --- Counters ---------------------------------------------------------------------------------


async def test_url_counters_over_a_sequence_of_listings() -> None:
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN, public_base_url=CDN)
    for _ in range(3):
        harness.add_photo()
    for _ in range(2):
        harness.add_photo(visibility=Visibility.PUBLIC)
    stats = harness.service.url_stats

    async def listing() -> UrlStats:
        page = await harness.service.list_photos("alice", page_size=50)
        assert len(page.photos) == len(harness.repo.photos)
        return UrlStats(stats.hits, stats.misses, stats.signatures, stats.public)

    assert stats == UrlStats()
    assert await listing() == UrlStats(hits=0, misses=3, signatures=3, public=2)
    assert await listing() == UrlStats(hits=3, misses=3, signatures=3, public=4)
    harness.add_photo()
    assert await listing() == UrlStats(hits=6, misses=4, signatures=4, public=6)
    _move_to(harness, _at(13, 30))  # the next window: every cached URL has left the cache
    assert await listing() == UrlStats(hits=6, misses=8, signatures=8, public=8)
    harness.cache.down = True
    assert await listing() == UrlStats(hits=6, misses=12, signatures=12, public=10)
    assert harness.store.signatures == 12
    # Another process counts its own URLs only.
    assert harness.another_process().service.url_stats == UrlStats()


async def test_url_counters_count_urls_handed_out_and_objects_signed() -> None:
    """A photo asked for twice in one batch: two misses, one signature."""
    harness = make_harness(download_ttl=TTL, cache_margin=MARGIN)
    photo = harness.add_photo()
    await harness.service.batch_get_photo_urls("alice", [str(photo.id), str(photo.id)])
    assert harness.service.url_stats == UrlStats(hits=0, misses=2, signatures=1, public=0)
    assert harness.store.signatures == 1


# --- Fractional margins (found by the properties above; fixed by whole-second windows) --------


@pytest.mark.parametrize(
    ("ttl", "margin"),
    [
        pytest.param(599, None, id="599s-default-margin-299.5s"),
        pytest.param(7201, None, id="7201s-default-margin-1800.25s"),
        pytest.param(3599, 1800, id="3599s-margin-1800s-halved-to-1799.5s"),
    ],
)
def test_cache_entry_ends_where_the_next_window_begins(ttl: int, margin: int | None) -> None:
    """Where lifetime - margin is not a whole number of seconds (the default margin of an odd
    lifetime under 10 minutes, or of one not divisible by 4 over 20; a margin over half an odd
    lifetime), the window's margin is rounded so that the cache entry of a URL still ends
    exactly where the next window begins (it once outlived its window by the fraction)."""
    lifetime = timedelta(seconds=ttl)
    cache_margin = default_cache_margin(lifetime) if margin is None else timedelta(seconds=margin)
    policy = UrlPolicy(download_ttl=lifetime, cache_margin=cache_margin)
    window = policy.window(EPOCH)
    next_window = policy.window(window.expire_at - window.margin)
    assert next_window.signed_at == window.expire_at - window.margin


async def test_cached_and_fresh_urls_agree_just_after_a_window_ends() -> None:
    """With the fraction rounded, a process with the URL cached and one without agree at once
    after a window ends (they once disagreed for up to a second)."""
    lifetime = timedelta(seconds=599)
    margin = default_cache_margin(lifetime)  # 299.5 s: windows of 299 s
    one = make_harness(download_ttl=lifetime, cache_margin=margin)
    other = one.another_process()
    photo = one.add_photo()
    await _get(one, photo)  # cached in the first process until its window ends
    window = one.config.urls.window(one.clock())
    _move_to(one, window.expire_at - window.margin + timedelta(milliseconds=250))
    cached, fresh = await _get(one, photo), await _get(other, photo)
    assert cached.url == fresh.url  # the first is the last window's URL, from the cache


def test_lifetimes_under_two_seconds_are_refused() -> None:
    """A window needs a whole second of step and of margin: UrlPolicy refuses shorter URLs
    (a 1 s URL once left 0.1 s where the margin promised 0.5 s)."""
    with pytest.raises(ValueError, match="2 seconds"):
        UrlPolicy(SECOND, default_cache_margin(SECOND))


def test_caps_under_two_seconds_are_raised_to_two() -> None:
    """Credentials caps come from Settings (60 s or more); a shorter one still yields a usable
    window rather than a URL that is expired when handed out."""
    now = _at(12, 0, 0, 900000)
    window = UrlPolicy(TTL, MARGIN).window(now, SECOND / 2)
    assert window.expire_at - window.signed_at == 2 * SECOND
    assert window.expire_at - now > window.margin == SECOND
