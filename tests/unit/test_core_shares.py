"""Share links on the in-memory fakes, with a clock the test moves: how long a link's URLs
live (the bound on an old URL after revocation), that they never go through the URL cache,
expiry at the link's own time, and password attempts that fail closed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from photovault_server.core import NotFound, Unavailable
from photovault_server.core.shares import SHARE_URL_MARGIN, SHARE_URL_TTL, PasswordAttemptsExceeded
from tests.support.fakes import Harness, make_harness


@pytest.fixture
def harness() -> Harness:
    return make_harness()


async def _shared(harness: Harness, **fields: object) -> str:
    """A link to an album of one uploaded photo; its token."""
    photo = await harness.upload_photo(title="seen")
    albums = harness.service.albums
    album = await albums.create("alice", title="A")
    await albums.add_photos("alice", str(album.id), [str(photo.id)])
    fields.setdefault("expire_time", harness.clock() + timedelta(days=1))
    created = await harness.service.share_links.create(
        "alice",
        album_id=str(album.id),
        **fields,  # type: ignore[arg-type]
    )
    return created.token


async def test_urls_live_at_most_the_share_ttl_and_skip_the_url_cache(harness: Harness) -> None:
    token = await _shared(harness, allow_original=True)
    trips = harness.cache.round_trips
    for step in range(12):  # across several signing windows
        now = harness.clock()
        view = await harness.service.share_links.view(token=token)
        (photo,) = view.photos
        assert photo.url_expire_time is not None
        left = photo.url_expire_time - now
        assert SHARE_URL_MARGIN <= left <= SHARE_URL_TTL, (step, left)
        harness.clock.advance(timedelta(seconds=50))
    assert harness.cache.round_trips == trips, "a share link's URL went through the URL cache"


async def test_the_same_window_gives_the_same_url(harness: Harness) -> None:
    token = await _shared(harness, allow_original=True)
    first = (await harness.service.share_links.view(token=token)).photos[0].url
    again = (await harness.service.share_links.view(token=token)).photos[0].url
    assert first == again
    harness.clock.advance(SHARE_URL_TTL)
    later = (await harness.service.share_links.view(token=token)).photos[0].url
    assert later != first


async def test_a_link_expires_at_its_time(harness: Harness) -> None:
    token = await _shared(harness, expire_time=harness.clock() + timedelta(hours=1))
    harness.clock.advance(timedelta(minutes=59, seconds=59))
    assert (await harness.service.share_links.view(token=token)).photos
    harness.clock.advance(timedelta(seconds=1))
    with pytest.raises(NotFound):
        await harness.service.share_links.view(token=token)


async def test_password_attempts_fail_closed_and_are_counted_before_checking(
    harness: Harness,
) -> None:
    token = await _shared(harness, password="open sesame")
    assert harness.attempts is not None
    harness.attempts.fail = True
    with pytest.raises(Unavailable):
        await harness.service.share_links.view(token=token, password="open sesame")
    harness.attempts.fail = False
    for _ in range(harness.attempts.burst):
        with pytest.raises(NotFound):
            await harness.service.share_links.view(token=token, password="a wrong one")
    with pytest.raises(PasswordAttemptsExceeded):
        await harness.service.share_links.view(token=token, password="open sesame")


async def test_a_page_cut_to_fit_continues_exactly(harness: Harness) -> None:
    """The transport's `fit` (its reply size) cuts a page; the token goes on after the last
    photo kept, so paging still reaches every photo once."""
    photos = [await harness.upload_photo(title=f"p{i}") for i in range(3)]
    albums = harness.service.albums
    album = await albums.create("alice", title="A")
    await albums.add_photos("alice", str(album.id), [str(p.id) for p in photos])
    created = await harness.service.share_links.create(
        "alice", album_id=str(album.id), expire_time=harness.clock() + timedelta(days=1)
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await harness.service.share_links.view(
            token=created.token, page_token=token, fit=lambda page: 1
        )
        assert len(page.photos) == 1
        seen += [str(p.photo.id) for p in page.photos]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(str(p.id) for p in photos)
    assert len(seen) == 3
