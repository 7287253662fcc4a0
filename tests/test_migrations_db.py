"""Migrations against real Postgres, each test in a database of its own: the shipped ones from
nothing (twice: the second run applies none), and no-transaction migrations (`-- photovault:
no-transaction`): `CREATE INDEX CONCURRENTLY` runs, is recorded, and a failed build's INVALID
index is dropped and built again by the next run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from photovault_server.adapters.migrations import NO_TRANSACTION, Migration, migrate

from .support.databases import own_database


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with own_database("photovault_migrations") as url:
        connection = await asyncpg.connect(url)
        try:
            yield connection
        finally:
            await connection.close()


async def _index_valid(conn: asyncpg.Connection, name: str) -> bool | None:
    valid: bool | None = await conn.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", name
    )
    return valid


async def _recorded(conn: asyncpg.Connection) -> list[int]:
    return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]


async def test_shipped_migrations_apply_once_and_build_valid_indexes(
    conn: asyncpg.Connection,
) -> None:
    applied = await migrate(conn)
    assert [m.version for m in applied] == sorted(await _recorded(conn))
    assert any(not m.transactional for m in applied)
    assert await migrate(conn) == []
    invalid = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid"
    )
    assert invalid == []
    for name in ("photos_owner_tags", "photos_owner_search_text"):
        assert await _index_valid(conn, name) is True


TABLE = Migration(1, "table", "CREATE TABLE t (x integer NOT NULL); INSERT INTO t VALUES (1), (1);")
CONCURRENT_UNIQUE = Migration(
    2,
    "unique_x",
    f"{NO_TRANSACTION}\n-- a comment; with a semicolon\n"
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_x\n    ON t (x);\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_plain ON t (x);\n",
)


def test_no_transaction_statements_split_at_line_ends_without_comments() -> None:
    assert not CONCURRENT_UNIQUE.transactional
    assert TABLE.transactional
    assert CONCURRENT_UNIQUE.statements() == [
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_x\n    ON t (x)",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_x_plain ON t (x)",
    ]


async def test_concurrent_index_outside_a_transaction_is_built_and_recorded(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn, [TABLE])
    await conn.execute("DELETE FROM t")
    applied = await migrate(conn, [TABLE, CONCURRENT_UNIQUE])
    assert applied == [CONCURRENT_UNIQUE]
    assert await _recorded(conn) == [1, 2]
    assert await _index_valid(conn, "t_x") is True
    assert await _index_valid(conn, "t_x_plain") is True


async def test_failed_concurrent_build_is_dropped_and_built_again_by_the_next_run(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn, [TABLE])
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrate(conn, [TABLE, CONCURRENT_UNIQUE])
    # What a failed CONCURRENTLY build leaves: the index, INVALID, and the version unrecorded.
    assert await _index_valid(conn, "t_x") is False
    assert await _recorded(conn) == [1]
    # Still failing while the cause stays: IF NOT EXISTS does not take the INVALID one as done.
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrate(conn, [TABLE, CONCURRENT_UNIQUE])

    await conn.execute("DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t)")
    assert await migrate(conn, [TABLE, CONCURRENT_UNIQUE]) == [CONCURRENT_UNIQUE]
    assert await _index_valid(conn, "t_x") is True
    assert await _recorded(conn) == [1, 2]


async def test_the_advisory_lock_is_released_after_a_failed_migration(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn, [TABLE])
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrate(conn, [TABLE, CONCURRENT_UNIQUE])
    # This connection's (other tests and processes may hold theirs on the same server).
    held = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    )
    assert held == 0
