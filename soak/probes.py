"""Samplers while the load runs (server RSS from /proc, the server's Postgres connections) and the
integrity checks afterwards (usage vs sizes, every photo's object present)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Samples:
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    pg_connections: list[tuple[float, int]] = field(default_factory=list)


async def sample(
    pid: int, admin_dsn: str, database: str, samples: Samples, stop: asyncio.Event
) -> None:
    """Every 0.5 s: VmRSS of the server and its backends in pg_stat_activity (this sampler
    connects to the admin database, so it never counts itself)."""
    loop = asyncio.get_running_loop()
    conn: Any = None
    while not stop.is_set():
        now = loop.time()
        rss = rss_kib(pid)
        if rss is not None:
            samples.rss_kib.append((now, rss))
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(admin_dsn)
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
            )
            samples.pg_connections.append((now, int(count)))
        except (OSError, asyncpg.PostgresError):
            conn = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    if conn is not None:
        await conn.close()


@dataclass(frozen=True)
class Integrity:
    users: int
    users_mismatched: list[tuple[str, int, int]]  # user, used_bytes, sum(size_bytes)
    photos: int
    photos_without_object: list[str]
    pending_uploads: int
    orphan_objects: list[str]  # in the bucket, but no photo, upload or queued deletion has it


async def check_integrity(database_url: str, s3: Any, bucket: str) -> Integrity:
    conn = await asyncpg.connect(database_url)
    try:
        usage = await conn.fetch(
            """
            SELECT a.user_id, a.used_bytes, coalesce(sum(p.size_bytes), 0)::bigint AS total
              FROM accounts a LEFT JOIN photos p ON p.owner_id = a.user_id
             GROUP BY a.user_id, a.used_bytes
            """
        )
        keys = [row[0] for row in await conn.fetch("SELECT object_key FROM photos")]
        pending = await conn.fetchval("SELECT count(*) FROM uploads")
        known = set(keys) | {
            row[0]
            for row in await conn.fetch(
                "SELECT object_key FROM uploads UNION ALL SELECT object_key FROM object_deletions"
            )
        }
    finally:
        await conn.close()
    mismatched = [(r[0], int(r[1]), int(r[2])) for r in usage if r[1] != r[2]]

    def head_all() -> list[str]:
        missing = []
        for key in keys:
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except Exception:  # botocore's ClientError: 404 or anything else
                missing.append(key)
        return missing

    def listed() -> list[str]:
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    missing = await asyncio.to_thread(head_all)
    orphans = [key for key in await asyncio.to_thread(listed) if key not in known]
    return Integrity(len(usage), mismatched, len(keys), missing, int(pending), orphans)


@dataclass(frozen=True)
class Sweep:
    pending: int  # unconfirmed uploads left by the run
    pending_with_object: int  # of which S3 holds the bytes (PUT done, confirm failed or skipped)
    queued_deletions: int  # objects of deleted photos still queued (S3 was down at the delete)
    queued_with_object: int
    output: str  # what `photovault sweep` printed
    pending_after: int
    queued_after: int
    objects_left: list[str]  # of the swept uploads' and queued deletions' keys
    photos_before: int
    photos_after: int


def _existing(s3: Any, bucket: str, keys: list[str]) -> list[str]:
    present = []
    for key in keys:
        with contextlib.suppress(Exception):  # botocore's ClientError: 404 or anything else
            s3.head_object(Bucket=bucket, Key=key)
            present.append(key)
    return present


async def check_sweep(database_url: str, s3: Any, bucket: str, sweep: Callable[[], str]) -> Sweep:
    """The unconfirmed uploads of the run, aged past their reservation and the sweep's grace
    (as if a day had passed), then `photovault sweep`: their rows and objects gone, and those
    of deleted photos still queued; photos kept."""
    conn = await asyncpg.connect(database_url)
    try:
        keys = [row[0] for row in await conn.fetch("SELECT object_key FROM uploads")]
        # Keys already deleted once wait for their upload URLs to expire (a second deletion,
        # adapters/migrations/0003): not work the sweep has left undone.
        queued = [
            row[0]
            for row in await conn.fetch(
                "SELECT object_key FROM object_deletions WHERE NOT deleted_once"
            )
        ]
        photos_before = int(await conn.fetchval("SELECT count(*) FROM photos"))
        with_object = await asyncio.to_thread(_existing, s3, bucket, keys)
        queued_with_object = await asyncio.to_thread(_existing, s3, bucket, queued)
        await conn.execute("UPDATE uploads SET reserved_until = now() - interval '1 day'")
        output = await asyncio.to_thread(sweep)
        pending_after = int(await conn.fetchval("SELECT count(*) FROM uploads"))
        queued_after = int(
            await conn.fetchval("SELECT count(*) FROM object_deletions WHERE NOT deleted_once")
        )
        photos_after = int(await conn.fetchval("SELECT count(*) FROM photos"))
    finally:
        await conn.close()
    left = await asyncio.to_thread(_existing, s3, bucket, keys + queued)
    return Sweep(
        pending=len(keys),
        pending_with_object=len(with_object),
        queued_deletions=len(queued),
        queued_with_object=len(queued_with_object),
        output=output,
        pending_after=pending_after,
        queued_after=queued_after,
        objects_left=left,
        photos_before=photos_before,
        photos_after=photos_after,
    )
