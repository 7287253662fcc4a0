"""MultipartRepository on Postgres, on the same pool as PostgresPhotoRepository.

Each row belongs to the pending upload of the same id and is deleted with it (ON DELETE
CASCADE): confirm, abort and the sweep of expired uploads need not know about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from photovault_server.core.multipart_models import MultipartUpload

from .postgres import PostgresPhotoRepository

_COLUMNS = "upload_id, owner_id, s3_upload_id, part_size_bytes, part_count"


def _multipart(row: asyncpg.Record) -> MultipartUpload:
    return MultipartUpload(
        upload_id=row["upload_id"],
        owner_id=row["owner_id"],
        s3_upload_id=row["s3_upload_id"],
        part_size_bytes=row["part_size_bytes"],
        part_count=row["part_count"],
    )


class PostgresMultipartRepository(PostgresPhotoRepository):
    """Shares the photo repository's connection handling (failures become Unavailable)."""

    async def add_multipart(
        self, multipart: MultipartUpload, *, max_open: int, now: datetime
    ) -> bool:
        async with self._transaction() as conn:
            # The account row lock serialises one user's creates, so the bound holds.
            await conn.execute(
                "SELECT 1 FROM accounts WHERE user_id = $1 FOR UPDATE", multipart.owner_id
            )
            open_now = await conn.fetchval(
                "SELECT count(*) FROM multipart_uploads m JOIN uploads u ON u.id = m.upload_id "
                "WHERE m.owner_id = $1 AND u.reserved_until > $2",
                multipart.owner_id,
                now,
            )
            if open_now >= max_open:
                return False
            await conn.execute(
                f"INSERT INTO multipart_uploads ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                multipart.upload_id,
                multipart.owner_id,
                multipart.s3_upload_id,
                multipart.part_size_bytes,
                multipart.part_count,
            )
            return True

    async def get_multipart(self, owner_id: str, upload_id: UUID) -> MultipartUpload | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM multipart_uploads WHERE upload_id = $1 AND owner_id = $2",
                upload_id,
                owner_id,
            )
        return _multipart(row) if row else None

    async def owned_s3_uploads(self, s3_upload_ids: Sequence[str]) -> set[str]:
        if not s3_upload_ids:
            return set()
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT s3_upload_id FROM multipart_uploads WHERE s3_upload_id = ANY($1::text[])",
                list(s3_upload_ids),
            )
        return {row["s3_upload_id"] for row in rows}

    async def multiparts_of(self, upload_ids: Sequence[UUID]) -> dict[UUID, MultipartUpload]:
        if not upload_ids:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM multipart_uploads WHERE upload_id = ANY($1::uuid[])",
                list(upload_ids),
            )
        return {row["upload_id"]: _multipart(row) for row in rows}
