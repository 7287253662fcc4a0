"""Whether this process can serve: Postgres answers, and its schema has every migration this
code knows. `photovault serve` reports it through gRPC health and the gateway's /healthz from
start-up on, re-checked every few seconds, so that a load balancer sends no traffic to a process
whose database is down or not migrated yet, and sends it again once it is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import asyncpg
import structlog

from photovault_server.adapters.migrations import load_migrations

log = structlog.get_logger("photovault.readiness")

CHECK_EVERY_SECONDS = 5.0
# While not ready, sooner: a database back is traffic back within a second.
RECHECK_NOT_READY_SECONDS = 1.0
CHECK_TIMEOUT_SECONDS = 2.0

Listener = Callable[[bool], Awaitable[None]]


def pool_busy(pool: asyncpg.Pool) -> bool:
    """Every connection open and in use: the calls on them show the database answers, and a
    check would only wait in line (and, timing out, take a loaded process out of rotation)."""
    return pool.get_size() >= pool.get_max_size() and pool.get_idle_size() == 0


async def database_ready(pool: asyncpg.Pool) -> bool:
    """One SELECT on the pool: True when it answers with the latest migration applied."""
    latest = max((m.version for m in load_migrations()), default=0)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            applied = await pool.fetchval("SELECT max(version) FROM schema_migrations")
    except asyncpg.UndefinedTableError:
        return False  # never migrated
    except Exception as exc:  # unreachable, refusing, too slow: not ready, whatever the cause
        log.warning("database_not_ready", error=type(exc).__name__)
        return False
    if applied is None or applied < latest:
        log.warning("schema_not_current", applied=applied, latest=latest)
        return False
    return True


@asynccontextmanager
async def watching_readiness(
    pool: asyncpg.Pool, listener: Listener, *, every: float = CHECK_EVERY_SECONDS
) -> AsyncIterator[None]:
    """Tells `listener` the readiness now (before the block starts), then on every change,
    checking every `every` seconds (every second at most while not ready) until the block
    ends. A busy pool keeps the state it has."""
    ready = await database_ready(pool)
    await listener(ready)

    async def watch() -> None:
        nonlocal ready
        while True:
            await asyncio.sleep(every if ready else min(every, RECHECK_NOT_READY_SECONDS))
            if pool_busy(pool):
                continue
            now = await database_ready(pool)
            if now != ready:
                ready = now
                log.info("readiness_changed", ready=ready)
                await listener(ready)

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
