"""AlbumRepository and ShareLinkRepository on Postgres, on the same pool as
PostgresPhotoRepository (migration 0008).

An album's photo count and cover are computed when it is read, from its memberships, which
carry copies of their photo's create time and trash state (kept by TrashPhoto and RestorePhoto
in their own transactions, adapters/postgres.py): a photo trashed, restored, removed or
deleted changes them with no counter to keep in step. Measured on 200,000 photos, an album of
10,000: a count joined to photos took 58 ms, the index-only count on the copies takes ~1 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from photovault_server.core.album_models import Album, AlbumChanges, AlbumEdit, ShareLink
from photovault_server.core.models import Cursor

from .postgres import PostgresPhotoRepository

if TYPE_CHECKING:
    from .postgres import _Conn

# The album's columns, its live photo count and its effective cover (album_models.Album), from
# its memberships alone (their copies of the photos' create time and trash state, migration
# 0008's partial index album_photos_live): an index-only count and a one-row cover.
_ALBUM_SELECT = """
SELECT a.id, a.owner_id, a.title, a.description, a.create_time, a.update_time,
       (SELECT count(*) FROM album_photos ap
         WHERE ap.album_id = a.id AND NOT ap.trashed) AS photo_count,
       coalesce(
         (SELECT ap.photo_id FROM album_photos ap
           WHERE ap.album_id = a.id AND ap.photo_id = a.cover_photo_id AND NOT ap.trashed),
         (SELECT ap.photo_id FROM album_photos ap
           WHERE ap.album_id = a.id AND NOT ap.trashed
           ORDER BY ap.photo_create_time DESC, ap.photo_id DESC LIMIT 1)
       ) AS cover_photo_id
  FROM albums a
"""

_LINK_COLUMNS = (
    "id, owner_id, token_sha256, album_id, photo_id, expire_time, allow_original, "
    "password_hash, create_time"
)


def _album(row: asyncpg.Record) -> Album:
    return Album(
        id=row["id"],
        owner_id=row["owner_id"],
        title=row["title"],
        description=row["description"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        cover_photo_id=row["cover_photo_id"],
        photo_count=row["photo_count"],
    )


def _link(row: asyncpg.Record) -> ShareLink:
    return ShareLink(
        id=row["id"],
        owner_id=row["owner_id"],
        token_sha256=bytes(row["token_sha256"]),
        album_id=row["album_id"],
        photo_id=row["photo_id"],
        expire_time=row["expire_time"],
        allow_original=row["allow_original"],
        create_time=row["create_time"],
        password_hash=row["password_hash"] or "",
    )


async def _read_album(conn: _Conn, owner_id: str, album_id: UUID) -> Album | None:
    row = await conn.fetchrow(
        f"{_ALBUM_SELECT} WHERE a.id = $1 AND a.owner_id = $2", album_id, owner_id
    )
    return _album(row) if row else None


async def _lock_album(conn: _Conn, owner_id: str, album_id: UUID) -> bool:
    """Takes the album's row lock: one user's edits of one album serialise, so its limit holds."""
    found = await conn.fetchval(
        "SELECT 1 FROM albums WHERE id = $1 AND owner_id = $2 FOR UPDATE", album_id, owner_id
    )
    return found is not None


async def _missing_photos(
    conn: _Conn, owner_id: str, photo_ids: Sequence[UUID]
) -> tuple[UUID, ...]:
    """Those of `photo_ids` that are not the owner's photos outside the trash. The rows found
    are locked (FOR SHARE) until the transaction ends, so that a concurrent TrashPhoto waits
    and then marks the memberships this transaction adds."""
    found = {
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM photos WHERE owner_id = $1 AND id = ANY($2::uuid[]) "
            "AND trashed_at IS NULL FOR SHARE",
            owner_id,
            list(photo_ids),
        )
    }
    return tuple(i for i in photo_ids if i not in found)


class PostgresAlbumRepository(PostgresPhotoRepository):
    """Shares the photo repository's connection handling (failures become Unavailable)."""

    async def create_album(self, album: Album, *, max_albums: int) -> bool:
        async with self._transaction() as conn:
            # The account row lock serialises one user's creates, so the bound holds.
            await self._lock_account(conn, album.owner_id, album.create_time)
            count = await conn.fetchval(
                "SELECT count(*) FROM albums WHERE owner_id = $1", album.owner_id
            )
            if count >= max_albums:
                return False
            await conn.execute(
                "INSERT INTO albums (id, owner_id, title, description, create_time, update_time) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                album.id,
                album.owner_id,
                album.title,
                album.description,
                album.create_time,
                album.update_time,
            )
            return True

    async def get_album(self, owner_id: str, album_id: UUID) -> Album | None:
        async with self._conn() as conn:
            return await _read_album(conn, owner_id, album_id)

    async def list_albums(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Album]:
        async with self._conn() as conn:
            if after is None:
                rows = await conn.fetch(
                    f"{_ALBUM_SELECT} WHERE a.owner_id = $1 "
                    "ORDER BY a.create_time DESC, a.id DESC LIMIT $2",
                    owner_id,
                    limit,
                )
            else:
                rows = await conn.fetch(
                    f"{_ALBUM_SELECT} WHERE a.owner_id = $1 AND (a.create_time, a.id) < ($3, $4) "
                    "ORDER BY a.create_time DESC, a.id DESC LIMIT $2",
                    owner_id,
                    limit,
                    after.create_time,
                    after.photo_id,
                )
        return [_album(row) for row in rows]

    async def update_album(
        self, owner_id: str, album_id: UUID, changes: AlbumChanges, now: datetime
    ) -> Album | None:
        paths = changes.paths
        async with self._transaction() as conn:
            updated = await conn.fetchval(
                """
                UPDATE albums SET
                    title = CASE WHEN $3 THEN $4 ELSE title END,
                    description = CASE WHEN $5 THEN $6 ELSE description END,
                    cover_photo_id = CASE WHEN $7 THEN $8::uuid ELSE cover_photo_id END,
                    update_time = $9
                WHERE id = $1 AND owner_id = $2
                RETURNING id
                """,
                album_id,
                owner_id,
                "title" in paths,
                changes.title,
                "description" in paths,
                changes.description,
                "cover_photo_id" in paths,
                changes.cover_photo_id,
                now,
            )
            if updated is None:
                return None
            return await _read_album(conn, owner_id, album_id)

    async def delete_album(self, owner_id: str, album_id: UUID) -> bool:
        async with self._conn() as conn:
            deleted = await conn.fetchval(
                "DELETE FROM albums WHERE id = $1 AND owner_id = $2 RETURNING id",
                album_id,
                owner_id,
            )
        return deleted is not None

    async def album_photo_ids(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID]
    ) -> set[UUID]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT photo_id FROM album_photos WHERE album_id = $1 AND owner_id = $2 "
                "AND photo_id = ANY($3::uuid[]) AND NOT trashed",
                album_id,
                owner_id,
                list(photo_ids),
            )
        return {row["photo_id"] for row in rows}

    async def add_album_photos(
        self,
        owner_id: str,
        album_id: UUID,
        photo_ids: Sequence[UUID],
        *,
        max_photos: int,
        now: datetime,
    ) -> AlbumEdit:
        async with self._transaction() as conn:
            if not await _lock_album(conn, owner_id, album_id):
                return AlbumEdit(album=None)
            missing = await _missing_photos(conn, owner_id, photo_ids)
            if missing:
                return AlbumEdit(
                    album=await _read_album(conn, owner_id, album_id), missing_photo_ids=missing
                )
            count = await conn.fetchval(
                "SELECT count(*) FROM album_photos WHERE album_id = $1", album_id
            )
            new = await conn.fetchval(
                "SELECT count(*) FROM unnest($2::uuid[]) AS i(id) WHERE NOT EXISTS "
                "(SELECT 1 FROM album_photos WHERE album_id = $1 AND photo_id = i.id)",
                album_id,
                list(photo_ids),
            )
            if count + new > max_photos:
                return AlbumEdit(album=await _read_album(conn, owner_id, album_id), over_limit=True)
            if new:
                await conn.execute(
                    "INSERT INTO album_photos "
                    "(album_id, photo_id, owner_id, add_time, photo_create_time) "
                    "SELECT $1, p.id, p.owner_id, $4, p.create_time FROM photos p "
                    "WHERE p.owner_id = $3 AND p.id = ANY($2::uuid[]) ON CONFLICT DO NOTHING",
                    album_id,
                    list(photo_ids),
                    owner_id,
                    now,
                )
                # Only a real change is one: adding what is there changes nothing at all.
                await conn.execute(
                    "UPDATE albums SET update_time = $2 WHERE id = $1", album_id, now
                )
            return AlbumEdit(album=await _read_album(conn, owner_id, album_id))

    async def remove_album_photos(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID], *, now: datetime
    ) -> AlbumEdit:
        async with self._transaction() as conn:
            if not await _lock_album(conn, owner_id, album_id):
                return AlbumEdit(album=None)
            missing = await _missing_photos(conn, owner_id, photo_ids)
            if missing:
                return AlbumEdit(
                    album=await _read_album(conn, owner_id, album_id), missing_photo_ids=missing
                )
            removed = await conn.fetchval(
                "WITH gone AS (DELETE FROM album_photos "
                "WHERE album_id = $1 AND photo_id = ANY($2::uuid[]) RETURNING 1) "
                "SELECT count(*) FROM gone",
                album_id,
                list(photo_ids),
            )
            if removed:
                await conn.execute(
                    "UPDATE albums SET update_time = $2 WHERE id = $1", album_id, now
                )
            return AlbumEdit(album=await _read_album(conn, owner_id, album_id))


class PostgresShareLinkRepository(PostgresPhotoRepository):
    async def create_share_link(self, link: ShareLink, *, max_links: int, now: datetime) -> bool:
        async with self._transaction() as conn:
            await self._lock_account(conn, link.owner_id, now)
            # Expired links go here, where their owner's count is taken: nothing else needs them.
            await conn.execute(
                "DELETE FROM share_links WHERE owner_id = $1 AND expire_time <= $2",
                link.owner_id,
                now,
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM share_links WHERE owner_id = $1", link.owner_id
            )
            if count >= max_links:
                return False
            # The composite foreign keys refuse a target that is not the owner's; the photo
            # must also be outside the trash.
            inserted = await conn.fetchval(
                f"INSERT INTO share_links ({_LINK_COLUMNS}) "
                "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 "
                "WHERE ($4::uuid IS NOT NULL AND EXISTS "
                "        (SELECT 1 FROM albums WHERE id = $4 AND owner_id = $2)) "
                "   OR ($5::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM photos "
                "        WHERE id = $5 AND owner_id = $2 AND trashed_at IS NULL)) "
                "RETURNING id",
                link.id,
                link.owner_id,
                link.token_sha256,
                link.album_id,
                link.photo_id,
                link.expire_time,
                link.allow_original,
                link.password_hash or None,
                link.create_time,
            )
            return inserted is not None

    async def list_share_links(self, owner_id: str, *, now: datetime) -> list[ShareLink]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_LINK_COLUMNS} FROM share_links WHERE owner_id = $1 "
                "AND expire_time > $2 ORDER BY create_time DESC, id DESC",
                owner_id,
                now,
            )
        return [_link(row) for row in rows]

    async def revoke_share_link(self, owner_id: str, link_id: UUID) -> bool:
        async with self._conn() as conn:
            deleted = await conn.fetchval(
                "DELETE FROM share_links WHERE id = $1 AND owner_id = $2 RETURNING id",
                link_id,
                owner_id,
            )
        return deleted is not None

    async def find_share_link(self, token_sha256: bytes, *, now: datetime) -> ShareLink | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_LINK_COLUMNS} FROM share_links "
                "WHERE token_sha256 = $1 AND expire_time > $2",
                token_sha256,
                now,
            )
        return _link(row) if row else None
