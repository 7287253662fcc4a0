"""ListPhotos on the in-memory fakes: keyset pagination in both orders, page size rules, page
tokens (opaque, tamper-evident, bound to the filters) and each filter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from photovault_server.core import (
    InvalidArgument,
    PageTokenCodec,
    Photo,
    PhotoOrder,
    Visibility,
)
from photovault_server.core.models import Cursor, PhotoFilter
from tests.support.clock import EPOCH
from tests.support.fakes import Harness, make_harness, window_of

NEWEST = int(PhotoOrder.NEWEST_FIRST)
OLDEST = int(PhotoOrder.OLDEST_FIRST)


@pytest.fixture
def harness() -> Harness:
    return make_harness()


def _fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.violations}


def _seed(harness: Harness, count: int, *, user_id: str = "alice", ties: int = 1) -> list[Photo]:
    """`count` photos, `ties` of them sharing each create_time, in creation order."""
    photos = []
    for i in range(count):
        created = EPOCH + timedelta(seconds=i // ties, microseconds=7 * (i // ties))
        photos.append(harness.add_photo(user_id, create_time=created))
    return photos


def _expected(photos: list[Photo], order: int) -> list[UUID]:
    ordered = sorted(photos, key=lambda p: (p.create_time, p.id), reverse=order != OLDEST)
    return [p.id for p in ordered]


async def _all_pages(
    harness: Harness, user_id: str = "alice", **kwargs: Any
) -> tuple[list[UUID], int]:
    ids: list[UUID] = []
    token = ""
    pages = 0
    while True:
        page = await harness.service.list_photos(user_id, page_token=token, **kwargs)
        pages += 1
        ids.extend(p.photo.id for p in page.photos)
        token = page.next_page_token
        if not token:
            return ids, pages
        assert pages < 1000, "pagination does not end"


async def _ids(harness: Harness, user_id: str = "alice", **kwargs: Any) -> set[UUID]:
    page = await harness.service.list_photos(user_id, page_size=500, **kwargs)
    assert page.next_page_token == ""
    return {p.photo.id for p in page.photos}


# --- Pagination -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, NEWEST, OLDEST], ids=["default", "newest", "oldest"])
@pytest.mark.parametrize(("count", "page_size"), [(23, 5), (20, 5), (5, 5), (1, 5), (0, 5)])
async def test_pages_cover_every_photo_once(
    harness: Harness, order: int, count: int, page_size: int
) -> None:
    photos = _seed(harness, count)
    _seed(harness, 7, user_id="bob")
    ids, pages = await _all_pages(harness, page_size=page_size, order=order)
    assert ids == _expected(photos, order)
    assert pages == max(1, -(-count // page_size))


@pytest.mark.parametrize("order", [NEWEST, OLDEST], ids=["newest", "oldest"])
async def test_pages_break_ties_on_create_time_by_id(harness: Harness, order: int) -> None:
    photos = _seed(harness, 31, ties=4)
    ids, _ = await _all_pages(harness, page_size=3, order=order)
    assert ids == _expected(photos, order)
    assert len(set(ids)) == 31


async def test_photos_added_between_pages_do_not_shift_the_next_page(harness: Harness) -> None:
    photos = _seed(harness, 10)
    first = await harness.service.list_photos("alice", page_size=4)
    harness.add_photo(create_time=EPOCH + timedelta(days=1))  # newer than anything listed
    rest, _ = await _all_pages_from(harness, first.next_page_token, page_size=4)
    assert [p.photo.id for p in first.photos] + rest == _expected(photos, NEWEST)


async def _all_pages_from(harness: Harness, token: str, **kwargs: Any) -> tuple[list[UUID], int]:
    ids: list[UUID] = []
    pages = 0
    while token:
        page = await harness.service.list_photos("alice", page_token=token, **kwargs)
        pages += 1
        ids.extend(p.photo.id for p in page.photos)
        token = page.next_page_token
    return ids, pages


async def test_page_size_may_change_between_pages(harness: Harness) -> None:
    photos = _seed(harness, 12)
    first = await harness.service.list_photos("alice", page_size=5)
    second = await harness.service.list_photos(
        "alice", page_size=7, page_token=first.next_page_token
    )
    assert [p.photo.id for p in first.photos + second.photos] == _expected(photos, NEWEST)
    assert second.next_page_token == ""


@pytest.mark.parametrize(
    ("page_size", "expected"), [(0, 50), (1, 1), (499, 499), (500, 500), (501, 500), (1000, 500)]
)
async def test_page_size_defaults_and_caps(harness: Harness, page_size: int, expected: int) -> None:
    _seed(harness, 501)
    page = await harness.service.list_photos("alice", page_size=page_size)
    assert len(page.photos) == expected
    assert page.next_page_token != ""


@pytest.mark.parametrize("page_size", [-1, -500])
async def test_negative_page_size_is_invalid(harness: Harness, page_size: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", page_size=page_size)
    assert _fields(caught.value) == {"page_size"}


async def test_listed_photos_carry_urls(harness: Harness) -> None:
    _seed(harness, 3)
    harness.clock.advance(timedelta(minutes=47))  # well inside the window, not at its start
    page = await harness.service.list_photos("alice")
    policy = harness.config.urls
    _, expire_at = window_of(harness.clock(), policy.download_ttl, policy.cache_margin)
    assert len(page.photos) == 3
    for photo in page.photos:
        assert photo.url.startswith(f"https://s3.test/{photo.photo.object_key}?sig=")
        assert photo.url_expire_time == expire_at


# --- Page tokens ------------------------------------------------------------------------------


async def _token(harness: Harness, **kwargs: Any) -> str:
    """The first page's token for `kwargs`, over six photos that match every filter used."""
    for i in range(6):
        harness.add_photo(
            create_time=EPOCH + timedelta(minutes=i), tags=["a", "b"], title="sea sun beach"
        )
    page = await harness.service.list_photos("alice", page_size=2, **kwargs)
    assert page.next_page_token
    return page.next_page_token


def _flip_middle_char(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1 :]


def _flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_flip_middle_char, id="flipped-char"),
        pytest.param(lambda t: _flip_byte(t, 5), id="flipped-payload-byte"),
        pytest.param(lambda t: _flip_byte(t, -1), id="flipped-mac-byte"),
        pytest.param(lambda t: t[:-4], id="truncated"),
        pytest.param(lambda t: t + "AAAA", id="extended"),
        pytest.param(lambda t: t[::-1], id="reversed"),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: "!!!!", id="punctuation"),
        pytest.param(lambda t: "A", id="one-char"),
        pytest.param(lambda t: "é" * 10, id="non-ascii"),
        pytest.param(lambda t: "AAAAAAAAAAAAAAAAAAAAAAAA", id="mac-only"),
        pytest.param(
            lambda t: base64.urlsafe_b64encode(b'[1,0,"00","x"]' + bytes(16)).decode(),
            id="forged-without-secret",
        ),
    ],
)
async def test_altered_or_garbage_tokens_are_invalid(harness: Harness, tamper: Any) -> None:
    token = await _token(harness)
    bad = tamper(token)
    assert bad != token
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", page_size=2, page_token=bad)
    assert _fields(caught.value) == {"page_token"}
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_token_from_another_secret_is_invalid(harness: Harness) -> None:
    stranger = PageTokenCodec(b"1" * 32)
    cursor = Cursor(create_time=EPOCH, photo_id=UUID(int=1))
    token = stranger.encode(cursor, "alice", PhotoFilter(), PhotoOrder.NEWEST_FIRST)
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", page_token=token)
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


async def test_over_long_token_is_invalid(harness: Harness) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", page_token="A" * 513)
    assert _fields(caught.value) == {"page_token"}


def test_page_token_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        PageTokenCodec(b"short")


LATER = EPOCH + timedelta(days=30)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({}, {"tags": ["a"]}, id="tags-added"),
        pytest.param({"tags": ["a"]}, {"tags": ["b"]}, id="tags-changed"),
        pytest.param({}, {"query": "beach"}, id="query-added"),
        pytest.param({"query": "sea"}, {"query": "sun"}, id="query-changed"),
        pytest.param({}, {"created_after": EPOCH}, id="created-after-added"),
        pytest.param({}, {"created_before": LATER}, id="created-before-added"),
        pytest.param(
            {"created_before": LATER},
            {"created_before": LATER + timedelta(microseconds=1)},
            id="created-before-moved-1us",
        ),
        pytest.param({}, {"visibility": 1}, id="visibility-added"),
        pytest.param({}, {"content_type": "image/jpeg"}, id="content-type-added"),
        pytest.param({}, {"order": OLDEST}, id="order-changed"),
        pytest.param({"order": OLDEST}, {"order": NEWEST}, id="order-changed-back"),
    ],
)
async def test_token_reused_with_other_filters_is_invalid(
    harness: Harness, first: dict[str, Any], second: dict[str, Any]
) -> None:
    token = await _token(harness, **first)
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", page_size=2, page_token=token, **second)
    assert caught.value.reason == "PAGE_TOKEN_FILTER_MISMATCH"
    assert _fields(caught.value) == {"page_token"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"order": 0}, {"order": NEWEST}, id="unspecified-is-newest"),
        pytest.param({"tags": ["b", "a"]}, {"tags": ["A", "b", "a"]}, id="tags-normalised"),
        pytest.param({"query": "Sea  sun"}, {"query": "sun sea"}, id="query-normalised"),
        pytest.param({"content_type": "IMAGE/JPEG"}, {"content_type": "image/jpeg"}, id="type"),
    ],
)
async def test_token_accepts_the_same_filters_written_differently(
    harness: Harness, first: dict[str, Any], second: dict[str, Any]
) -> None:
    token = await _token(harness, **first)
    page = await harness.service.list_photos("alice", page_size=2, page_token=token, **second)
    expected = _expected(list(harness.repo.photos.values()), NEWEST)
    assert [p.photo.id for p in page.photos] == expected[2:4]


async def test_token_of_another_user_is_invalid(harness: Harness) -> None:
    token = await _token(harness)
    _seed(harness, 3, user_id="mallory")
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("mallory", page_size=2, page_token=token)
    assert caught.value.reason == "PAGE_TOKEN_FILTER_MISMATCH"


# --- Filters ----------------------------------------------------------------------------------


async def test_tags_filter_is_all_of(harness: Harness) -> None:
    both = harness.add_photo(tags=["sea", "sun"])
    sea = harness.add_photo(tags=["sea"])
    harness.add_photo(tags=["sun"])
    harness.add_photo()
    assert await _ids(harness, tags=["sea", "sun"]) == {both.id}
    assert await _ids(harness, tags=["SEA "]) == {both.id, sea.id}
    assert await _ids(harness, tags=["sea", "rain"]) == set()


async def test_query_words_match_title_description_or_file_name(harness: Harness) -> None:
    titled = harness.add_photo(title="Sunset at the BEACH")
    described = harness.add_photo(description="a day at the beach\nwith sun")
    named = harness.add_photo(file_name="Beach-2024.jpg")
    split = harness.add_photo(title="beach", description="sunny")
    harness.add_photo(title="mountains", file_name="alps.jpg", description="snow")
    assert await _ids(harness, query="beach") == {titled.id, described.id, named.id, split.id}
    assert await _ids(harness, query="BeAcH sun") == {titled.id, described.id, split.id}
    assert await _ids(harness, query="  2024  ") == {named.id}
    assert await _ids(harness, query="beach volcano") == set()


async def test_created_after_is_inclusive_and_created_before_exclusive(harness: Harness) -> None:
    photos = [harness.add_photo(create_time=EPOCH + timedelta(hours=h)) for h in range(5)]
    t1, t3 = photos[1].create_time, photos[3].create_time
    assert await _ids(harness, created_after=t1) == {p.id for p in photos[1:]}
    assert await _ids(harness, created_before=t3) == {p.id for p in photos[:3]}
    assert await _ids(harness, created_after=t1, created_before=t3) == {
        photos[1].id,
        photos[2].id,
    }


@pytest.mark.parametrize(
    ("after", "before"), [(EPOCH, EPOCH), (EPOCH + timedelta(seconds=1), EPOCH)]
)
async def test_empty_time_window_is_invalid(
    harness: Harness, after: datetime, before: datetime
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", created_after=after, created_before=before)
    assert _fields(caught.value) == {"created_before"}


async def test_visibility_filter(harness: Harness) -> None:
    private = harness.add_photo(visibility=Visibility.PRIVATE)
    public = harness.add_photo(visibility=Visibility.PUBLIC)
    assert await _ids(harness, visibility=1) == {private.id}
    assert await _ids(harness, visibility=2) == {public.id}
    assert await _ids(harness, visibility=0) == {private.id, public.id}


async def test_content_type_filter(harness: Harness) -> None:
    jpeg = harness.add_photo(content_type="image/jpeg")
    png = harness.add_photo(content_type="image/png")
    assert await _ids(harness, content_type="image/png") == {png.id}
    assert await _ids(harness, content_type=" IMAGE/JPEG ") == {jpeg.id}
    assert await _ids(harness, content_type="image/gif") == set()


async def test_filters_combine(harness: Harness) -> None:
    match = harness.add_photo(
        tags=["sea"], title="Beach", visibility=Visibility.PUBLIC, content_type="image/png"
    )
    harness.add_photo(tags=["sea"], title="Beach", visibility=Visibility.PUBLIC)
    harness.add_photo(tags=["sea"], title="Beach", content_type="image/png")
    harness.add_photo(title="Beach", visibility=Visibility.PUBLIC, content_type="image/png")
    assert await _ids(
        harness, tags=["sea"], query="beach", visibility=2, content_type="image/png"
    ) == {match.id}


async def test_filtered_pages_cover_every_match_once(harness: Harness) -> None:
    wanted = [
        harness.add_photo(create_time=EPOCH + timedelta(minutes=i), tags=["x"]) for i in range(9)
    ]
    for i in range(9):
        harness.add_photo(create_time=EPOCH + timedelta(minutes=i, seconds=30))
    for order in (NEWEST, OLDEST):
        ids, _ = await _all_pages(harness, page_size=2, tags=["x"], order=order)
        assert ids == _expected(wanted, order)


async def test_other_users_photos_are_never_listed(harness: Harness) -> None:
    mine = harness.add_photo("alice", tags=["shared"])
    harness.add_photo("bob", tags=["shared"])
    assert await _ids(harness, "alice", tags=["shared"]) == {mine.id}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"tags": [f"t{i}" for i in range(21)]}, "tags", id="too-many-tags"),
        pytest.param({"tags": ["ok", ""]}, "tags[1]", id="empty-tag"),
        pytest.param({"query": "q" * 201}, "query", id="query-too-long"),
        pytest.param({"query": " ".join(f"w{i}" for i in range(11))}, "query", id="11-words"),
        pytest.param({"query": "nul\x00"}, "query", id="query-control-char"),
        pytest.param({"visibility": 3}, "visibility", id="unknown-visibility"),
        pytest.param({"content_type": "text/html"}, "content_type", id="unknown-type"),
        pytest.param({"order": 5}, "order", id="unknown-order"),
        pytest.param({"variants": ["thumb", "huge"]}, "variants[1]", id="unknown-variant"),
        pytest.param(
            {
                "taken_after": datetime(2024, 2, 1, tzinfo=UTC),
                "taken_before": datetime(2024, 1, 1, tzinfo=UTC),
            },
            "taken_before",
            id="taken-range-reversed",
        ),
        pytest.param({"taken_after": datetime(2024, 2, 1)}, "taken_after", id="taken-naive"),
    ],
)
async def test_invalid_filters(harness: Harness, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_photos("alice", **kwargs)
    assert _fields(caught.value) == {field}


async def test_ten_query_words_are_allowed(harness: Harness) -> None:
    photo = harness.add_photo(title=" ".join(f"w{i}" for i in range(10)))
    assert await _ids(harness, query=" ".join(f"W{i}" for i in range(10))) == {photo.id}
