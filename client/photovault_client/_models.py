"""The client's own types: what the RPCs take and return, as plain frozen dataclasses.

Times are timezone-aware UTC datetimes; an unset protobuf Timestamp is None.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class Visibility(enum.IntEnum):
    """Who may fetch a photo's bytes (photovault.v1.Visibility)."""

    UNSPECIFIED = 0
    PRIVATE = 1
    PUBLIC = 2


class PhotoOrder(enum.IntEnum):
    """Order of list_photos results (photovault.v1.PhotoOrder)."""

    UNSPECIFIED = 0
    NEWEST_FIRST = 1
    OLDEST_FIRST = 2
    TAKEN_NEWEST_FIRST = 3  # by taken time; a photo without one sorts by its create time
    TAKEN_OLDEST_FIRST = 4


class ProcessingState(enum.IntEnum):
    """Whether the server's worker has made the variants and read the metadata
    (photovault.v1.ProcessingState); until READY a photo has only its original."""

    UNSPECIFIED = 0
    PENDING = 1
    READY = 2
    FAILED = 3  # the bytes can never be processed; the original is still served


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """Where a photo was taken (EXIF GPS, degrees WGS 84); only ever sent to its owner."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class PhotoVariant:
    """A smaller rendition made by the worker (e.g. "thumb", "preview"), without metadata."""

    name: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    url: str
    url_expire_time: datetime | None  # None for unsigned (public) URLs


@dataclass(frozen=True, slots=True)
class Photo:
    """A confirmed photo with a download URL."""

    id: str
    owner_id: str
    file_name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    title: str
    description: str
    tags: tuple[str, ...]
    visibility: Visibility
    create_time: datetime
    update_time: datetime
    url: str
    url_expire_time: datetime | None  # None for unsigned (public) URLs
    # Read from the bytes by the worker: 0, None and empty until processing_state is READY.
    processing_state: ProcessingState = ProcessingState.UNSPECIFIED
    width: int = 0  # after EXIF orientation
    height: int = 0
    taken_time: datetime | None = None
    camera: str = ""
    location: GeoPoint | None = None
    placeholder: str = ""  # ThumbHash, base64
    variants: tuple[PhotoVariant, ...] = ()

    def variant(self, name: str) -> PhotoVariant | None:
        """The ready variant of that name, if the server sent it."""
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True, slots=True)
class PhotoUrl:
    """A download URL for one photo, or for one of its variants."""

    photo_id: str
    url: str
    expire_time: datetime | None  # None for unsigned (public) URLs
    # The variant the URL fetches; empty for the original (also when the variant asked for
    # is not ready yet: the server answers with the original's URL then).
    variant: str = ""


@dataclass(frozen=True, slots=True)
class PhotoPage:
    """One page of list_photos; `next_page_token` is empty on the last page."""

    photos: tuple[Photo, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class Account:
    """A user's usage and quota."""

    user_id: str
    photo_count: int
    used_bytes: int
    pending_bytes: int
    quota_bytes: int
    create_time: datetime | None


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """Where and how to send one photo's bytes (CreateUploadUrl's answer)."""

    upload_id: str
    upload_url: str
    method: str
    required_headers: Mapping[str, str]
    expire_time: datetime | None
    # Set (and the rest empty) when skip_if_duplicate found the caller's photo with the same
    # checksum: nothing to upload.
    existing_photo_id: str = ""


@dataclass(frozen=True, slots=True)
class Album:
    """A named set of the caller's photos."""

    id: str
    title: str
    description: str
    cover_photo_id: str  # the chosen cover, else the newest photo; empty for an empty album
    photo_count: int
    create_time: datetime | None
    update_time: datetime | None


@dataclass(frozen=True, slots=True)
class AlbumPage:
    """One page of list_albums; `next_page_token` is empty on the last page."""

    albums: tuple[Album, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A link to an album or a photo; `token` is set only where the link was created."""

    id: str
    token: str
    album_id: str
    photo_id: str
    expire_time: datetime | None
    allow_original: bool
    create_time: datetime | None
    has_password: bool


@dataclass(frozen=True, slots=True)
class SharedPhoto:
    """A photo as a share link shows it: variants with short-lived URLs, the original's URL
    only when the link allows it; nothing about its owner, file, camera or place."""

    id: str
    title: str
    description: str
    width: int
    height: int
    placeholder: str
    content_type: str
    url: str
    url_expire_time: datetime | None
    variants: tuple[PhotoVariant, ...]


@dataclass(frozen=True, slots=True)
class SharedAlbumPage:
    """One page of what a share link shows."""

    title: str
    description: str
    photos: tuple[SharedPhoto, ...]
    next_page_token: str
