"""PhotoRepository on Postgres through one asyncpg pool per process.

Quota is enforced under a row lock on the account, so concurrent reservations serialise per user
and can never overshoot. Connection-level failures become `Unavailable`; anything else is a bug
and propagates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from photovault_server.core.errors import Unavailable
from photovault_server.core.models import (
    Account,
    Cursor,
    GeoPoint,
    ImageMetadata,
    JobBacklog,
    Photo,
    PhotoChanges,
    PhotoJob,
    PhotoQuery,
    PhotoVariant,
    ProcessingState,
    Reservation,
    Upload,
    Visibility,
)

# What ConfirmUpload writes; the worker fills in the rest (migrations/0004_photo_processing.sql).
_INSERT_COLUMNS = (
    "id, owner_id, object_key, file_name, content_type, size_bytes, checksum_sha256, "
    "title, description, tags, visibility, create_time, update_time"
)
_PHOTO_COLUMNS = (
    _INSERT_COLUMNS + ", processing_state, width, height, taken_time, camera, latitude, "
    "longitude, placeholder, variants, trashed_at"
)
_UPLOAD_COLUMNS = (
    "id, owner_id, object_key, file_name, content_type, size_bytes, checksum_sha256, "
    "create_time, reserved_until"
)

if TYPE_CHECKING:
    _Conn = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

# Failures that mean "the database is not reachable right now", not "the query is wrong".
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # Raised by asyncpg's protocol when its connection was cut mid-operation (seen in the soak
    # run when the server's backends were terminated under load).
    asyncpg.exceptions.InternalClientError,
)


def _metadata(row: asyncpg.Record) -> ImageMetadata | None:
    if row["processing_state"] != ProcessingState.READY:
        return None
    lat, lon = row["latitude"], row["longitude"]
    return ImageMetadata(
        width=row["width"],
        height=row["height"],
        taken_time=row["taken_time"],
        camera=row["camera"],
        location=GeoPoint(lat, lon) if lat is not None and lon is not None else None,
        placeholder=row["placeholder"],
    )


def _variants(raw: str) -> tuple[PhotoVariant, ...]:
    if raw == "[]":  # a photo not processed yet, or with no variants: no JSON parse
        return ()
    return tuple(PhotoVariant(**v) for v in json.loads(raw))


def _variants_json(variants: Sequence[PhotoVariant]) -> str:
    fields = ("name", "object_key", "content_type", "width", "height", "size_bytes")
    return json.dumps([{f: getattr(v, f) for f in fields} for v in variants])


def _photo(row: asyncpg.Record) -> Photo:
    return Photo(
        id=row["id"],
        owner_id=row["owner_id"],
        object_key=row["object_key"],
        file_name=row["file_name"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        checksum_sha256=row["checksum_sha256"],
        title=row["title"],
        description=row["description"],
        tags=tuple(row["tags"]),
        visibility=Visibility(row["visibility"]),
        create_time=row["create_time"],
        update_time=row["update_time"],
        processing_state=ProcessingState(row["processing_state"]),
        metadata=_metadata(row),
        variants=_variants(row["variants"]),
        trash_time=row["trashed_at"],
    )


def _upload(row: asyncpg.Record) -> Upload:
    return Upload(**{k: row[k] for k in _UPLOAD_COLUMNS.split(", ")})


# How long a caller shed for want of a pool connection is asked to wait before retrying.
POOL_BUSY_RETRY_AFTER = timedelta(milliseconds=200)


class PostgresPhotoRepository:
    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float | None = None) -> None:
        """`acquire_timeout` (seconds) bounds the wait for a free pool connection: past it the
        call is shed (UNAVAILABLE with RetryInfo) instead of queueing behind an overload."""
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[_Conn]:
        try:
            conn = await self._pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as exc:
            # Every connection stayed busy (or connecting took) that long: overload, not an
            # outage; the client's retry policy or balancer tries again, maybe elsewhere.
            raise Unavailable(
                "the metadata database is busy; retry shortly",
                reason="DB_POOL_EXHAUSTED",
                retry_after=POOL_BUSY_RETRY_AFTER,
            ) from exc
        except Exception as exc:
            # Any failure to get a connection (refused, unknown database, bad credentials, too
            # many clients, timeout) means the database cannot serve us now, not a bad query.
            raise Unavailable("the metadata database is unavailable; retry shortly") from exc
        try:
            yield conn
        except _UNAVAILABLE_ERRORS as exc:
            raise Unavailable("the metadata database is unavailable; retry shortly") from exc
        finally:
            # A connection that died mid-call fails its reset on release (the pool drops it);
            # the call's own outcome, above, is what the caller must see, not that.
            with suppress(*_UNAVAILABLE_ERRORS):
                await self._pool.release(conn)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Conn]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    @staticmethod
    async def _lock_account(conn: _Conn, user_id: str, now: datetime) -> Any:
        await conn.execute(
            "INSERT INTO accounts (user_id, create_time) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            user_id,
            now,
        )
        return await conn.fetchrow(
            "SELECT used_bytes, quota_bytes FROM accounts WHERE user_id = $1 FOR UPDATE", user_id
        )

    async def get_account(
        self, user_id: str, *, default_quota_bytes: int, now: datetime
    ) -> Account:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO accounts (user_id, create_time) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                user_id,
                now,
            )
            row = await conn.fetchrow(
                """
                SELECT a.user_id, a.photo_count, a.used_bytes, a.quota_bytes, a.create_time,
                       (SELECT coalesce(sum(u.size_bytes), 0) FROM uploads u
                         WHERE u.owner_id = a.user_id AND u.reserved_until > $2) AS pending_bytes
                  FROM accounts a WHERE a.user_id = $1
                """,
                user_id,
                now,
            )
        assert row is not None
        return Account(
            user_id=row["user_id"],
            photo_count=row["photo_count"],
            used_bytes=row["used_bytes"],
            pending_bytes=int(row["pending_bytes"]),
            quota_bytes=row["quota_bytes"]
            if row["quota_bytes"] is not None
            else default_quota_bytes,
            create_time=row["create_time"],
        )

    async def reserve_upload(
        self,
        upload: Upload,
        *,
        default_quota_bytes: int,
        max_pending_uploads: int,
        now: datetime,
    ) -> Reservation:
        async with self._transaction() as conn:
            account = await self._lock_account(conn, upload.owner_id, now)
            pending = await conn.fetchrow(
                "SELECT coalesce(sum(size_bytes), 0) AS bytes, count(*) AS uploads FROM uploads "
                "WHERE owner_id = $1 AND reserved_until > $2",
                upload.owner_id,
                now,
            )
            assert pending is not None
            quota = account["quota_bytes"]
            quota = default_quota_bytes if quota is None else quota
            reserved = account["used_bytes"] + int(pending["bytes"])
            if pending["uploads"] >= max_pending_uploads:
                return Reservation(
                    accepted=False,
                    quota_bytes=quota,
                    reserved_bytes=reserved,
                    too_many_pending=True,
                )
            if reserved + upload.size_bytes > quota:
                return Reservation(accepted=False, quota_bytes=quota, reserved_bytes=reserved)
            await conn.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                upload.id,
                upload.owner_id,
                upload.object_key,
                upload.file_name,
                upload.content_type,
                upload.size_bytes,
                upload.checksum_sha256,
                upload.create_time,
                upload.reserved_until,
            )
            return Reservation(
                accepted=True, quota_bytes=quota, reserved_bytes=reserved + upload.size_bytes
            )

    async def get_upload(self, owner_id: str, upload_id: UUID) -> Upload | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = $1 AND owner_id = $2",
                upload_id,
                owner_id,
            )
        return _upload(row) if row else None

    async def expire_upload(
        self, owner_id: str, upload_id: UUID, *, now: datetime, not_before: datetime
    ) -> str | None:
        async with self._transaction() as conn:
            key: str | None = await conn.fetchval(
                "DELETE FROM uploads WHERE id = $1 AND owner_id = $2 AND reserved_until <= $3 "
                "RETURNING object_key",
                upload_id,
                owner_id,
                now,
            )
            if key is not None:
                await _queue_deletion(conn, key, not_before)
            return key

    async def claim_expired_uploads(
        self, before: datetime, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[Upload]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"""
                UPDATE uploads SET claimed_until = $3
                 WHERE id IN (SELECT id FROM uploads
                               WHERE reserved_until < $1
                                 AND (claimed_until IS NULL OR claimed_until < $2)
                               ORDER BY reserved_until LIMIT $4
                               FOR UPDATE SKIP LOCKED)
                RETURNING {_UPLOAD_COLUMNS}
                """,
                before,
                now,
                claim_until,
                limit,
            )
        return sorted((_upload(row) for row in rows), key=lambda u: u.reserved_until)

    async def delete_uploads(
        self,
        upload_ids: Sequence[UUID],
        *,
        delete_again: Sequence[str] = (),
        not_before: datetime | None = None,
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM uploads WHERE id = ANY($1::uuid[])", list(upload_ids))
            await _queue_deletions(conn, delete_again, not_before=not_before)

    async def release_uploads(self, upload_ids: Sequence[UUID]) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE uploads SET claimed_until = NULL WHERE id = ANY($1::uuid[])",
                list(upload_ids),
            )

    async def confirm_upload(self, photo: Photo, *, now: datetime) -> Photo | None:
        async with self._transaction() as conn:
            # Deleting the pending row first serialises concurrent confirms of one upload, and
            # against expire_upload: whoever takes the row decides, so a confirm can never
            # record a photo whose upload expired (and whose bytes are being deleted).
            size = await conn.fetchval(
                "DELETE FROM uploads WHERE id = $1 AND owner_id = $2 AND reserved_until > $3 "
                "RETURNING size_bytes",
                photo.id,
                photo.owner_id,
                now,
            )
            if size is None:
                row = await conn.fetchrow(
                    f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE id = $1 AND owner_id = $2",
                    photo.id,
                    photo.owner_id,
                )
                return _photo(row) if row else None
            row = await conn.fetchrow(
                f"INSERT INTO photos ({_INSERT_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                f"RETURNING {_PHOTO_COLUMNS}",
                photo.id,
                photo.owner_id,
                photo.object_key,
                photo.file_name,
                photo.content_type,
                photo.size_bytes,
                photo.checksum_sha256,
                photo.title,
                photo.description,
                list(photo.tags),
                int(photo.visibility),
                photo.create_time,
                photo.update_time,
            )
            await conn.execute(
                "UPDATE accounts SET used_bytes = used_bytes + $2, photo_count = photo_count + 1 "
                "WHERE user_id = $1",
                photo.owner_id,
                photo.size_bytes,
            )
            # The job commits with the photo: no confirmed photo is ever left without one.
            await conn.execute(
                "INSERT INTO photo_jobs (photo_id, run_after) VALUES ($1, $2)",
                photo.id,
                photo.create_time,
            )
            assert row is not None
            return _photo(row)

    async def get_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_PHOTO_COLUMNS} FROM photos "
                "WHERE id = $1 AND owner_id = $2 AND trashed_at IS NULL",
                photo_id,
                owner_id,
            )
        return _photo(row) if row else None

    async def get_photos(self, owner_id: str, photo_ids: Sequence[UUID]) -> dict[UUID, Photo]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_PHOTO_COLUMNS} FROM photos "
                "WHERE owner_id = $1 AND id = ANY($2::uuid[]) AND trashed_at IS NULL",
                owner_id,
                list(photo_ids),
            )
        return {row["id"]: _photo(row) for row in rows}

    async def list_photos(self, query: PhotoQuery) -> list[Photo]:
        sql, args = _list_sql(query)
        async with self._conn() as conn:
            if query.filter.tags or query.filter.words:
                # Planned for these values every time: a cached statement's generic plan
                # cannot tell a tag or word on 1 in 10 rows (walk the page order) from one
                # on 1 in 10,000 (its GIN index), and takes the GIN index for both: hundreds
                # of ms for a common value on a million photos (bench/listing_scale.py).
                statement = await conn.prepare(sql)
                rows = await statement.fetch(*args)
            else:
                rows = await conn.fetch(sql, *args)
        return [_photo(row) for row in rows]

    async def update_photo(
        self, owner_id: str, photo_id: UUID, changes: PhotoChanges, now: datetime
    ) -> Photo | None:
        # One static statement whatever the mask, so the prepared-statement cache always hits.
        paths = changes.paths
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"""
                UPDATE photos SET
                    title = CASE WHEN $3 THEN $4 ELSE title END,
                    description = CASE WHEN $5 THEN $6 ELSE description END,
                    tags = CASE WHEN $7 THEN $8::text[] ELSE tags END,
                    visibility = CASE WHEN $9 THEN $10::smallint ELSE visibility END,
                    update_time = $11
                WHERE id = $1 AND owner_id = $2 AND trashed_at IS NULL
                RETURNING {_PHOTO_COLUMNS}
                """,
                photo_id,
                owner_id,
                "title" in paths,
                changes.title,
                "description" in paths,
                changes.description,
                "tags" in paths,
                list(changes.tags),
                "visibility" in paths,
                int(changes.visibility),
                now,
            )
        return _photo(row) if row else None

    async def delete_photo(
        self, owner_id: str, photo_id: UUID, *, upload_window: timedelta
    ) -> Photo | None:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                f"DELETE FROM photos WHERE id = $1 AND owner_id = $2 RETURNING {_PHOTO_COLUMNS}",
                photo_id,
                owner_id,
            )
            if row is None:
                return None
            photo = _photo(row)
            await _photo_deleted(conn, photo, upload_window)
            return photo

    async def find_photo_by_checksum(self, owner_id: str, checksum_sha256: str) -> UUID | None:
        # Index (owner_id, checksum_sha256), migration 0007.
        async with self._conn() as conn:
            found: UUID | None = await conn.fetchval(
                "SELECT id FROM photos WHERE owner_id = $1 AND checksum_sha256 = $2 "
                "AND trashed_at IS NULL ORDER BY create_time, id LIMIT 1",
                owner_id,
                checksum_sha256,
            )
        return found

    async def trash_photo(self, owner_id: str, photo_id: UUID, now: datetime) -> Photo | None:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE photos SET trashed_at = coalesce(trashed_at, $3) "
                f"WHERE id = $1 AND owner_id = $2 RETURNING {_PHOTO_COLUMNS}",
                photo_id,
                owner_id,
                now,
            )
            if row is not None:
                # The albums' copies of the trash state (migration 0008), in the same commit.
                await conn.execute(
                    "UPDATE album_photos SET trashed = true WHERE photo_id = $1 AND NOT trashed",
                    photo_id,
                )
        return _photo(row) if row else None

    async def restore_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE photos SET trashed_at = NULL "
                f"WHERE id = $1 AND owner_id = $2 RETURNING {_PHOTO_COLUMNS}",
                photo_id,
                owner_id,
            )
            if row is not None:
                await conn.execute(
                    "UPDATE album_photos SET trashed = false WHERE photo_id = $1 AND trashed",
                    photo_id,
                )
        return _photo(row) if row else None

    async def list_trash(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Photo]:
        sql, args = _trash_sql(owner_id, after, limit)
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *args)
        return [_photo(row) for row in rows]

    async def purge_trash(
        self, *, trashed_before: datetime, limit: int, upload_window: timedelta
    ) -> list[Photo]:
        async with self._transaction() as conn:
            rows = await conn.fetch(
                f"""
                DELETE FROM photos
                 WHERE id IN (SELECT id FROM photos WHERE trashed_at < $1
                               ORDER BY trashed_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                RETURNING {_PHOTO_COLUMNS}
                """,
                trashed_before,
                limit,
            )
            photos = sorted(
                (_photo(row) for row in rows), key=lambda p: p.trash_time or p.create_time
            )
            for photo in photos:
                await _photo_deleted(conn, photo, upload_window)
            return photos

    async def claim_photo_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[PhotoJob]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"""
                WITH claimed AS (
                    UPDATE photo_jobs SET attempts = attempts + 1, run_after = $2
                     WHERE photo_id IN (
                        SELECT photo_id FROM photo_jobs WHERE run_after <= $1
                         ORDER BY run_after LIMIT $3 FOR UPDATE SKIP LOCKED)
                    RETURNING photo_id, attempts)
                SELECT claimed.attempts, {", ".join("p." + c for c in _PHOTO_COLUMNS.split(", "))}
                  FROM claimed JOIN photos p ON p.id = claimed.photo_id
                 ORDER BY p.create_time
                """,
                now,
                now + lease,
                limit,
            )
        return [PhotoJob(photo=_photo(row), attempts=row["attempts"]) for row in rows]

    async def finish_photo_job(
        self,
        owner_id: str,
        photo_id: UUID,
        metadata: ImageMetadata,
        variants: Sequence[PhotoVariant],
        now: datetime,
    ) -> bool:
        location = metadata.location
        async with self._transaction() as conn:
            found = await conn.fetchval(
                """
                UPDATE photos SET processing_state = $3, processing_error = '', width = $4,
                       height = $5, taken_time = $6, camera = $7, latitude = $8, longitude = $9,
                       placeholder = $10, variants = $11::jsonb, update_time = $12
                 WHERE id = $1 AND owner_id = $2
                RETURNING true
                """,
                photo_id,
                owner_id,
                int(ProcessingState.READY),
                metadata.width,
                metadata.height,
                metadata.taken_time,
                metadata.camera,
                location.latitude if location else None,
                location.longitude if location else None,
                metadata.placeholder,
                _variants_json(variants),
                now,
            )
            if not found:
                # Deleted while processed: a sweep that already ran for this photo may have
                # missed these, so they go at or after `now`, when they were all written.
                await _queue_deletions(conn, [v.object_key for v in variants], not_before=now)
                return False
            await conn.execute("DELETE FROM photo_jobs WHERE photo_id = $1", photo_id)
            return True

    async def fail_photo_job(
        self, owner_id: str, photo_id: UUID, reason: str, now: datetime
    ) -> bool:
        async with self._transaction() as conn:
            found = await conn.fetchval(
                "UPDATE photos SET processing_state = $3, processing_error = $4, update_time = $5 "
                "WHERE id = $1 AND owner_id = $2 RETURNING true",
                photo_id,
                owner_id,
                int(ProcessingState.FAILED),
                reason,
                now,
            )
            await conn.execute("DELETE FROM photo_jobs WHERE photo_id = $1", photo_id)
            return bool(found)

    async def retry_photo_job(self, photo_id: UUID, run_after: datetime, error: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE photo_jobs SET run_after = $2, last_error = $3 WHERE photo_id = $1",
                photo_id,
                run_after,
                error,
            )

    async def job_backlog(self, now: datetime) -> JobBacklog:
        # An index range scan on photo_jobs_run_after (claimed jobs are due in the future).
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS due, min(run_after) AS oldest"
                " FROM photo_jobs WHERE run_after <= $1",
                now,
            )
        assert row is not None
        return JobBacklog(due=row["due"], oldest_due=row["oldest"])

    async def claim_object_deletions(
        self, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                UPDATE object_deletions SET claimed_until = $2
                 WHERE object_key IN (SELECT object_key FROM object_deletions
                                       WHERE (NOT deleted_once OR not_before <= $1)
                                         AND (claimed_until IS NULL OR claimed_until < $1)
                                       ORDER BY queue_time LIMIT $3
                                       FOR UPDATE SKIP LOCKED)
                RETURNING object_key, queue_time
                """,
                now,
                claim_until,
                limit,
            )
        return [row["object_key"] for row in sorted(rows, key=lambda r: r["queue_time"])]

    async def objects_deleted(self, object_keys: Sequence[str], *, deleted_at: datetime) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM object_deletions WHERE object_key = ANY($1::text[]) "
                "AND not_before <= $2",
                list(object_keys),
                deleted_at,
            )
            await conn.execute(
                "UPDATE object_deletions SET deleted_once = true, claimed_until = NULL "
                "WHERE object_key = ANY($1::text[])",
                list(object_keys),
            )

    async def release_object_deletions(self, object_keys: Sequence[str]) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE object_deletions SET claimed_until = NULL "
                "WHERE object_key = ANY($1::text[])",
                list(object_keys),
            )


async def _photo_deleted(conn: _Conn, photo: Photo, upload_window: timedelta) -> None:
    """What follows a photo row's deletion, in its transaction (DeletePhoto and the trash's
    sweep alike): its usage released and its objects queued for deletion."""
    await conn.execute(
        "UPDATE accounts SET used_bytes = used_bytes - $2, photo_count = photo_count - 1 "
        "WHERE user_id = $1",
        photo.owner_id,
        photo.size_bytes,
    )
    await _queue_deletion(conn, photo.object_key, photo.create_time + upload_window)
    # Variants are written by the worker alone, before the row that names them: one deletion
    # after this commit is enough.
    await _queue_deletions(conn, [v.object_key for v in photo.variants], not_before=None)


async def _queue_deletion(conn: _Conn, object_key: str, not_before: datetime) -> None:
    await conn.execute(
        "INSERT INTO object_deletions (object_key, not_before) VALUES ($1, $2) "
        "ON CONFLICT (object_key) DO UPDATE SET not_before = "
        "greatest(object_deletions.not_before, EXCLUDED.not_before), deleted_once = false",
        object_key,
        not_before,
    )


async def _queue_deletions(
    conn: _Conn, keys: Sequence[str], *, not_before: datetime | None
) -> None:
    """_queue_deletion for many keys in one statement; None: one deletion from now on will do."""
    if not keys:
        return
    await conn.execute(
        "INSERT INTO object_deletions (object_key, not_before) "
        "SELECT unnest($1::text[]), coalesce($2::timestamptz, '-infinity') "
        "ON CONFLICT (object_key) DO UPDATE SET not_before = "
        "greatest(object_deletions.not_before, EXCLUDED.not_before), deleted_once = false",
        list(keys),
        not_before,
    )


def _trash_sql(owner_id: str, after: Cursor | None, limit: int) -> tuple[str, list[Any]]:
    """ListTrash: a keyset scan of the partial index (owner_id, trashed_at, id) (migration
    0007), most recently trashed first."""
    where = "owner_id = $1 AND trashed_at IS NOT NULL"
    args: list[Any] = [owner_id, limit]
    if after is not None:
        where += " AND (trashed_at, id) < ($3, $4)"
        args += [after.create_time, after.photo_id]
    sql = (
        f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE {where} "
        "ORDER BY trashed_at DESC, id DESC LIMIT $2"
    )
    return sql, args


def _like_escaped(text: str) -> str:
    """`text` as a LIKE pattern matching itself: its wildcards and escape character escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _list_sql(query: PhotoQuery) -> tuple[str, list[Any]]:
    """A keyset query on (owner_id, create_time, id), or (owner_id, taken_sort_time, id) for
    the taken-time orders; only the filters in use appear, so each combination is its own cached
    prepared statement (tags and words: planned per call, see `list_photos`)."""
    args: list[Any] = [query.owner_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    newest_first = query.order.newest_first
    key = "taken_sort_time" if query.order.by_taken_time else "create_time"
    # Trashed photos are filtered out of the listing indexes' scans (rare: never worth an index).
    where = ["owner_id = $1", "trashed_at IS NULL"]
    if query.after is not None:
        op = "<" if newest_first else ">"
        where.append(
            f"({key}, id) {op} ({arg(query.after.create_time)}, {arg(query.after.photo_id)})"
        )
    flt = query.filter
    if flt.tags:
        where.append(f"tags @> {arg(list(flt.tags))}::text[]")
    for word in flt.words:
        # Contains the lowered word: a LIKE with the word's wildcards escaped, which the
        # trigram index (migration 0006) serves, where strpos() would read every row.
        where.append(f"search_text LIKE '%' || lower({arg(_like_escaped(word))}) || '%'")
    if flt.created_after is not None:
        where.append(f"create_time >= {arg(flt.created_after)}")
    if flt.created_before is not None:
        where.append(f"create_time < {arg(flt.created_before)}")
    if flt.taken_after is not None:
        where.append(f"taken_sort_time >= {arg(flt.taken_after)}")
    if flt.taken_before is not None:
        where.append(f"taken_sort_time < {arg(flt.taken_before)}")
    if flt.visibility is not Visibility.UNSPECIFIED:
        where.append(f"visibility = {arg(int(flt.visibility))}")
    if flt.content_type:
        where.append(f"content_type = {arg(flt.content_type)}")
    if flt.album_id is not None:
        # One album's photos (migration 0008's key (album_id, photo_id)); the album is the
        # owner's (checked first), and so are its photos (the composite foreign key).
        where.append(
            "EXISTS (SELECT 1 FROM album_photos ap "
            f"WHERE ap.album_id = {arg(flt.album_id)} AND ap.photo_id = photos.id)"
        )
    direction = "DESC" if newest_first else "ASC"
    sql = (
        f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE {' AND '.join(where)} "
        f"ORDER BY {key} {direction}, id {direction} LIMIT {arg(query.limit)}"
    )
    return sql, args
