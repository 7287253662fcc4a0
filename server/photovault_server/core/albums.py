"""Album use cases: CreateAlbum, GetAlbum, ListAlbums, UpdateAlbum, DeleteAlbum,
AddAlbumPhotos, RemoveAlbumPhotos. Every lookup is scoped to the caller: another user's album
or photo is NOT_FOUND, exactly like one that does not exist.

Limits: MAX_ALBUMS_PER_USER albums a user, MAX_PHOTOS_PER_ALBUM photos an album (memberships,
trashed photos included), MAX_BATCH_IDS (100) ids a call."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from . import validation as val
from .album_models import Album, AlbumChanges, AlbumEdit, AlbumPage
from .errors import NotFound, PhotoVaultError, QuotaExceeded, QuotaViolation
from .models import Cursor
from .page_tokens import PageTokenCodec
from .ports import AlbumRepository

MAX_ALBUMS_PER_USER = 1000
MAX_PHOTOS_PER_ALBUM = 10_000
# A page of albums at most: 100 albums of the longest title and description (2,200 characters,
# up to 8.8 KB of UTF-8 each) stay far below gRPC's 4 MiB reply and Lambda's 6 MB response.
MAX_ALBUM_PAGE_SIZE = 100
UPDATABLE_ALBUM_PATHS = frozenset({"title", "description", "cover_photo_id"})
_LIST_ALBUMS = "ListAlbums"


class AlbumLimitExceeded(QuotaExceeded):
    """Too many albums, or photos in an album: a QuotaFailure like the storage quota."""

    def __init__(self, *, subject: str, description: str, reason: str, limit: int) -> None:
        self.limit = limit
        self.violations = (QuotaViolation(subject=subject, description=description),)
        # PhotoVaultError's own: no byte counts to report, as for PendingUploadsExceeded.
        PhotoVaultError.__init__(self, description, reason=reason, metadata={"limit": str(limit)})


def album_not_found(album_id: str | UUID) -> NotFound:
    # The same answer for "no such album" and "someone else's album".
    return NotFound(f"album {album_id} not found", reason="ALBUM_NOT_FOUND")


def _photos_not_found(missing: Sequence[UUID]) -> NotFound:
    shown = [str(i) for i in missing]
    return NotFound(
        f"{len(shown)} of the photos not found: " + ", ".join(shown[:5]),
        reason="PHOTO_NOT_FOUND",
        metadata={"photo_ids": ",".join(shown[:20])},
    )


class Albums:
    def __init__(
        self,
        *,
        repo: AlbumRepository,
        page_tokens: PageTokenCodec,
        clock: Callable[[], datetime],
        max_albums: int = MAX_ALBUMS_PER_USER,
        max_photos: int = MAX_PHOTOS_PER_ALBUM,
    ) -> None:
        self._repo = repo
        self._tokens = page_tokens
        self._clock = clock
        self.max_albums = max_albums
        self.max_photos = max_photos

    async def create(self, user_id: str, *, title: str, description: str = "") -> Album:
        v = val.Violations()
        title = _check_title(v, "title", title)
        description = val.check_text(
            v, "description", description, max_chars=val.MAX_DESCRIPTION_CHARS, multiline=True
        )
        v.raise_if_any()
        now = self._clock()
        album = Album(
            id=uuid.uuid4(),
            owner_id=user_id,
            title=title,
            description=description,
            create_time=now,
            update_time=now,
        )
        if not await self._repo.create_album(album, max_albums=self.max_albums):
            raise AlbumLimitExceeded(
                subject=f"user:{user_id}",
                description=f"at most {self.max_albums} albums a user",
                reason="TOO_MANY_ALBUMS",
                limit=self.max_albums,
            )
        return album

    async def get(self, user_id: str, album_id: str, *, field: str = "id") -> Album:
        aid = _checked_id(field, album_id)
        album = await self._repo.get_album(user_id, aid)
        if album is None:
            raise album_not_found(album_id)
        return album

    async def list_albums(
        self, user_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> AlbumPage:
        v = val.Violations()
        limit = min(val.check_page_size(v, "page_size", page_size), MAX_ALBUM_PAGE_SIZE)
        if len(page_token) > val.MAX_PAGE_TOKEN_CHARS:
            v.add("page_token", f"is not a token from a previous {_LIST_ALBUMS} response")
        v.raise_if_any()
        after = (
            self._tokens.decode_listing(page_token, _LIST_ALBUMS, user_id) if page_token else None
        )
        rows = await self._repo.list_albums(user_id, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        token = ""
        if more:
            last = page[-1]
            token = self._tokens.encode_listing(
                Cursor(last.create_time, last.id), _LIST_ALBUMS, user_id
            )
        return AlbumPage(albums=page, next_page_token=token)

    async def update(
        self,
        user_id: str,
        album_id: str,
        *,
        paths: frozenset[str],
        title: str = "",
        description: str = "",
        cover_photo_id: str = "",
    ) -> Album:
        v = val.Violations()
        aid = val.check_id(v, "album.id", album_id)
        if not paths:
            v.add(
                "update_mask",
                "must name at least one of " + ", ".join(sorted(UPDATABLE_ALBUM_PATHS)),
            )
        for path in sorted(paths - UPDATABLE_ALBUM_PATHS):
            v.add(
                "update_mask",
                f"cannot update {path[:64]!r}; allowed: "
                + ", ".join(sorted(UPDATABLE_ALBUM_PATHS)),
            )
        clean_title = _check_title(v, "album.title", title) if "title" in paths else ""
        clean_description = val.check_text(
            v,
            "album.description",
            description,
            max_chars=val.MAX_DESCRIPTION_CHARS,
            multiline=True,
        )
        cover = None
        if "cover_photo_id" in paths and cover_photo_id:
            cover = val.check_id(v, "album.cover_photo_id", cover_photo_id)
        v.raise_if_any()
        assert aid is not None
        if cover is not None and cover not in await self._repo.album_photo_ids(
            user_id, aid, [cover]
        ):
            # Not in the album (or not the caller's photo, or no such album: which one is
            # told apart below, where the album is looked up).
            if await self._repo.get_album(user_id, aid) is None:
                raise album_not_found(album_id)
            raise NotFound(f"photo {cover} is not in album {aid}", reason="PHOTO_NOT_IN_ALBUM")
        changes = AlbumChanges(
            paths=paths & UPDATABLE_ALBUM_PATHS,
            title=clean_title,
            description=clean_description,
            cover_photo_id=cover,
        )
        album = await self._repo.update_album(user_id, aid, changes, self._clock())
        if album is None:
            raise album_not_found(album_id)
        return album

    async def delete(self, user_id: str, album_id: str) -> None:
        aid = _checked_id("id", album_id)
        if not await self._repo.delete_album(user_id, aid):
            raise album_not_found(album_id)

    async def add_photos(self, user_id: str, album_id: str, photo_ids: Sequence[str]) -> Album:
        aid, ids = self._check_edit(album_id, photo_ids)
        edit = await self._repo.add_album_photos(
            user_id, aid, ids, max_photos=self.max_photos, now=self._clock()
        )
        if edit.over_limit:
            raise AlbumLimitExceeded(
                subject=f"album:{aid}",
                description=f"at most {self.max_photos} photos an album",
                reason="TOO_MANY_ALBUM_PHOTOS",
                limit=self.max_photos,
            )
        return self._edited(album_id, edit)

    async def remove_photos(self, user_id: str, album_id: str, photo_ids: Sequence[str]) -> Album:
        aid, ids = self._check_edit(album_id, photo_ids)
        edit = await self._repo.remove_album_photos(user_id, aid, ids, now=self._clock())
        return self._edited(album_id, edit)

    @staticmethod
    def _edited(album_id: str, edit: AlbumEdit) -> Album:
        if edit.album is None:
            raise album_not_found(album_id)
        if edit.missing_photo_ids:
            raise _photos_not_found(edit.missing_photo_ids)
        return edit.album

    @staticmethod
    def _check_edit(album_id: str, photo_ids: Sequence[str]) -> tuple[UUID, list[UUID]]:
        v = val.Violations()
        aid = val.check_id(v, "album_id", album_id)
        if not photo_ids:
            v.add("photo_ids", "must name at least one photo")
        elif len(photo_ids) > val.MAX_BATCH_IDS:
            v.add("photo_ids", f"must have at most {val.MAX_BATCH_IDS} ids (got {len(photo_ids)})")
            v.raise_if_any()
        ids = [val.check_id(v, f"photo_ids[{i}]", raw) for i, raw in enumerate(photo_ids)]
        v.raise_if_any()
        assert aid is not None
        return aid, list(dict.fromkeys(i for i in ids if i is not None))


def _check_title(v: val.Violations, field: str, value: str) -> str:
    return val.check_text(v, field, value, max_chars=val.MAX_TITLE_CHARS, required=True)


def _checked_id(field: str, value: str) -> UUID:
    v = val.Violations()
    parsed = val.check_id(v, field, value)
    v.raise_if_any()
    assert parsed is not None
    return parsed
