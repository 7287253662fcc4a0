"""The three backends the core talks to. One real adapter each, plus in-memory fakes for tests.

Adapters translate their library's failures into `Unavailable` (metadata and object store) or
swallow them (the URL cache is an optimisation and must never fail a call).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from .models import (
    Account,
    ImageMetadata,
    ObjectInfo,
    Photo,
    PhotoChanges,
    PhotoJob,
    PhotoQuery,
    PhotoVariant,
    PresignedUpload,
    Reservation,
    SignedUrl,
    Upload,
)


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

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        """Stores `data` at `key`, replacing any object there (the worker's variants)."""
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
        """Atomically turns the pending upload `photo.id` into `photo` (PENDING), adds it to
        usage and queues its processing job, due at once. When the photo already exists (a
        repeated or concurrent confirm) returns the stored one; when neither exists returns
        None."""
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
        """In one transaction: deletes the row (and its job), releases its usage and queues its
        object and its variants' objects for deletion, so that they can go once the row is gone,
        and are never forgotten."""
        ...

    async def claim_photo_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[PhotoJob]:
        """Up to `limit` jobs due at `now`, longest waiting first, each counted as one more
        attempt and not due again until `now + lease` (a worker that dies mid-job leaves it to
        be claimed again then). Concurrent claims never return the same job."""
        ...

    async def finish_photo_job(
        self,
        owner_id: str,
        photo_id: UUID,
        metadata: ImageMetadata,
        variants: Sequence[PhotoVariant],
        now: datetime,
    ) -> bool:
        """In one transaction: the photo becomes READY with this metadata and these variants,
        and its job goes. When the photo is gone (deleted while it was processed), queues the
        variants' objects for deletion instead and returns False."""
        ...

    async def fail_photo_job(
        self, owner_id: str, photo_id: UUID, reason: str, now: datetime
    ) -> bool:
        """In one transaction: the photo becomes FAILED (`reason` kept for operators) and its job
        goes. False when the photo is gone."""
        ...

    async def retry_photo_job(self, photo_id: UUID, run_after: datetime, error: str) -> None:
        """The job is due again at `run_after` (a passing failure: S3 or Postgres down)."""
        ...

    async def queued_object_deletions(self, limit: int) -> list[str]:
        """Object keys queued by delete_photo and not yet done, oldest first."""
        ...

    async def object_deleted(self, object_key: str) -> None:
        """The queued object is gone from the store."""
        ...
