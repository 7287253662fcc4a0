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


@dataclass(frozen=True, slots=True)
class PhotoUrl:
    """A download URL for one photo."""

    photo_id: str
    url: str
    expire_time: datetime | None  # None for unsigned (public) URLs


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
