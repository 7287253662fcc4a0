"""The in-memory fake lists photos exactly as the SQL does (adapters/postgres.py `_list_sql`):
random photos go into both repositories, then random queries page through both to the end and
every page must be the same. Create times are drawn from a few values (ties, broken by id), text
from a small alphabet with upper and lower case (so words match across case), tags from a few
names (all-of), and the time bounds from the create times themselves (inclusive after,
exclusive before). Some photos are processed with a taken time drawn from the same instants (or
none: the create time stands in), for the taken-time orders and bounds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photovault_server.adapters.postgres import PostgresPhotoRepository
from photovault_server.core.models import (
    Cursor,
    ImageMetadata,
    Photo,
    PhotoFilter,
    PhotoOrder,
    PhotoQuery,
    Upload,
    Visibility,
)
from photovault_server.core.ports import PhotoRepository
from tests.support.fakes import InMemoryPhotoRepository

BASE = datetime(2024, 7, 1, 9, 30, 0, 500_000, tzinfo=UTC)
# Few distinct instants, so that ties are common; a microsecond apart for some.
TIMES = [BASE + timedelta(minutes=m, microseconds=u) for m in range(4) for u in (0, 1)]
TAGS = ["sea", "sky", "city"]
ALPHABET = "abABéÉ%_\\ "  # a space: words anywhere; LIKE wildcards match themselves
CONTENT_TYPES = ["image/jpeg", "image/png"]
QUOTA = 1 << 40
MAX_PENDING = 1 << 20  # each photo's upload is confirmed at once: never the limit

texts = st.text(alphabet=ALPHABET, max_size=6)
words = st.text(alphabet=ALPHABET.replace(" ", ""), min_size=1, max_size=2)
photo_fields = st.fixed_dictionaries(
    {
        "title": texts,
        "description": texts,
        "file_name": st.builds(lambda stem: f"{stem}.jpg", texts),
        "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3).map(tuple),
        "visibility": st.sampled_from([Visibility.PRIVATE, Visibility.PUBLIC]),
        "content_type": st.sampled_from(CONTENT_TYPES),
        "create_time": st.sampled_from(TIMES),
    }
)
# None: never processed; TIMES[0] - 1 day: taken long before any upload (the orders differ).
taken_times = st.none() | st.sampled_from([*TIMES, TIMES[0] - timedelta(days=1)])
filters = st.builds(
    PhotoFilter,
    tags=st.lists(st.sampled_from(TAGS), unique=True, max_size=2).map(tuple),
    words=st.lists(words, unique=True, max_size=2).map(tuple),
    created_after=st.none() | st.sampled_from(TIMES),
    created_before=st.none() | st.sampled_from(TIMES),
    visibility=st.sampled_from(list(Visibility)),
    content_type=st.sampled_from(["", *CONTENT_TYPES]),
    taken_after=st.none() | st.sampled_from(TIMES),
    taken_before=st.none() | st.sampled_from(TIMES),
)
queries = st.tuples(filters, st.sampled_from(list(PhotoOrder)), st.integers(1, 4))


async def store(repo: PhotoRepository, photo: Photo, taken: datetime | None) -> None:
    upload = Upload(
        id=photo.id,
        owner_id=photo.owner_id,
        object_key=photo.object_key,
        file_name=photo.file_name,
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        checksum_sha256=photo.checksum_sha256,
        create_time=photo.create_time,
        reserved_until=photo.create_time + timedelta(hours=1),
    )
    reservation = await repo.reserve_upload(
        upload, default_quota_bytes=QUOTA, max_pending_uploads=MAX_PENDING, now=BASE
    )
    assert reservation.accepted
    assert await repo.confirm_upload(photo, now=BASE) == photo
    if taken is not None:
        metadata = ImageMetadata(width=4, height=3, taken_time=taken)
        assert await repo.finish_photo_job(photo.owner_id, photo.id, metadata, (), BASE)


def order_key(photo: Photo, order: PhotoOrder) -> datetime:
    """The keyset cursor's time: as the service makes it (core/service.py `_cursor`)."""
    taken = photo.metadata.taken_time if photo.metadata else None
    return (taken or photo.create_time) if order.by_taken_time else photo.create_time


async def pages(repo: PhotoRepository, query: PhotoQuery) -> list[list[Photo]]:
    """Every page of the query, each one's last photo the next one's cursor, to the end."""
    found = []
    while True:
        page = await repo.list_photos(query)
        found.append(page)
        if len(page) < query.limit:
            return found
        last = page[-1]
        query = PhotoQuery(
            query.owner_id,
            query.filter,
            query.order,
            query.limit,
            Cursor(order_key(last, query.order), last.id),
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.lists(st.tuples(photo_fields, taken_times), max_size=12),
    drawn_queries=st.lists(queries, min_size=1, max_size=4),
)
async def test_the_fake_pages_through_every_query_as_postgres_does(
    postgres_pool: asyncpg.Pool,
    fields: list[tuple[dict[str, object], datetime | None]],
    drawn_queries: list[tuple[PhotoFilter, PhotoOrder, int]],
) -> None:
    owner = f"agree-{uuid.uuid4().hex[:12]}"
    postgres, fake = PostgresPhotoRepository(postgres_pool), InMemoryPhotoRepository()
    for f, taken in fields:
        photo_id = uuid.uuid4()
        photo = Photo(
            id=photo_id,
            owner_id=owner,
            object_key=f"users/{owner}/photos/{photo_id}.jpg",
            size_bytes=10,
            checksum_sha256="",
            update_time=BASE,
            **f,  # type: ignore[arg-type]
        )
        await store(postgres, photo, taken)
        await store(fake, photo, taken)
    everything = (PhotoFilter(), PhotoOrder.OLDEST_FIRST, 3)
    for flt, order, limit in [everything, *drawn_queries]:
        query = PhotoQuery(owner, flt, order, limit)
        from_sql = await pages(postgres, query)
        assert await pages(fake, query) == from_sql, query
        listed = [p.id for page in from_sql for p in page]
        assert len(listed) == len(set(listed)), "a photo on two pages"
        if flt == PhotoFilter():
            assert len(listed) == len(fields), "unfiltered pages miss photos"
