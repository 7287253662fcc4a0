"""The Postgres adapter's plans: ListPhotos is a keyset index scan on (owner_id, create_time, id)
in both orders, reading only the rows of the page, never a sort of the owner's rows. With
selective filters the planner may collect the few matching rows through the same index and sort
those (cheaper than walking the index past non-matches); it must still never scan the table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from photovault_server.adapters.postgres import _list_sql
from photovault_server.core.models import Cursor, PhotoFilter, PhotoOrder, PhotoQuery, Visibility

OWNERS = 50
PER_OWNER = 400


@pytest.fixture(scope="module")
async def seeded(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO accounts (user_id, create_time)
            SELECT 'plan-' || o, now() FROM generate_series(1, $1) o ON CONFLICT DO NOTHING;
            INSERT INTO photos (id, owner_id, object_key, file_name, content_type, size_bytes,
                                title, tags, visibility, create_time, update_time)
            SELECT gen_random_uuid(), 'plan-' || o, 'users/plan-' || o || '/photos/' || i,
                   'img_' || i || '.jpg', 'image/jpeg', 1000, 'Photo ' || i,
                   ARRAY['t' || (i % 7)], 1 + (i % 2),
                   timestamptz '2026-01-01' + i * interval '1 minute',
                   timestamptz '2026-01-01'
              FROM generate_series(1, $1) o, generate_series(1, $2) i;
            ANALYZE photos;
            """.replace("$1", str(OWNERS)).replace("$2", str(PER_OWNER))
        )
    finally:
        await conn.close()
    return database_url


QUERIES = {
    "newest-first": PhotoQuery("plan-7", PhotoFilter(), PhotoOrder.NEWEST_FIRST, 51),
    "oldest-first": PhotoQuery("plan-7", PhotoFilter(), PhotoOrder.OLDEST_FIRST, 51),
    "after-cursor": PhotoQuery(
        "plan-7",
        PhotoFilter(),
        PhotoOrder.NEWEST_FIRST,
        51,
        Cursor(datetime(2026, 1, 1, 3, tzinfo=UTC), uuid.uuid4()),
    ),
    "filtered": PhotoQuery(
        "plan-7",
        PhotoFilter(
            tags=("t3",),
            words=("photo",),
            visibility=Visibility.PRIVATE,
            created_after=datetime(2026, 1, 1, tzinfo=UTC),
            created_before=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=1),
            content_type="image/jpeg",
        ),
        PhotoOrder.NEWEST_FIRST,
        51,
    ),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_list_photos_is_a_keyset_index_scan(seeded: str, name: str) -> None:
    sql, args = _list_sql(QUERIES[name])
    conn = await asyncpg.connect(seeded)
    try:
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
    finally:
        await conn.close()
    assert "Seq Scan" not in plan, plan
    if name == "filtered":
        # One of the filters' own indexes (migration 0006) or the keyset one.
        assert "Index Scan on photos_owner_" in plan, plan
    else:
        assert "photos_owner_create_time_id" in plan, plan
        assert "Index Scan" in plan, plan
        assert "Sort" not in plan, plan
