"""A photos table at scale, written by SQL `generate_series` in minutes: one owner with many
photos among many owners, then the ListPhotos queries that must stay cheap on it (the test of
the indexes, tests/test_listing_at_scale.py, and `make bench`'s figure, bench/listing_scale.py).

The table is loaded with the migrations before 0006 applied, then 0006 runs on the loaded
table: its indexes are built CONCURRENTLY, as on a live deployment.

Every value of the big owner's rows follows from the row's number i (1..n), so each filter
matches a known share of them: tag `t<i % 10>` on every row and `rare` on 1 in 10,000; the
word `beach` in 1 in 10 descriptions and `zebra` in 1 in 10,000; PUBLIC 1 in 100; content type
image/png 1 in 50 and image/heic 1 in 10,000; a taken time on 9 in 10, scrambled against the
create time (one a minute from 2020-01-01)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from photovault_server.adapters.migrations import load_migrations, migrate
from photovault_server.core.models import Cursor, PhotoFilter, PhotoOrder, PhotoQuery, Visibility

OWNER = "scale-owner"
OTHER_OWNERS = 1000
PAGE = 50
CREATED_FROM = datetime(2020, 1, 1, tzinfo=UTC)
TAKEN_FROM = datetime(2019, 1, 1, tzinfo=UTC)
# The version whose indexes are built on the loaded table.
INDEX_MIGRATION = 6

_ROWS = """
INSERT INTO photos (id, owner_id, object_key, file_name, content_type, size_bytes, title,
                    description, tags, visibility, create_time, update_time, taken_time)
SELECT gen_random_uuid(), {owner}, {owner} || '/' || i, 'img_' || i || '.jpg',
       CASE WHEN i % 10000 = 0 THEN 'image/heic' WHEN i % 50 = 0 THEN 'image/png'
            ELSE 'image/jpeg' END,
       1000, 'Photo ' || i,
       CASE WHEN i % 10000 = 0 THEN 'a zebra crossing' WHEN i % 10 = 0 THEN 'on the beach'
            ELSE 'nothing special' END,
       ARRAY['t' || (i % 10)] || CASE WHEN i % 10000 = 0 THEN ARRAY['rare'] ELSE '{{}}' END,
       CASE WHEN i % 100 = 0 THEN 2 ELSE 1 END,
       timestamptz '2020-01-01 00:00Z' + i * interval '1 minute',
       timestamptz '2020-01-01 00:00Z' + i * interval '1 minute',
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE timestamptz '2019-01-01 00:00Z'
                 + ((i * 7919) % $1::bigint) * interval '1 minute' END
  FROM generate_series(1, $1::bigint) AS i
"""


async def load_scale_database(url: str, owner_photos: int, total_photos: int) -> None:
    """Migrates the (empty) database at `url` and loads `owner_photos` photos for OWNER and
    the rest of `total_photos` spread over OTHER_OWNERS others; 0006's indexes come last."""
    conn = await asyncpg.connect(url)
    try:
        # Bulk load and index builds: more memory than a service connection's default.
        await conn.execute("SET maintenance_work_mem = '256MB'")
        migrations = load_migrations()
        await migrate(conn, [m for m in migrations if m.version < INDEX_MIGRATION])
        await conn.execute(
            "INSERT INTO accounts (user_id, create_time) SELECT $1, now() UNION ALL "
            "SELECT 'owner-' || o, now() FROM generate_series(0, $2 - 1) AS o",
            OWNER,
            OTHER_OWNERS,
        )
        await conn.execute(_ROWS.format(owner="$2::text"), owner_photos, OWNER)
        others = total_photos - owner_photos
        if others > 0:
            await conn.execute(_ROWS.format(owner=f"'owner-' || (i % {OTHER_OWNERS})"), others)
        await migrate(conn, migrations)
        await conn.execute("VACUUM ANALYZE photos")
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class ScaleQuery:
    name: str
    query: PhotoQuery


def scale_queries(owner_photos: int) -> list[ScaleQuery]:
    """A page (PAGE rows, plus the one that tells whether there is more) of every filter and
    order on the big owner, and one deep in the listing by a cursor."""
    middle = CREATED_FROM + timedelta(minutes=owner_photos // 2)
    taken_middle = TAKEN_FROM + timedelta(minutes=owner_photos // 2)

    def page(
        name: str,
        flt: PhotoFilter | None = None,
        order: PhotoOrder = PhotoOrder.NEWEST_FIRST,
        after: Cursor | None = None,
    ) -> ScaleQuery:
        return ScaleQuery(name, PhotoQuery(OWNER, flt or PhotoFilter(), order, PAGE + 1, after))

    return [
        page("newest first"),
        page("oldest first", order=PhotoOrder.OLDEST_FIRST),
        page("taken, newest first", order=PhotoOrder.TAKEN_NEWEST_FIRST),
        page("taken, oldest first", order=PhotoOrder.TAKEN_OLDEST_FIRST),
        page("after a cursor mid-way", after=Cursor(middle, UUID(int=0))),
        page("tag, 1 in 10", PhotoFilter(tags=("t3",))),
        page("tag, 1 in 10,000", PhotoFilter(tags=("rare",))),
        page("two tags", PhotoFilter(tags=("t0", "rare"))),
        page("word, 1 in 10", PhotoFilter(words=("beach",))),
        page("word, 1 in 10,000", PhotoFilter(words=("zebra",))),
        page("word, every row", PhotoFilter(words=("photo",))),
        page("PUBLIC, 1 in 100", PhotoFilter(visibility=Visibility.PUBLIC)),
        page(
            "PUBLIC, taken order",
            PhotoFilter(visibility=Visibility.PUBLIC),
            PhotoOrder.TAKEN_NEWEST_FIRST,
        ),
        page("image/png, 1 in 50", PhotoFilter(content_type="image/png")),
        page("image/heic, 1 in 10,000", PhotoFilter(content_type="image/heic")),
        page(
            "image/heic, taken order",
            PhotoFilter(content_type="image/heic"),
            PhotoOrder.TAKEN_OLDEST_FIRST,
        ),
        page(
            "created in one day",
            PhotoFilter(created_after=middle, created_before=middle + timedelta(days=1)),
        ),
        page(
            "taken in one day",
            PhotoFilter(taken_after=taken_middle, taken_before=taken_middle + timedelta(days=1)),
            PhotoOrder.TAKEN_NEWEST_FIRST,
        ),
    ]
