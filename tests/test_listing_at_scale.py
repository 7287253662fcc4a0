"""ListPhotos on a big table: one owner with many photos among many owners, loaded by SQL
`generate_series` into a database of this module's own (photovault_dev/photo_load.py), the
listing indexes (migration 0006) then built CONCURRENTLY on the loaded table. For every filter
and order, `EXPLAIN (ANALYZE, BUFFERS)` of the very SQL the repository sends must show no
sequential scan of photos, an index of photos in use, and a bounded number of buffers read for
a page of 50: what a page costs follows the page (and a rare filter's matches), never the
table's size. No timings.

Sizes: PHOTOVAULT_SCALE_OWNER_PHOTOS and PHOTOVAULT_SCALE_TOTAL_PHOTOS, by default 200,000 of
1,000,000 (about a minute to load here), where a sequential scan of photos reads over thirty
times the bound; PHOTOVAULT_SCALE_OWNER_PHOTOS=1000000
PHOTOVAULT_SCALE_TOTAL_PHOTOS=5000000 is the full size (a few minutes)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from photovault_dev.photo_load import OWNER, load_scale_database, scale_queries
from photovault_server.adapters.postgres import PostgresPhotoRepository, _list_sql, _trash_sql
from photovault_server.core.models import Cursor

from .support.databases import own_database

OWNER_PHOTOS = int(os.environ.get("PHOTOVAULT_SCALE_OWNER_PHOTOS", "200000"))
TOTAL_PHOTOS = int(os.environ.get("PHOTOVAULT_SCALE_TOTAL_PHOTOS", "1000000"))
# Shared buffers hit or read for one page: tens for the orders and the common filters; the
# rarest (1 in 10,000 of the owner's rows: 100 at the full size) read their matches' heap
# pages through a GIN or btree index. Without migration 0006 those are sequential scans of
# the whole table (35,000 pages at the default size), which the bound catches.
BUFFER_BOUND = 1000
QUERIES = {q.name: q.query for q in scale_queries(OWNER_PHOTOS)}


@pytest.fixture(scope="module")
async def scale_url() -> AsyncIterator[str]:
    async with own_database("photovault_scale") as url:
        await load_scale_database(url, OWNER_PHOTOS, TOTAL_PHOTOS)
        yield url


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


async def _analyze(url: str, sql: str, args: list[Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    finally:
        await conn.close()
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    return plan


async def test_the_table_is_big_enough_for_the_bound_to_mean_something(scale_url: str) -> None:
    conn = await asyncpg.connect(scale_url)
    try:
        owner_rows = await conn.fetchval("SELECT count(*) FROM photos WHERE owner_id = $1", OWNER)
        pages = await conn.fetchval("SELECT relpages FROM pg_class WHERE relname = 'photos'")
    finally:
        await conn.close()
    assert owner_rows == OWNER_PHOTOS
    assert pages > 5 * BUFFER_BOUND


@pytest.mark.parametrize("name", list(QUERIES))
async def test_a_page_reads_bounded_buffers_through_an_index(scale_url: str, name: str) -> None:
    sql, args = _list_sql(QUERIES[name])
    plan = await _analyze(scale_url, sql, args)
    nodes = list(_nodes(plan))
    on_photos = [n for n in nodes if n.get("Relation Name") == "photos"]
    assert on_photos, json.dumps(plan, indent=1)
    assert all(n["Node Type"] != "Seq Scan" for n in on_photos), json.dumps(plan, indent=1)
    assert any(n.get("Index Name", "").startswith("photos_owner_") for n in nodes), json.dumps(
        plan, indent=1
    )
    buffers = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
    assert buffers <= BUFFER_BOUND, json.dumps(plan, indent=1)
    assert 0 < plan["Actual Rows"] <= QUERIES[name].limit


async def test_tag_and_word_pages_are_never_run_on_a_generic_plan(scale_url: str) -> None:
    """The EXPLAINs above plan for the given values; a statement from asyncpg's cache is
    planned once for any value after five calls, and a generic plan takes the GIN index for a
    common tag or word too (all its matches read and sorted for a page)."""
    pool = await asyncpg.create_pool(scale_url, min_size=1, max_size=1)
    try:
        repository = PostgresPhotoRepository(pool)
        for name in ("tag, 1 in 10", "word, 1 in 10", "PUBLIC, 1 in 100"):
            for _ in range(8):
                assert len(await repository.list_photos(QUERIES[name])) == QUERIES[name].limit
        async with pool.acquire() as conn:
            plans = await conn.fetch(
                "SELECT statement, generic_plans FROM pg_prepared_statements "
                "WHERE statement LIKE 'SELECT id, owner_id%'"
            )
    finally:
        await pool.close()
    # The visibility filter's statement is cached (its own btree serves any value) ...
    assert any("visibility =" in p["statement"] for p in plans), plans
    # ... and the tag and word ones are planned on every call.
    generic = [p for p in plans if "tags @>" in p["statement"] or "LIKE" in p["statement"]]
    assert all(p["generic_plans"] == 0 for p in generic), generic


async def test_a_trash_page_reads_bounded_buffers_through_its_partial_index(
    scale_url: str,
) -> None:
    """ListTrash on an owner with a large trash (a tenth of the photos trashed, in a
    transaction rolled back after, so the other tests see the table as loaded): the second
    page's keyset scan of migration 0007's partial index, in page order, bounded."""
    conn = await asyncpg.connect(scale_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE photos SET trashed_at = create_time "
                "WHERE owner_id = $1 AND abs(hashtext(id::text)) % 10 = 0",
                OWNER,
            )
            await conn.execute("ANALYZE photos")
            first = await conn.fetch(
                "SELECT trashed_at, id FROM photos WHERE owner_id = $1 AND trashed_at IS NOT NULL "
                "ORDER BY trashed_at DESC, id DESC LIMIT 50",
                OWNER,
            )
            after = Cursor(create_time=first[-1]["trashed_at"], photo_id=first[-1]["id"])
            sql, args = _trash_sql(OWNER, after, 51)
            text = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
            raise _RollBack(text)
    except _RollBack as done:
        text = done.args[0]
    finally:
        await conn.close()
    plan: dict[str, Any] = json.loads(text)[0]["Plan"]
    nodes = list(_nodes(plan))
    assert any(n.get("Index Name") == "photos_owner_trashed_at_id" for n in nodes), json.dumps(
        plan, indent=1
    )
    assert all(n["Node Type"] not in ("Seq Scan", "Sort") for n in nodes), json.dumps(
        plan, indent=1
    )
    assert plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] <= BUFFER_BOUND
    assert plan["Actual Rows"] == 51


class _RollBack(Exception):
    """Leaves the transaction (rolling it back) with the plan it read."""
