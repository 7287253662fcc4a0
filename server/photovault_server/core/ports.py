"""The three backends the core talks to. One real adapter each, plus in-memory fakes for tests.

Adapters translate their library's failures into `Unavailable` (metadata and object store) or
swallow them (the URL cache is an optimisation and must never fail a call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from .models import (
    Account,
    ObjectInfo,
    Photo,
    PhotoChanges,
    PhotoQuery,
    PresignedUpload,
    Reservation,
    SignedUrl,
    Upload,
)
from .multipart_models import IncompleteUpload, MultipartUpload, UploadedPart


class ObjectStore(Protocol):
    async def url_scope(self) -> str:
        """A string that changes whenever the URLs this store signs would point elsewhere or be
        fetched otherwise for the same object: bucket, region, endpoint, addressing style. Not
        the signing credentials: URLs signed by any process's credentials are interchangeable
        while they live (each cached entry carries its own expiry, capped by its signer's
        credentials), so the whole fleet shares one cache entry per object."""
        ...

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str,
        expires_in: timedelta,
    ) -> PresignedUpload:
        """A PUT URL that signs Content-Type, Content-Length, If-None-Match: * and, when given,
        x-amz-checksum-sha256; `headers` lists every header the client must send."""
        ...

    async def url_lifetime_cap(self) -> timedelta | None:
        """How long a URL signed now may live when the signing credentials are temporary but
        their expiry is unknown (Lambda's environment credentials); None when not needed."""
        ...

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        """GET URLs for `keys`, in order, signed as at `signed_at` to expire at `expire_at`, or
        earlier where the signing credentials expire first (never beyond SigV4's 7 days). The
        same arguments and credentials give byte-identical URLs."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size and type, or None when it does not exist."""
        ...

    async def read_prefix(self, key: str, length: int) -> bytes:
        """The first `length` bytes of the object (fewer if it is shorter)."""
        ...

    async def delete(self, key: str) -> None:
        """Deletes the object; deleting a missing object is not an error."""
        ...

    # S3 multipart uploads (core/multipart.py).

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Starts a multipart upload of `key` stored with `content_type`; its S3 upload id."""
        ...

    async def presign_upload_part(
        self,
        key: str,
        s3_upload_id: str,
        part_number: int,
        *,
        size_bytes: int,
        checksum_sha256: str,
        expires_in: timedelta,
    ) -> PresignedUpload:
        """A PUT URL for one part that signs partNumber, uploadId, the part's Content-Length
        and, when given, x-amz-checksum-sha256."""
        ...

    async def list_parts(self, key: str, s3_upload_id: str) -> list[UploadedPart] | None:
        """Every part uploaded so far, by number; None when the store has no such upload
        (completed or aborted)."""
        ...

    async def complete_multipart(
        self, key: str, s3_upload_id: str, parts: Sequence[UploadedPart]
    ) -> None:
        """Assembles the object from `parts` (as list_parts reported them)."""
        ...

    async def abort_multipart(self, key: str, s3_upload_id: str) -> None:
        """Drops the upload and every part; aborting an unknown upload is not an error."""
        ...

    def incomplete_multiparts(
        self, prefix: str, *, initiated_before: datetime
    ) -> AsyncIterator[list[IncompleteUpload]]:
        """Multipart uploads still open under `prefix` that began before `initiated_before`,
        a page at a time (the caller stops when it has enough)."""
        ...

    async def sha256(self, key: str) -> str:
        """The base64 SHA-256 of the object's bytes, read in chunks."""
        ...


class UrlCache(Protocol):
    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        """The cached URLs among `keys` (one round trip); missing keys are absent."""
        ...

    async def put_many(
        self,
        entries: Mapping[str, SignedUrl],
        margin: timedelta,
        *,
        replace: Collection[str] = (),
    ) -> dict[str, SignedUrl]:
        """Stores each entry until `expire_time - margin` unless one is already there, in one
        round trip. Returns, per key, the URL that won: the existing one when another caller
        stored first, so that concurrent misses hand out the same URL. Keys in `replace` hold
        entries known to be stale: those are overwritten."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...


class PhotoRepository(Protocol):
    async def get_account(
        self, user_id: str, *, default_quota_bytes: int, now: datetime
    ) -> Account:
        """The account, created on first use."""
        ...

    async def reserve_upload(
        self, upload: Upload, *, default_quota_bytes: int, now: datetime
    ) -> Reservation:
        """Records the pending upload if confirmed bytes + live reservations + its size fit in
        the quota. Atomic per account, so concurrent reservations cannot overshoot."""
        ...

    async def get_upload(self, owner_id: str, upload_id: UUID) -> Upload | None: ...

    async def delete_upload(self, owner_id: str, upload_id: UUID) -> None: ...

    async def expired_uploads(self, before: datetime, limit: int) -> list[Upload]:
        """Pending uploads whose reservation ended before `before`, oldest first."""
        ...

    async def confirm_upload(self, photo: Photo) -> Photo | None:
        """Atomically turns the pending upload `photo.id` into `photo` and adds it to usage.
        When the photo already exists (a repeated or concurrent confirm) returns the stored one;
        when neither exists returns None."""
        ...

    async def get_photo(self, owner_id: str, photo_id: UUID) -> Photo | None: ...

    async def get_photos(self, owner_id: str, photo_ids: Sequence[UUID]) -> dict[UUID, Photo]: ...

    async def list_photos(self, query: PhotoQuery) -> list[Photo]:
        """Up to `query.limit` photos after `query.after` in `query.order`."""
        ...

    async def update_photo(
        self, owner_id: str, photo_id: UUID, changes: PhotoChanges, now: datetime
    ) -> Photo | None: ...

    async def delete_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        """In one transaction: deletes the row, releases its usage and queues its object for
        deletion, so that the object can go once the row is gone, and is never forgotten."""
        ...

    async def queued_object_deletions(self, limit: int) -> list[str]:
        """Object keys queued by delete_photo and not yet done, oldest first."""
        ...

    async def object_deleted(self, object_key: str) -> None:
        """The queued object is gone from the store."""
        ...


class MultipartRepository(Protocol):
    """The multipart side of pending uploads: each row belongs to an `Upload` of the same id
    (which holds the quota reservation) and goes with it."""

    async def add_multipart(
        self, multipart: MultipartUpload, *, max_open: int, now: datetime
    ) -> bool:
        """Records the multipart upload of an upload just reserved, unless its owner already
        has `max_open` live ones (then False). Atomic per account."""
        ...

    async def get_multipart(self, owner_id: str, upload_id: UUID) -> MultipartUpload | None: ...

    async def expired_multiparts(
        self, before: datetime, limit: int
    ) -> list[tuple[Upload, MultipartUpload]]:
        """Multipart uploads whose reservation ended before `before`, oldest first."""
        ...

    async def owned_s3_uploads(self, s3_upload_ids: Sequence[str]) -> set[str]:
        """Those of `s3_upload_ids` that a pending upload row still owns."""
        ...
