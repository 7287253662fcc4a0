"""Photos written straight through the repository, for listing tests over the real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from photovault_server.app import App
from photovault_server.core.models import Photo, Visibility

from .users import User

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


async def seed(app: App, user: User, count: int, **overrides: object) -> list[Photo]:
    """Photos written straight through the repository (the upload path has its own tests), one
    minute apart, some sharing a create_time to exercise the id tie-break."""
    photos = []
    for i in range(count):
        created = BASE_TIME + timedelta(minutes=i // 2)
        fields: dict[str, object] = {
            "id": uuid.uuid4(),
            "owner_id": user.id,
            "object_key": f"users/{user.id}/photos/{i}.jpg",
            "file_name": f"img_{i:03d}.jpg",
            "content_type": "image/png" if i % 3 == 0 else "image/jpeg",
            "size_bytes": 100 + i,
            "checksum_sha256": "",
            "title": f"Photo {i}",
            "description": "sunset over the sea" if i % 4 == 0 else "city",
            "tags": ("even",) if i % 2 == 0 else ("odd", "prime") if i in (3, 5, 7) else ("odd",),
            "visibility": Visibility.PUBLIC if i % 5 == 0 else Visibility.PRIVATE,
            "create_time": created,
            "update_time": created,
        }
        fields.update(overrides)
        photo = Photo(**fields)  # type: ignore[arg-type]
        await app.pool.execute(
            "INSERT INTO accounts (user_id, create_time) VALUES ($1, now()) ON CONFLICT DO NOTHING",
            user.id,
        )
        await app.pool.execute(
            "INSERT INTO uploads (id, owner_id, object_key, file_name, content_type, size_bytes,"
            " create_time, reserved_until)"
            " VALUES ($1, $2, $3, $4, $5, $6, now(), now() + interval '1 hour')",
            photo.id,
            photo.owner_id,
            photo.object_key,
            photo.file_name,
            photo.content_type,
            photo.size_bytes,
        )
        repo_photo = await app.backends.repository.confirm_upload(photo, now=datetime.now(UTC))
        assert repo_photo is not None
        photos.append(repo_photo)
    return photos
