"""Domain values the core works with. Plain frozen dataclasses: no protobuf, no rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


class Visibility(enum.IntEnum):
    """Mirrors photovault.v1.Visibility (same numbers)."""

    UNSPECIFIED = 0
    PRIVATE = 1
    PUBLIC = 2


class PhotoOrder(enum.IntEnum):
    """Mirrors photovault.v1.PhotoOrder (same numbers)."""

    UNSPECIFIED = 0
    NEWEST_FIRST = 1
    OLDEST_FIRST = 2


@dataclass(frozen=True, slots=True)
class Upload:
    """A presigned upload that was issued and not yet confirmed."""

    id: UUID
    owner_id: str
    object_key: str
    file_name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    create_time: datetime
    # The quota stays reserved, and a confirm is accepted, until then: the upload URL's own
    # expiry plus a confirm window, so that an upload that started in time can finish.
    reserved_until: datetime


@dataclass(frozen=True, slots=True)
class Photo:
    id: UUID
    owner_id: str
    object_key: str
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
    # Filled in by the core on the way out; never stored.
    url: str = ""
    url_expire_time: datetime | None = None

    def with_url(self, url: str, expire_time: datetime | None) -> Photo:
        # Positional: dataclasses.replace costs ~3x more, and a page does this 500 times.
        return Photo(
            self.id,
            self.owner_id,
            self.object_key,
            self.file_name,
            self.content_type,
            self.size_bytes,
            self.checksum_sha256,
            self.title,
            self.description,
            self.tags,
            self.visibility,
            self.create_time,
            self.update_time,
            url,
            expire_time,
        )


@dataclass(frozen=True, slots=True)
class PhotoUrl:
    photo_id: UUID
    url: str
    expire_time: datetime | None


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    photo_count: int
    used_bytes: int
    pending_bytes: int
    quota_bytes: int
    create_time: datetime


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """What CreateUploadUrl hands back: where and how to PUT the bytes."""

    upload_id: UUID
    url: str
    method: str
    required_headers: dict[str, str]
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class PhotoChanges:
    """The new values of an UpdatePhoto; only the fields named in `paths` apply."""

    paths: frozenset[str]
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    visibility: Visibility = Visibility.UNSPECIFIED


@dataclass(frozen=True, slots=True)
class PhotoFilter:
    """ListPhotos filters, already validated and normalised."""

    tags: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    visibility: Visibility = Visibility.UNSPECIFIED
    content_type: str = ""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position: the last row of the previous page."""

    create_time: datetime
    photo_id: UUID


@dataclass(frozen=True, slots=True)
class PhotoQuery:
    owner_id: str
    filter: PhotoFilter
    order: PhotoOrder
    limit: int
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class PhotoPage:
    photos: list[Photo] = field(default_factory=list)
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What HeadObject says about a stored object."""

    size_bytes: int
    content_type: str
    # Stored with the object when the uploader sent them (S3 keeps headers a presigned PUT
    # does not sign) and served with every download: never accepted (see _verify_object).
    served_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    url: str
    headers: dict[str, str]
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class Reservation:
    """Result of trying to reserve quota for an upload, with the numbers seen under the lock."""

    accepted: bool
    quota_bytes: int
    reserved_bytes: int
    # Refused because the user already holds the most pending uploads allowed.
    too_many_pending: bool = False
