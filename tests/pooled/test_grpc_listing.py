"""ListPhotos against real Postgres: keyset pages in both orders, every filter, token rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.models import Photo, Visibility
from tests.support.grpc_status import call_error, details
from tests.support.listing import BASE_TIME, seed
from tests.support.users import User, new_user


def key(photo: Photo) -> tuple[datetime, str]:
    return (photo.create_time, str(photo.id))


async def all_pages(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, request: pb.ListPhotosRequest
) -> list[list[str]]:
    pages = []
    while True:
        response = await stub.ListPhotos(request, metadata=user.metadata)
        pages.append([p.id for p in response.photos])
        if not response.next_page_token:
            return pages
        request.page_token = response.next_page_token


@pytest.mark.parametrize(
    ("order", "reverse"),
    [
        (pb.PHOTO_ORDER_UNSPECIFIED, True),
        (pb.PHOTO_ORDER_NEWEST_FIRST, True),
        (pb.PHOTO_ORDER_OLDEST_FIRST, False),
    ],
)
async def test_pages_cover_everything_once_in_order(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, order: pb.PhotoOrder, reverse: bool
) -> None:
    user = new_user()
    photos = await seed(app, user, 23)
    expected = [str(p.id) for p in sorted(photos, key=key, reverse=reverse)]
    pages = await all_pages(stub, user, pb.ListPhotosRequest(page_size=5, order=order))
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [i for page in pages for i in page] == expected


async def test_page_size_default_and_cap(app: App, stub: pb_grpc.PhotoServiceAsyncStub) -> None:
    user = new_user()
    await seed(app, user, 501)
    default = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    assert len(default.photos) == 50
    assert default.next_page_token
    capped = await stub.ListPhotos(pb.ListPhotosRequest(page_size=10_000), metadata=user.metadata)
    assert len(capped.photos) == 500
    assert capped.next_page_token
    # Each photo of the page carries a URL, signed in one batch.
    assert all(p.url for p in capped.photos)
    error = await call_error(
        stub.ListPhotos(pb.ListPhotosRequest(page_size=-1), metadata=user.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


FILTERS = [
    pytest.param({"tags": ["odd"]}, lambda p: "odd" in p.tags, id="tag"),
    pytest.param(
        {"tags": ["odd", "PRIME"]}, lambda p: {"odd", "prime"} <= set(p.tags), id="tags-all-of"
    ),
    pytest.param({"query": "SUNSET sea"}, lambda p: "sunset" in p.description, id="query-words"),
    pytest.param(
        {"query": "img_01"}, lambda p: p.file_name.startswith("img_01"), id="query-file-name"
    ),
    pytest.param({"query": "100%"}, lambda p: False, id="query-percent-is-literal"),
    pytest.param(
        {"visibility": photo_pb2.VISIBILITY_PUBLIC},
        lambda p: p.visibility == Visibility.PUBLIC,
        id="public",
    ),
    pytest.param({"content_type": "image/png"}, lambda p: p.content_type == "image/png", id="type"),
    pytest.param(
        {
            "created_after": ts(BASE_TIME + timedelta(minutes=3)),
            "created_before": ts(BASE_TIME + timedelta(minutes=6)),
        },
        lambda p: (
            BASE_TIME + timedelta(minutes=3) <= p.create_time < BASE_TIME + timedelta(minutes=6)
        ),
        id="time-range",
    ),
]


@pytest.mark.parametrize(("filters", "predicate"), FILTERS)
async def test_filters(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    filters: dict[str, Any],
    predicate: Callable[[Photo], bool],
) -> None:
    user = new_user()
    photos = await seed(app, user, 20)
    expected = [str(p.id) for p in sorted(photos, key=key, reverse=True) if predicate(p)]
    pages = await all_pages(stub, user, pb.ListPhotosRequest(page_size=3, **filters))
    assert [i for page in pages for i in page] == expected


async def test_page_token_rules(app: App, stub: pb_grpc.PhotoServiceAsyncStub) -> None:
    user = new_user()
    await seed(app, user, 6)
    first = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=2, tags=["even"]), metadata=user.metadata
    )
    token = first.next_page_token
    assert token

    async def reason(request: pb.ListPhotosRequest, who: User = user) -> str:
        error = await call_error(stub.ListPhotos(request, metadata=who.metadata))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error)["fields"] == ["page_token"]
        return str(details(error)["reason"])

    assert (
        await reason(pb.ListPhotosRequest(page_size=2, page_token=token))
        == "PAGE_TOKEN_FILTER_MISMATCH"
    )
    assert (
        await reason(
            pb.ListPhotosRequest(
                page_size=2, tags=["even"], page_token=token, order=pb.PHOTO_ORDER_OLDEST_FIRST
            )
        )
        == "PAGE_TOKEN_FILTER_MISMATCH"
    )
    assert (
        await reason(
            pb.ListPhotosRequest(
                page_size=2,
                tags=["even"],
                page_token=token,
            ),
            new_user(),
        )
        == "PAGE_TOKEN_FILTER_MISMATCH"
    )
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert (
        await reason(pb.ListPhotosRequest(page_size=2, tags=["even"], page_token=flipped))
        == "INVALID_PAGE_TOKEN"
    )
    assert (
        await reason(pb.ListPhotosRequest(tags=["even"], page_token="garbage!"))
        == "INVALID_PAGE_TOKEN"
    )
    assert (
        await reason(pb.ListPhotosRequest(tags=["even"], page_token="A" * 600))
        == "INVALID_ARGUMENT"
    )
    # The same filters with another page size go on from the cursor.
    second = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=5, tags=["even"], page_token=token), metadata=user.metadata
    )
    assert len(second.photos) == 1
    assert not second.next_page_token


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"query": "q" * 201}, "query"),
        ({"query": " ".join(f"w{i}" for i in range(11))}, "query"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": [""]}, "tags[0]"),
        ({"content_type": "text/html"}, "content_type"),
        ({"visibility": 9}, "visibility"),
        ({"order": 7}, "order"),
        (
            {"created_after": ts(BASE_TIME), "created_before": ts(BASE_TIME - timedelta(days=1))},
            "created_before",
        ),
    ],
)
async def test_list_filter_limits(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, request_fields: dict[str, Any], field: str
) -> None:
    error = await call_error(
        stub.ListPhotos(pb.ListPhotosRequest(**request_fields), metadata=alice.metadata)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details(error)["fields"]
