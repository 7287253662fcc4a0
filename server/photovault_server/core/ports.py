"""The three backends the core talks to. One real adapter each, plus in-memory fakes for tests.

Adapters translate their library's failures into `Unavailable` (metadata and object store) or
swallow them (the URL cache is an optimisation and must never fail a call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from .album_models import Album, AlbumChanges, AlbumEdit, ShareLink
from .models import (
    Account,
    Cursor,
    ImageMetadata,
    JobBacklog,
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
from .multipart_models import IncompleteUpload, MultipartUpload, UploadedPart


class DownloadSigner(Protocol):
    """Signs download URLs of private objects: the bucket itself (S3 presigned URLs) or a CDN
    in front of it (CloudFront signed URLs)."""

    async def url_scope(self) -> str:
        """A string that changes whenever the URLs this signer makes would point elsewhere or
        be fetched otherwise for the same object (never who signs them: see ObjectStore)."""
        ...

    async def url_lifetime_cap(self) -> timedelta | None:
        """How long a URL signed now may live at most (temporary credentials of unknown
        expiry); None when unbounded."""
        ...

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        """GET URLs for `keys`, in order, to expire at `expire_at` (or earlier where the
        signing credentials expire first). The same arguments and key give byte-identical
        URLs."""
        ...


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

    async def delete_many(self, keys: Sequence[str]) -> list[str]:
        """Deletes up to 1,000 objects in one request (S3 DeleteObjects); missing objects are
        not an error. Returns the keys that could not be deleted; raises Unavailable when the
        request as a whole failed."""
        ...

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        """Stores `data` at `key`, replacing any object there (the worker's variants)."""
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
        self,
        upload: Upload,
        *,
        default_quota_bytes: int,
        max_pending_uploads: int,
        now: datetime,
    ) -> Reservation:
        """Records the pending upload if confirmed bytes + live reservations + its size fit in
        the quota and the user has fewer than `max_pending_uploads` live reservations. Atomic
        per account, so concurrent reservations cannot overshoot."""
        ...

    async def get_upload(self, owner_id: str, upload_id: UUID) -> Upload | None: ...

    async def expire_upload(
        self, owner_id: str, upload_id: UUID, *, now: datetime, not_before: datetime
    ) -> str | None:
        """In one transaction: deletes the pending upload if its reservation ended by `now`
        and queues its object for deletion (again at `not_before`). Returns the object key,
        or None when there was no such expired upload (confirmed or taken meanwhile)."""
        ...

    async def claim_expired_uploads(
        self, before: datetime, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[Upload]:
        """Pending uploads whose reservation ended before `before`, oldest first, that no
        other sweeper holds (SKIP LOCKED); they are this sweeper's until `claim_until`."""
        ...

    async def delete_uploads(
        self,
        upload_ids: Sequence[UUID],
        *,
        delete_again: Sequence[str] = (),
        not_before: datetime | None = None,
    ) -> None:
        """Deletes claimed uploads whose objects are gone; in the same transaction queues
        `delete_again` (object keys that may still appear: a multipart upload a late confirm
        is assembling) for another deletion at or after `not_before`."""
        ...

    async def release_uploads(self, upload_ids: Sequence[UUID]) -> None:
        """Gives claimed uploads back (their objects could not be deleted now)."""
        ...

    async def confirm_upload(self, photo: Photo, *, now: datetime) -> Photo | None:
        """Atomically turns the pending upload `photo.id` into `photo` (PENDING), adds it to
        usage and queues its processing job, due at once, only while its reservation lasts
        (checked at `now`, in the statement that takes the row). When the photo already exists
        (a repeated or concurrent confirm) returns the stored one; otherwise (no upload, or an
        expired one) returns None."""
        ...

    async def get_photo(self, owner_id: str, photo_id: UUID) -> Photo | None: ...

    async def get_photos(self, owner_id: str, photo_ids: Sequence[UUID]) -> dict[UUID, Photo]: ...

    async def list_photos(self, query: PhotoQuery) -> list[Photo]:
        """Up to `query.limit` photos after `query.after` in `query.order`."""
        ...

    async def update_photo(
        self, owner_id: str, photo_id: UUID, changes: PhotoChanges, now: datetime
    ) -> Photo | None: ...

    async def delete_photo(
        self, owner_id: str, photo_id: UUID, *, upload_window: timedelta
    ) -> Photo | None:
        """In one transaction: deletes the row (and its job), releases its usage and queues its
        object and its variants' objects for deletion, so that they can go once the row is gone,
        and are never forgotten. The queue keeps the photo's object until it has been deleted
        once at or after the photo's create_time + `upload_window`, when no upload URL can
        create it again."""
        ...

    async def find_photo_by_checksum(self, owner_id: str, checksum_sha256: str) -> UUID | None:
        """The id of the owner's oldest confirmed photo outside the trash with this checksum,
        if any; looked up by owner first, never reading another owner's photos."""
        ...

    # The trash: a trashed photo keeps its row and usage; get_photo, get_photos, list_photos
    # and update_photo do not see it, delete_photo does.

    async def trash_photo(self, owner_id: str, photo_id: UUID, now: datetime) -> Photo | None:
        """Moves the photo to the trash at `now`, or keeps its first trash time when it is
        there already. None when the owner has no such photo."""
        ...

    async def restore_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        """Takes the photo out of the trash (a photo not in it is returned unchanged). None when
        the owner has no such photo."""
        ...

    async def list_trash(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Photo]:
        """Up to `limit` of the owner's trashed photos after `after` (its `create_time` holds
        a trash time), most recently trashed first, then by id, descending."""
        ...

    async def purge_trash(
        self, *, trashed_before: datetime, limit: int, upload_window: timedelta
    ) -> list[Photo]:
        """Deletes up to `limit` photos trashed before `trashed_before`, whoever owns them,
        oldest in the trash first, each exactly as delete_photo does (usage released, objects
        queued), in one transaction; concurrent sweeps take different photos."""
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

    async def job_backlog(self, now: datetime) -> JobBacklog:
        """The jobs due at `now` that no worker holds (for the operators' gauges)."""
        ...

    async def claim_object_deletions(
        self, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[str]:
        """Queued object keys due for a deletion (never deleted yet, or due again since
        `not_before`), oldest first, that no other sweeper holds (SKIP LOCKED); they are
        this sweeper's until `claim_until`."""
        ...

    async def objects_deleted(self, object_keys: Sequence[str], *, deleted_at: datetime) -> None:
        """The objects were deleted by a request sent at `deleted_at`: rows whose `not_before`
        had passed are done; the others wait for their second deletion."""
        ...

    async def release_object_deletions(self, object_keys: Sequence[str]) -> None:
        """Gives claimed keys back (their objects could not be deleted now)."""
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

    async def multiparts_of(self, upload_ids: Sequence[UUID]) -> dict[UUID, MultipartUpload]:
        """The multipart rows of those `upload_ids` that have one (the sweep's claimed expired
        uploads: the claims on their upload rows cover these too)."""
        ...

    async def owned_s3_uploads(self, s3_upload_ids: Sequence[str]) -> set[str]:
        """Those of `s3_upload_ids` that a pending upload row still owns."""
        ...


class AlbumRepository(Protocol):
    """Albums and their photos. An album holds only its owner's photos outside the trash (when
    added); a photo deleted for good leaves every album; a trashed one stays a member but is
    neither counted, nor listed, nor a cover until restored."""

    async def create_album(self, album: Album, *, max_albums: int) -> bool:
        """Stores the new album unless its owner already has `max_albums` (then False); atomic
        per account."""
        ...

    async def get_album(self, owner_id: str, album_id: UUID) -> Album | None: ...

    async def list_albums(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Album]:
        """Up to `limit` albums after `after` (create time, id), newest first."""
        ...

    async def update_album(
        self, owner_id: str, album_id: UUID, changes: AlbumChanges, now: datetime
    ) -> Album | None: ...

    async def delete_album(self, owner_id: str, album_id: UUID) -> bool:
        """Deletes the album, its memberships and its share links; never a photo."""
        ...

    async def album_photo_ids(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID]
    ) -> set[UUID]:
        """Those of `photo_ids` in the album and outside the trash."""
        ...

    async def add_album_photos(
        self,
        owner_id: str,
        album_id: UUID,
        photo_ids: Sequence[UUID],
        *,
        max_photos: int,
        now: datetime,
    ) -> AlbumEdit:
        """All or nothing, in one transaction: every id must be one of the owner's photos
        outside the trash, and the album must stay within `max_photos` memberships."""
        ...

    async def remove_album_photos(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID], *, now: datetime
    ) -> AlbumEdit:
        """All or nothing: every id must be one of the owner's photos outside the trash (one
        not in the album is no error)."""
        ...


class ShareLinkRepository(Protocol):
    async def create_share_link(self, link: ShareLink, *, max_links: int, now: datetime) -> bool:
        """Stores the link unless its owner already has `max_links` unexpired ones (False);
        atomic per account. The link's album or photo must be its owner's (else False too)."""
        ...

    async def list_share_links(self, owner_id: str, *, now: datetime) -> list[ShareLink]:
        """The owner's links unexpired at `now`, newest first."""
        ...

    async def revoke_share_link(self, owner_id: str, link_id: UUID) -> bool:
        """Deletes the link (False: the owner has no such link)."""
        ...

    async def find_share_link(self, token_sha256: bytes, *, now: datetime) -> ShareLink | None:
        """The unexpired link whose token has this SHA-256."""
        ...


class AttemptLimiter(Protocol):
    """Password attempts per share link (adapters/redis_attempts.py). Fails closed: when it
    cannot count, it raises Unavailable rather than let guesses through uncounted."""

    async def attempt(self, key: str) -> timedelta | None:
        """Counts one attempt; how long to wait when over the limit (the attempt is refused)."""
        ...

    async def succeeded(self, key: str) -> None:
        """The right password was given: the count starts again."""
        ...
