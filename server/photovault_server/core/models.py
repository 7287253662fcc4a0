"""Domain values the core works with: frozen msgspec Structs (dataclass-like records that
msgspec builds in C: cheaper to define at import and to instantiate per row) and, where a page
makes many, named tuples. No protobuf, no rows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from msgspec import Struct, field


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
    # By taken time; a photo without one sorts by its create time.
    TAKEN_NEWEST_FIRST = 3
    TAKEN_OLDEST_FIRST = 4

    @property
    def by_taken_time(self) -> bool:
        return self in (PhotoOrder.TAKEN_NEWEST_FIRST, PhotoOrder.TAKEN_OLDEST_FIRST)

    @property
    def newest_first(self) -> bool:
        return self not in (PhotoOrder.OLDEST_FIRST, PhotoOrder.TAKEN_OLDEST_FIRST)


class ProcessingState(enum.IntEnum):
    """Mirrors photovault.v1.ProcessingState (same numbers)."""

    UNSPECIFIED = 0
    PENDING = 1
    READY = 2
    FAILED = 3


class GeoPoint(Struct, frozen=True):
    latitude: float
    longitude: float


class VariantSpec(Struct, frozen=True):
    """One entry of PHOTOVAULT_VARIANTS: a name and the longest side in pixels."""

    name: str
    max_side: int


class PhotoVariant(Struct, frozen=True):
    """A rendition the worker stored. Its URL is not here: see ServedVariant."""

    name: str
    object_key: str
    content_type: str
    width: int
    height: int
    size_bytes: int


class ImageMetadata(Struct, frozen=True):
    """What the worker read from a photo's bytes."""

    width: int
    height: int
    taken_time: datetime | None = None
    camera: str = ""
    location: GeoPoint | None = None
    placeholder: str = ""


class Upload(Struct, frozen=True):
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


class Photo(Struct, frozen=True):
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
    # Written by the worker once it has read the bytes.
    processing_state: ProcessingState = ProcessingState.PENDING
    metadata: ImageMetadata | None = None
    variants: tuple[PhotoVariant, ...] = ()
    # When the photo was moved to the trash; None for a photo in the library.
    trash_time: datetime | None = None


class ServedVariant(NamedTuple):
    """A variant as it is handed out: with its download URL (expiry None: unsigned)."""

    variant: PhotoVariant
    url: str
    url_expire_time: datetime | None


class ServedPhoto(NamedTuple):
    """A photo as it is handed out: with its download URL and the chosen variants with
    theirs. URLs are filled in on the way out, never stored: they travel beside the photo to
    the transport's conversion, which writes them into the reply. (A tuple: a page makes 100
    of these, and copying each frozen Photo with its URL cost about half of a warm page's URL
    work.)"""

    photo: Photo
    url: str
    url_expire_time: datetime | None
    variants: tuple[ServedVariant, ...] = ()


class RenderedVariant(Struct, frozen=True):
    """A variant's bytes as the image pipeline made them, before they are stored."""

    name: str
    content_type: str
    width: int
    height: int
    data: bytes


class ProcessedImage(Struct, frozen=True):
    metadata: ImageMetadata
    variants: tuple[RenderedVariant, ...]


class JobBacklog(Struct, frozen=True):
    """Processing jobs waiting for a worker: due and claimed by none."""

    due: int
    oldest_due: datetime | None  # when the longest waiting one became due; None when none is


class PhotoJob(Struct, frozen=True):
    """A claimed job: the photo to process and how many times it has been claimed (this one
    included), so that a job that keeps killing its worker ends FAILED instead of looping."""

    photo: Photo
    attempts: int


class PhotoUrl(Struct, frozen=True):
    photo_id: UUID
    url: str
    expire_time: datetime | None
    variant: str = ""  # empty: the original


class Account(Struct, frozen=True):
    user_id: str
    photo_count: int
    used_bytes: int
    pending_bytes: int
    quota_bytes: int
    create_time: datetime


class UploadTicket(Struct, frozen=True):
    """What CreateUploadUrl hands back: where and how to PUT the bytes."""

    upload_id: UUID
    url: str
    method: str
    required_headers: dict[str, str]
    expire_time: datetime


class ExistingPhoto(Struct, frozen=True):
    """What CreateUploadUrl and CreateMultipartUpload answer, reserving nothing, when asked to
    skip a duplicate and the caller already has a photo with those bytes (core/duplicates.py)."""

    photo_id: UUID


class PhotoChanges(Struct, frozen=True):
    """The new values of an UpdatePhoto; only the fields named in `paths` apply."""

    paths: frozenset[str]
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    visibility: Visibility = Visibility.UNSPECIFIED


class PhotoFilter(Struct, frozen=True):
    """ListPhotos filters, already validated and normalised."""

    tags: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    visibility: Visibility = Visibility.UNSPECIFIED
    content_type: str = ""
    # On the taken time, or the create time of a photo without one.
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    # Only photos in this album (the caller's: checked before the query).
    album_id: UUID | None = None


class Cursor(Struct, frozen=True):
    """Keyset position: the last row of the previous page. `create_time` is the order's time
    key: the create time, or for the taken-time orders the taken time (else create time)."""

    create_time: datetime
    photo_id: UUID


class PhotoQuery(Struct, frozen=True):
    owner_id: str
    filter: PhotoFilter
    order: PhotoOrder
    limit: int
    after: Cursor | None = None


class PhotoPage(Struct, frozen=True):
    photos: list[ServedPhoto] = field(default_factory=list)
    next_page_token: str = ""


class ObjectInfo(Struct, frozen=True):
    """What HeadObject says about a stored object."""

    size_bytes: int
    content_type: str
    # Stored with the object when the uploader sent them (S3 keeps headers a presigned PUT
    # does not sign) and served with every download: never accepted (see _verify_object).
    served_headers: tuple[tuple[str, str], ...] = ()


class SignedUrl(Struct, frozen=True):
    url: str
    expire_time: datetime


class PresignedUpload(Struct, frozen=True):
    url: str
    headers: dict[str, str]
    expire_time: datetime


class Reservation(Struct, frozen=True):
    """Result of trying to reserve quota for an upload, with the numbers seen under the lock."""

    accepted: bool
    quota_bytes: int
    reserved_bytes: int
    # Refused because the user already holds the most pending uploads allowed.
    too_many_pending: bool = False
