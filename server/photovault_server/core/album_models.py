"""Albums and share links as the core sees them (core/albums.py, core/shares.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec import Struct, field

from .models import ServedPhoto


class Album(Struct, frozen=True):
    id: UUID
    owner_id: str
    title: str
    description: str
    create_time: datetime
    update_time: datetime
    # The effective cover: the chosen one while it is in the album and not trashed, else the
    # album's most recently confirmed photo outside the trash; None for an empty album.
    cover_photo_id: UUID | None = None
    # Photos in the album outside the trash.
    photo_count: int = 0


class AlbumChanges(Struct, frozen=True):
    """UpdateAlbum: the fields named in `paths` take these values (cover None: the default)."""

    paths: frozenset[str]
    title: str = ""
    description: str = ""
    cover_photo_id: UUID | None = None


class AlbumPage(Struct, frozen=True):
    albums: list[Album] = field(default_factory=list)
    next_page_token: str = ""


class AlbumEdit(Struct, frozen=True):
    """What AddAlbumPhotos / RemoveAlbumPhotos did: the album after it, or why nothing changed
    (no such album; photos the owner does not have; the album would be over its limit)."""

    album: Album | None
    missing_photo_ids: tuple[UUID, ...] = ()
    over_limit: bool = False


class ShareLink(Struct, frozen=True):
    id: UUID
    owner_id: str
    token_sha256: bytes
    album_id: UUID | None
    photo_id: UUID | None
    expire_time: datetime
    allow_original: bool
    create_time: datetime
    # scrypt's encoded output (core/passwords.py); empty: no password.
    password_hash: str = ""


class NewShareLink(Struct, frozen=True):
    """CreateShareLink's answer: the link and its token, which only this answer carries."""

    link: ShareLink
    token: str


class SharedView(Struct, frozen=True):
    """GetSharedAlbum's answer: photos carry URLs of the link's own short lifetime."""

    title: str
    description: str
    photos: list[ServedPhoto]
    allow_original: bool
    next_page_token: str = ""
