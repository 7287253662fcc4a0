"""In-memory fakes of the core's three ports, and a harness wiring the core to them.

Each fake follows the docstrings in `photovault_server.core.ports`; the contract tests run the
same assertions against these fakes and the real adapters. Every `async` method yields to the
event loop once, as a real round trip would, so that `asyncio.gather` in a test really
interleaves concurrent calls (and a missing lock would show).
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from msgspec.structs import replace

from photovault_server.core import (
    Account,
    PageTokenCodec,
    Photo,
    PhotoChanges,
    PhotoService,
    ServiceConfig,
    Unavailable,
    UrlPolicy,
    Visibility,
)
from photovault_server.core.album_models import Album, AlbumChanges, AlbumEdit, ShareLink
from photovault_server.core.image_formats import DEFAULT_ALLOWED_TYPES
from photovault_server.core.models import (
    Cursor,
    ImageMetadata,
    JobBacklog,
    ObjectInfo,
    PhotoFilter,
    PhotoJob,
    PhotoQuery,
    PhotoVariant,
    PresignedUpload,
    ProcessingState,
    Reservation,
    ServedPhoto,
    SignedUrl,
    Upload,
)
from photovault_server.core.multipart_models import IncompleteUpload, MultipartUpload, UploadedPart
from photovault_server.core.ports import (
    AlbumRepository,
    AttemptLimiter,
    MultipartRepository,
    ObjectStore,
    PhotoRepository,
    ShareLinkRepository,
    UrlCache,
)

from .clock import FakeClock

# How long a SigV4 presigned URL may live.
SIGV4_MAX_LIFETIME = timedelta(days=7)


def window_of(now: datetime, lifetime: timedelta, margin: timedelta) -> tuple[datetime, datetime]:
    """(signed_at, expire_at) of the signing window `now` falls in, worked out apart from the
    core: windows of (lifetime - margin) whole seconds, counted from the Unix epoch. `margin`
    is the one the window uses (the policy's, at most half the lifetime)."""
    step = (lifetime - margin) // timedelta(seconds=1)
    start = calendar.timegm(now.utctimetuple()) // step * step
    signed_at = datetime.fromtimestamp(start, UTC)
    return signed_at, signed_at + lifetime


async def _round_trip() -> None:
    await asyncio.sleep(0)


class InMemoryObjectStore:
    """A bucket in a dict. Signed URLs are `https://s3.test/{key}?sig=S&date=D&expires=E`: S a
    digest of the scope (the signing key), the object key, D and E, so that, as with SigV4, the
    same arguments and credentials give byte-identical URLs. `signatures` counts every
    signature made (upload and download), so tests can count signing work."""

    def __init__(self, clock: FakeClock, *, scope: str = "s3.test|photos|path|AKIDTEST") -> None:
        self._clock = clock
        self.objects: dict[str, tuple[bytes, str]] = {}
        # What `url_scope` answers; change it to simulate a key rotation or a new endpoint.
        self.scope = scope
        # Every operation raises Unavailable while `fail` is set, or while its name
        # ("presign_upload", "presign_downloads", "head", "read_prefix", "delete",
        # "url_scope") is in `failing`.
        self.fail = False
        self.failing: set[str] = set()
        # When set, signed URLs expire no later than this (temporary credentials).
        self.credentials_expire_time: datetime | None = None
        # What `url_lifetime_cap` answers (temporary credentials of unknown expiry).
        self.lifetime_cap: timedelta | None = None
        # When set, every signature also carries its count, so no two URLs are alike (as if
        # each were signed by other credentials): tests can tell whose URL was handed out.
        self.unique_signatures = False
        self.signatures = 0
        self.download_batches: list[list[str]] = []
        self.deleted_keys: list[str] = []
        self.delete_batches: list[list[str]] = []
        # Open multipart uploads: S3 upload id -> (key, content type, initiated, parts).
        self.multiparts: dict[str, tuple[str, str, datetime, dict[int, bytes]]] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Stores an object as if a client had PUT it to an upload URL."""
        self.objects[key] = (data, content_type)

    def _check(self, operation: str) -> None:
        if self.fail or operation in self.failing:
            raise Unavailable("the object store is unavailable (simulated)")

    def _sign(self, key: str, signed_at: datetime, expire_at: datetime) -> tuple[str, datetime]:
        # Expiry as S3ObjectStore's: capped by the credentials and SigV4's 7 days, and a whole
        # number of seconds (at least one) after the signing time.
        self.signatures += 1
        expire_time = min(expire_at, signed_at + SIGV4_MAX_LIFETIME)
        if self.credentials_expire_time is not None:
            expire_time = min(expire_time, self.credentials_expire_time)
        date = signed_at.strftime("%Y%m%dT%H%M%SZ")
        seconds = max(int((expire_time - signed_at).total_seconds()), 1)
        material = f"{self.scope}\x00{key}\x00{date}\x00{seconds}".encode()
        sig = hashlib.blake2b(material, digest_size=8).hexdigest()
        if self.unique_signatures:
            sig += f"-{self.signatures}"
        url = f"https://s3.test/{key}?sig={sig}&date={date}&expires={seconds}"
        return url, signed_at + timedelta(seconds=seconds)

    async def url_scope(self) -> str:
        await _round_trip()
        self._check("url_scope")
        return self.scope

    async def url_lifetime_cap(self) -> timedelta | None:
        return self.lifetime_cap

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str,
        expires_in: timedelta,
    ) -> PresignedUpload:
        await _round_trip()
        self._check("presign_upload")
        now = self._clock().replace(microsecond=0)  # SigV4 dates are whole seconds
        url, expire_time = self._sign(key, now, now + expires_in)
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size_bytes),
            "If-None-Match": "*",
        }
        if checksum_sha256:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        return PresignedUpload(url=url, headers=headers, expire_time=expire_time)

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        await _round_trip()
        self._check("presign_downloads")
        self.download_batches.append(list(keys))
        signed = [self._sign(key, signed_at, expire_at) for key in keys]
        return [SignedUrl(url=url, expire_time=expire_time) for url, expire_time in signed]

    async def head(self, key: str) -> ObjectInfo | None:
        await _round_trip()
        self._check("head")
        found = self.objects.get(key)
        if found is None:
            return None
        data, content_type = found
        return ObjectInfo(size_bytes=len(data), content_type=content_type)

    async def read_prefix(self, key: str, length: int) -> bytes:
        await _round_trip()
        self._check("read_prefix")
        found = self.objects.get(key)
        if found is None:
            # S3 answers NoSuchKey, which S3ObjectStore reports as Unavailable.
            raise Unavailable(f"object store refused to read an object (NoSuchKey: {key})")
        return found[0][:length]

    async def delete(self, key: str) -> None:
        await _round_trip()
        self._check("delete")
        self.objects.pop(key, None)
        self.deleted_keys.append(key)

    async def delete_many(self, keys: Sequence[str]) -> list[str]:
        """One batch request; fails like `delete` (its name in `failing`). As S3ObjectStore,
        no request for no keys, and more than 1,000 refused before any request."""
        if not keys:
            return []
        if len(keys) > 1000:
            raise ValueError("at most 1000 keys per DeleteObjects request")
        await _round_trip()
        self._check("delete")
        self.delete_batches.append(list(keys))
        for key in keys:
            self.objects.pop(key, None)
            self.deleted_keys.append(key)
        return []

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        await _round_trip()
        self._check("write")
        self.objects[key] = (data, content_type)

    def put_part(self, s3_upload_id: str, part_number: int, data: bytes) -> None:
        """Stores a part as if a client had PUT it to a part URL."""
        self.multiparts[s3_upload_id][3][part_number] = data

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        await _round_trip()
        self._check("create_multipart")
        s3_upload_id = uuid4().hex
        self.multiparts[s3_upload_id] = (key, content_type, self._clock(), {})
        return s3_upload_id

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
        await _round_trip()
        self._check("presign_upload_part")
        now = self._clock().replace(microsecond=0)
        url, expire_time = self._sign(f"{key}?part={part_number}", now, now + expires_in)
        headers = {"Content-Length": str(size_bytes)}
        if checksum_sha256:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        return PresignedUpload(url=url, headers=headers, expire_time=expire_time)

    async def list_parts(self, key: str, s3_upload_id: str) -> list[UploadedPart] | None:
        await _round_trip()
        self._check("list_parts")
        found = self.multiparts.get(s3_upload_id)
        if found is None or found[0] != key:
            return None
        return [
            UploadedPart(n, len(data), f'"{hashlib.md5(data).hexdigest()}"')  # noqa: S324
            for n, data in sorted(found[3].items())
        ]

    async def complete_multipart(
        self, key: str, s3_upload_id: str, parts: Sequence[UploadedPart]
    ) -> None:
        await _round_trip()
        self._check("complete_multipart")
        found = self.multiparts.get(s3_upload_id)
        if found is None or found[0] != key:
            raise Unavailable("object store refused to complete a multipart upload (NoSuchUpload)")
        held = found[3]
        if any(p.part_number not in held for p in parts):
            raise Unavailable("object store refused to complete a multipart upload (InvalidPart)")
        del self.multiparts[s3_upload_id]
        self.objects[key] = (b"".join(held[p.part_number] for p in parts), found[1])

    async def abort_multipart(self, key: str, s3_upload_id: str) -> None:
        await _round_trip()
        self._check("abort_multipart")
        found = self.multiparts.get(s3_upload_id)
        if found is not None and found[0] == key:
            del self.multiparts[s3_upload_id]

    async def incomplete_multiparts(
        self, prefix: str, *, initiated_before: datetime
    ) -> AsyncIterator[list[IncompleteUpload]]:
        await _round_trip()
        self._check("incomplete_multiparts")
        found = [
            IncompleteUpload(key, s3_id, initiated)
            for s3_id, (key, _, initiated, _) in self.multiparts.items()
            if key.startswith(prefix) and initiated < initiated_before
        ]
        for start in range(0, len(found), 2):  # small pages, so that paging is exercised
            yield found[start : start + 2]

    async def sha256(self, key: str) -> str:
        await _round_trip()
        self._check("sha256")
        found = self.objects.get(key)
        if found is None:
            raise Unavailable(f"object store refused to read an object (NoSuchKey: {key})")
        return base64.b64encode(hashlib.sha256(found[0]).digest()).decode()


class InMemoryUrlCache:
    """Issued download URLs with an eviction time, read from the clock it is given.

    `down` simulates Redis being unreachable the way the real adapter handles it: reads find
    nothing, writes store nothing, nothing raises. Each method call counts as one round trip.
    """

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        # key -> (URL, eviction time = URL expiry - margin at the time it was stored)
        self.entries: dict[str, tuple[SignedUrl, datetime]] = {}
        self.down = False
        self.get_many_calls = 0
        self.put_many_calls = 0
        self.delete_many_calls = 0
        self.deleted_keys: list[str] = []

    @property
    def round_trips(self) -> int:
        return self.get_many_calls + self.put_many_calls + self.delete_many_calls

    def _live(self, key: str) -> SignedUrl | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        url, evict_at = entry
        if evict_at <= self._clock():
            del self.entries[key]
            return None
        return url

    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        self.get_many_calls += 1
        await _round_trip()
        if self.down:
            return {}
        found = {key: self._live(key) for key in keys}
        return {key: url for key, url in found.items() if url is not None}

    async def put_many(
        self,
        entries: Mapping[str, SignedUrl],
        margin: timedelta,
        *,
        replace: Collection[str] = (),
    ) -> dict[str, SignedUrl]:
        self.put_many_calls += 1
        await _round_trip()
        if self.down:
            return {}  # as RedisUrlCache failing open: nobody else's URL, each caller's own
        now = self._clock()
        winners: dict[str, SignedUrl] = {}
        for key, url in entries.items():
            existing = None if key in replace else self._live(key)
            if existing is not None:
                winners[key] = existing  # another caller stored first: its URL wins
                continue
            evict_at = url.expire_time - margin
            if evict_at > now:  # a URL without the margin left is not worth storing...
                self.entries[key] = (url, evict_at)
                winners[key] = url  # ...nor reported, as RedisUrlCache does not
        return winners

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.delete_many_calls += 1
        await _round_trip()
        if self.down:
            return
        for key in keys:
            self.entries.pop(key, None)
            self.deleted_keys.append(key)


@dataclass
class FakeJob:
    run_after: datetime
    attempts: int = 0
    last_error: str = ""


class InMemoryPhotoRepository:
    """Accounts, pending uploads and photos in dicts; one asyncio.Lock makes reservations,
    confirms and deletes atomic, as the real repository's transactions and row locks do."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.uploads: dict[UUID, Upload] = {}
        # Queued object deletions, oldest first: key -> its row (see QueuedDeletion).
        self.object_deletions: dict[str, QueuedDeletion] = {}
        self.upload_claims: dict[UUID, datetime] = {}
        self.photos: dict[UUID, Photo] = {}
        self.quotas: dict[str, int] = {}  # accounts.quota_bytes where it is not NULL
        self.jobs: dict[UUID, FakeJob] = {}
        self.processing_errors: dict[UUID, str] = {}
        # Album memberships (InMemoryAlbumRepository's): album id -> photo id -> add time.
        self.album_photos: dict[UUID, dict[UUID, datetime]] = {}
        # Every operation raises Unavailable while set (the database is down).
        self.fail = False
        self._lock = asyncio.Lock()

    async def _enter(self) -> None:
        await _round_trip()
        if self.fail:
            raise Unavailable("the metadata database is unavailable (simulated)")

    def _pending_bytes(self, user_id: str, now: datetime) -> int:
        return sum(
            u.size_bytes
            for u in self.uploads.values()
            if u.owner_id == user_id and u.reserved_until > now
        )

    def _account(self, user_id: str, default_quota_bytes: int, now: datetime) -> Account:
        account = self.accounts.get(user_id)
        if account is None:
            account = Account(
                user_id=user_id,
                photo_count=0,
                used_bytes=0,
                pending_bytes=0,
                quota_bytes=default_quota_bytes,
                create_time=now,
            )
            self.accounts[user_id] = account
        # As in Postgres, an account has no quota of its own unless an operator gives it one
        # (`quotas`): the default configured now applies.
        return replace(account, quota_bytes=self.quotas.get(user_id, default_quota_bytes))

    def _add_usage(self, user_id: str, photos: int, size_bytes: int) -> None:
        account = self.accounts[user_id]
        self.accounts[user_id] = replace(
            account,
            photo_count=account.photo_count + photos,
            used_bytes=account.used_bytes + size_bytes,
        )

    async def get_account(
        self, user_id: str, *, default_quota_bytes: int, now: datetime
    ) -> Account:
        await self._enter()
        account = self._account(user_id, default_quota_bytes, now)
        return replace(account, pending_bytes=self._pending_bytes(user_id, now))

    async def reserve_upload(
        self,
        upload: Upload,
        *,
        default_quota_bytes: int,
        max_pending_uploads: int,
        now: datetime,
    ) -> Reservation:
        await self._enter()
        async with self._lock:
            account = self._account(upload.owner_id, default_quota_bytes, now)
            reserved = account.used_bytes + self._pending_bytes(upload.owner_id, now)
            # A round trip between reading the usage and writing the reservation: without
            # the lock, concurrent reservations would all pass the check and overshoot.
            await _round_trip()
            pending = sum(
                1
                for u in self.uploads.values()
                if u.owner_id == upload.owner_id and u.reserved_until > now
            )
            if pending >= max_pending_uploads:
                return Reservation(
                    accepted=False,
                    quota_bytes=account.quota_bytes,
                    reserved_bytes=reserved,
                    too_many_pending=True,
                )
            if reserved + upload.size_bytes > account.quota_bytes:
                return Reservation(
                    accepted=False, quota_bytes=account.quota_bytes, reserved_bytes=reserved
                )
            self.uploads[upload.id] = upload
            return Reservation(
                accepted=True,
                quota_bytes=account.quota_bytes,
                reserved_bytes=reserved + upload.size_bytes,
            )

    async def get_upload(self, owner_id: str, upload_id: UUID) -> Upload | None:
        await self._enter()
        upload = self.uploads.get(upload_id)
        return upload if upload is not None and upload.owner_id == owner_id else None

    async def expire_upload(
        self, owner_id: str, upload_id: UUID, *, now: datetime, not_before: datetime
    ) -> str | None:
        await self._enter()
        async with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.owner_id != owner_id or upload.reserved_until > now:
                return None
            del self.uploads[upload_id]
            self._queue_deletion(upload.object_key, not_before)
            return upload.object_key

    async def claim_expired_uploads(
        self, before: datetime, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[Upload]:
        await self._enter()
        # As the SQL: a claim holds through `claim_until` and is free only once it is past.
        free = [
            u
            for u in self.uploads.values()
            if u.reserved_until < before
            and ((held := self.upload_claims.get(u.id)) is None or held < now)
        ]
        taken = sorted(free, key=lambda u: u.reserved_until)[:limit]
        self.upload_claims.update({u.id: claim_until for u in taken})
        return taken

    async def delete_uploads(
        self,
        upload_ids: Sequence[UUID],
        *,
        delete_again: Sequence[str] = (),
        not_before: datetime | None = None,
    ) -> None:
        await self._enter()
        for upload_id in upload_ids:
            self.uploads.pop(upload_id, None)
            self.upload_claims.pop(upload_id, None)
        for key in delete_again:
            self._queue_deletion(key, not_before or datetime.min.replace(tzinfo=UTC))

    async def release_uploads(self, upload_ids: Sequence[UUID]) -> None:
        await self._enter()
        for upload_id in upload_ids:
            self.upload_claims.pop(upload_id, None)

    async def confirm_upload(self, photo: Photo, *, now: datetime) -> Photo | None:
        await self._enter()
        async with self._lock:
            stored = self.photos.get(photo.id)
            if stored is not None:
                return stored if stored.owner_id == photo.owner_id else None
            upload = self.uploads.get(photo.id)
            if upload is None or upload.owner_id != photo.owner_id or upload.reserved_until <= now:
                return None
            del self.uploads[photo.id]
            self.photos[photo.id] = photo
            self._add_usage(photo.owner_id, 1, photo.size_bytes)
            self.jobs[photo.id] = FakeJob(run_after=photo.create_time)
            return photo

    async def get_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        await self._enter()
        photo = self.photos.get(photo_id)
        return photo if _live(photo, owner_id) else None

    async def get_photos(self, owner_id: str, photo_ids: Sequence[UUID]) -> dict[UUID, Photo]:
        await self._enter()
        found = {pid: self.photos.get(pid) for pid in photo_ids}
        return {pid: p for pid, p in found.items() if p is not None and _live(p, owner_id)}

    async def list_photos(self, query: PhotoQuery) -> list[Photo]:
        await self._enter()
        newest_first = query.order.newest_first

        def key(p: Photo) -> tuple[datetime, UUID]:
            return (taken_sort_time(p) if query.order.by_taken_time else p.create_time, p.id)

        members = (
            None
            if query.filter.album_id is None
            else self.album_photos.get(query.filter.album_id, {})
        )
        rows = [
            p
            for p in self.photos.values()
            if _live(p, query.owner_id)
            and _matches(p, query.filter)
            and (members is None or p.id in members)
        ]
        if query.after is not None:
            cursor = (query.after.create_time, query.after.photo_id)
            if newest_first:
                rows = [p for p in rows if key(p) < cursor]
            else:
                rows = [p for p in rows if key(p) > cursor]
        rows.sort(key=key, reverse=newest_first)
        return rows[: query.limit]

    async def update_photo(
        self, owner_id: str, photo_id: UUID, changes: PhotoChanges, now: datetime
    ) -> Photo | None:
        await self._enter()
        photo = self.photos.get(photo_id)
        if photo is None or not _live(photo, owner_id):
            return None
        paths = changes.paths
        updated = replace(
            photo,
            title=changes.title if "title" in paths else photo.title,
            description=changes.description if "description" in paths else photo.description,
            tags=changes.tags if "tags" in paths else photo.tags,
            visibility=changes.visibility if "visibility" in paths else photo.visibility,
            update_time=now,
        )
        self.photos[photo_id] = updated
        return updated

    async def delete_photo(
        self, owner_id: str, photo_id: UUID, *, upload_window: timedelta
    ) -> Photo | None:
        await self._enter()
        async with self._lock:
            photo = self.photos.get(photo_id)
            if photo is None or photo.owner_id != owner_id:
                return None
            self._photo_deleted(photo, upload_window)
            return photo

    def _photo_deleted(self, photo: Photo, upload_window: timedelta) -> None:
        del self.photos[photo.id]
        for members in self.album_photos.values():  # ON DELETE CASCADE
            members.pop(photo.id, None)
        self.jobs.pop(photo.id, None)
        self._add_usage(photo.owner_id, -1, -photo.size_bytes)
        self._queue_deletion(photo.object_key, photo.create_time + upload_window)
        for variant in photo.variants:
            self._queue_deletion(variant.object_key, NO_SECOND_DELETION)

    async def find_photo_by_checksum(self, owner_id: str, checksum_sha256: str) -> UUID | None:
        await self._enter()
        matches = [
            p
            for p in self.photos.values()
            if _live(p, owner_id) and p.checksum_sha256 == checksum_sha256
        ]
        return min(matches, key=lambda p: (p.create_time, p.id)).id if matches else None

    async def trash_photo(self, owner_id: str, photo_id: UUID, now: datetime) -> Photo | None:
        await self._enter()
        photo = self.photos.get(photo_id)
        if photo is None or photo.owner_id != owner_id:
            return None
        if photo.trash_time is None:
            photo = self.photos[photo_id] = replace(photo, trash_time=now)
        return photo

    async def restore_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        await self._enter()
        photo = self.photos.get(photo_id)
        if photo is None or photo.owner_id != owner_id:
            return None
        photo = self.photos[photo_id] = replace(photo, trash_time=None)
        return photo

    async def list_trash(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Photo]:
        await self._enter()

        def key(p: Photo) -> tuple[datetime, UUID]:
            assert p.trash_time is not None
            return (p.trash_time, p.id)

        rows = [
            p for p in self.photos.values() if p.owner_id == owner_id and p.trash_time is not None
        ]
        if after is not None:
            rows = [p for p in rows if key(p) < (after.create_time, after.photo_id)]
        rows.sort(key=key, reverse=True)
        return rows[:limit]

    async def purge_trash(
        self, *, trashed_before: datetime, limit: int, upload_window: timedelta
    ) -> list[Photo]:
        await self._enter()
        async with self._lock:
            due = sorted(
                (p for p in self.photos.values() if p.trash_time and p.trash_time < trashed_before),
                key=lambda p: (p.trash_time, p.id),
            )[:limit]
            for photo in due:
                self._photo_deleted(photo, upload_window)
            return due

    def _queue_deletion(self, key: str, not_before: datetime) -> None:
        queued = self.object_deletions.get(key)
        if queued is None:
            self.object_deletions[key] = QueuedDeletion(not_before)
            return
        # As the SQL's ON CONFLICT: the later not_before, due again, a sweeper's claim kept.
        self.object_deletions[key] = dataclasses.replace(
            queued, not_before=max(not_before, queued.not_before), deleted_once=False
        )

    async def claim_photo_jobs(self, now: datetime, limit: int, lease: timedelta) -> list[PhotoJob]:
        await self._enter()
        due = sorted((job.run_after, pid) for pid, job in self.jobs.items() if job.run_after <= now)
        claimed = []
        for pid in sorted(
            (pid for _, pid in due[:limit]), key=lambda p: self.photos[p].create_time
        ):
            job = self.jobs[pid]
            job.attempts += 1
            job.run_after = now + lease
            claimed.append(PhotoJob(photo=self.photos[pid], attempts=job.attempts))
        return claimed

    async def finish_photo_job(
        self,
        owner_id: str,
        photo_id: UUID,
        metadata: ImageMetadata,
        variants: Sequence[PhotoVariant],
        now: datetime,
    ) -> bool:
        await self._enter()
        photo = self.photos.get(photo_id)
        if photo is None or photo.owner_id != owner_id:
            for variant in variants:
                self._queue_deletion(variant.object_key, now)
            return False
        self.photos[photo_id] = replace(
            photo,
            processing_state=ProcessingState.READY,
            metadata=metadata,
            variants=tuple(variants),
            update_time=now,
        )
        self.jobs.pop(photo_id, None)
        return True

    async def fail_photo_job(
        self, owner_id: str, photo_id: UUID, reason: str, now: datetime
    ) -> bool:
        await self._enter()
        self.jobs.pop(photo_id, None)
        photo = self.photos.get(photo_id)
        if photo is None or photo.owner_id != owner_id:
            return False
        self.photos[photo_id] = replace(
            photo, processing_state=ProcessingState.FAILED, update_time=now
        )
        self.processing_errors[photo_id] = reason
        return True

    async def retry_photo_job(self, photo_id: UUID, run_after: datetime, error: str) -> None:
        await self._enter()
        job = self.jobs.get(photo_id)
        if job is not None:
            job.run_after, job.last_error = run_after, error

    async def job_backlog(self, now: datetime) -> JobBacklog:
        await self._enter()
        due = [job.run_after for job in self.jobs.values() if job.run_after <= now]
        return JobBacklog(due=len(due), oldest_due=min(due, default=None))

    async def claim_object_deletions(
        self, *, now: datetime, claim_until: datetime, limit: int
    ) -> list[str]:
        await self._enter()
        due = [
            key
            for key, q in self.object_deletions.items()  # insertion order: oldest first
            if (not q.deleted_once or q.not_before <= now)
            and (q.claimed_until is None or q.claimed_until < now)
        ][:limit]
        for key in due:
            self.object_deletions[key] = dataclasses.replace(
                self.object_deletions[key], claimed_until=claim_until
            )
        return due

    async def objects_deleted(self, object_keys: Sequence[str], *, deleted_at: datetime) -> None:
        await self._enter()
        for key in object_keys:
            queued = self.object_deletions.get(key)
            if queued is None:
                continue
            if queued.not_before <= deleted_at:
                del self.object_deletions[key]
            else:
                self.object_deletions[key] = QueuedDeletion(queued.not_before, deleted_once=True)

    async def release_object_deletions(self, object_keys: Sequence[str]) -> None:
        await self._enter()
        for key in object_keys:
            if key in self.object_deletions:
                queued = self.object_deletions[key]
                self.object_deletions[key] = dataclasses.replace(queued, claimed_until=None)


# not_before of a key that no upload URL can recreate (the SQL's '-infinity'): one deletion
# from now on will do.
NO_SECOND_DELETION = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class QueuedDeletion:
    """A row of object_deletions: deleted (again) at or after `not_before`."""

    not_before: datetime
    deleted_once: bool = False
    claimed_until: datetime | None = None


def _live(photo: Photo | None, owner_id: str) -> bool:
    """The owner's photo, not in the trash (what the repository's reads see)."""
    return photo is not None and photo.owner_id == owner_id and photo.trash_time is None


def taken_sort_time(photo: Photo) -> datetime:
    """The taken-time orders' key: the taken time, else the create time."""
    taken = photo.metadata.taken_time if photo.metadata else None
    return taken or photo.create_time


class InMemoryMultipartRepository:
    """Multipart rows beside an InMemoryPhotoRepository's uploads; a row whose upload is gone
    (confirmed, aborted, swept) is gone too, as ON DELETE CASCADE makes it in Postgres."""

    def __init__(self, repo: InMemoryPhotoRepository) -> None:
        self._repo = repo
        self.rows: dict[UUID, MultipartUpload] = {}

    def _live_rows(self) -> dict[UUID, MultipartUpload]:
        self.rows = {k: v for k, v in self.rows.items() if k in self._repo.uploads}
        return self.rows

    async def add_multipart(
        self, multipart: MultipartUpload, *, max_open: int, now: datetime
    ) -> bool:
        await self._repo._enter()
        async with self._repo._lock:
            open_now = sum(
                1
                for m in self._live_rows().values()
                if m.owner_id == multipart.owner_id
                and self._repo.uploads[m.upload_id].reserved_until > now
            )
            await _round_trip()
            if open_now >= max_open:
                return False
            self.rows[multipart.upload_id] = multipart
            return True

    async def get_multipart(self, owner_id: str, upload_id: UUID) -> MultipartUpload | None:
        await self._repo._enter()
        found = self._live_rows().get(upload_id)
        return found if found is not None and found.owner_id == owner_id else None

    async def owned_s3_uploads(self, s3_upload_ids: Sequence[str]) -> set[str]:
        await self._repo._enter()
        owned = {m.s3_upload_id for m in self._live_rows().values()}
        return owned & set(s3_upload_ids)

    async def multiparts_of(self, upload_ids: Sequence[UUID]) -> dict[UUID, MultipartUpload]:
        await self._repo._enter()
        rows = self._live_rows()
        return {k: rows[k] for k in upload_ids if k in rows}


class InMemoryAlbumRepository:
    """Albums beside an InMemoryPhotoRepository's photos (memberships kept there, so that its
    list_photos filters by album and its deletions cascade); count and cover computed on read,
    as the SQL does."""

    def __init__(self, repo: InMemoryPhotoRepository) -> None:
        self._repo = repo
        self.albums: dict[UUID, Album] = {}
        self.covers: dict[UUID, UUID | None] = {}
        # Share links of deleted albums go with them (InMemoryShareLinkRepository's rows).
        self.on_delete: list[Callable[[UUID], None]] = []

    def _members(self, album_id: UUID) -> dict[UUID, datetime]:
        return self._repo.album_photos.setdefault(album_id, {})

    def _read(self, album: Album) -> Album:
        live = [
            p
            for pid in self._members(album.id)
            if (p := self._repo.photos.get(pid)) is not None and p.trash_time is None
        ]
        chosen = self.covers.get(album.id)
        cover = chosen if chosen in {p.id for p in live} else None
        if cover is None and live:
            cover = max(live, key=lambda p: (p.create_time, p.id)).id
        return replace(album, photo_count=len(live), cover_photo_id=cover)

    def _owned(self, owner_id: str, album_id: UUID) -> Album | None:
        album = self.albums.get(album_id)
        return album if album is not None and album.owner_id == owner_id else None

    async def create_album(self, album: Album, *, max_albums: int) -> bool:
        await self._repo._enter()
        async with self._repo._lock:
            if sum(1 for a in self.albums.values() if a.owner_id == album.owner_id) >= max_albums:
                return False
            self.albums[album.id] = album
            return True

    async def get_album(self, owner_id: str, album_id: UUID) -> Album | None:
        await self._repo._enter()
        album = self._owned(owner_id, album_id)
        return self._read(album) if album else None

    async def list_albums(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Album]:
        await self._repo._enter()
        rows = sorted(
            (a for a in self.albums.values() if a.owner_id == owner_id),
            key=lambda a: (a.create_time, a.id),
            reverse=True,
        )
        if after is not None:
            rows = [a for a in rows if (a.create_time, a.id) < (after.create_time, after.photo_id)]
        return [self._read(a) for a in rows[:limit]]

    async def update_album(
        self, owner_id: str, album_id: UUID, changes: AlbumChanges, now: datetime
    ) -> Album | None:
        await self._repo._enter()
        album = self._owned(owner_id, album_id)
        if album is None:
            return None
        paths = changes.paths
        album = self.albums[album_id] = replace(
            album,
            title=changes.title if "title" in paths else album.title,
            description=changes.description if "description" in paths else album.description,
            update_time=now,
        )
        if "cover_photo_id" in paths:
            self.covers[album_id] = changes.cover_photo_id
        return self._read(album)

    async def delete_album(self, owner_id: str, album_id: UUID) -> bool:
        await self._repo._enter()
        if self._owned(owner_id, album_id) is None:
            return False
        del self.albums[album_id]
        self._repo.album_photos.pop(album_id, None)
        for hook in self.on_delete:
            hook(album_id)
        return True

    async def album_photo_ids(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID]
    ) -> set[UUID]:
        await self._repo._enter()
        if self._owned(owner_id, album_id) is None:
            return set()
        members = self._members(album_id)
        return {i for i in photo_ids if i in members and _live(self._repo.photos.get(i), owner_id)}

    def _missing(self, owner_id: str, photo_ids: Sequence[UUID]) -> tuple[UUID, ...]:
        return tuple(i for i in photo_ids if not _live(self._repo.photos.get(i), owner_id))

    async def add_album_photos(
        self,
        owner_id: str,
        album_id: UUID,
        photo_ids: Sequence[UUID],
        *,
        max_photos: int,
        now: datetime,
    ) -> AlbumEdit:
        await self._repo._enter()
        async with self._repo._lock:
            album = self._owned(owner_id, album_id)
            if album is None:
                return AlbumEdit(album=None)
            if missing := self._missing(owner_id, photo_ids):
                return AlbumEdit(album=self._read(album), missing_photo_ids=missing)
            members = self._members(album_id)
            new = [i for i in dict.fromkeys(photo_ids) if i not in members]
            if len(members) + len(new) > max_photos:
                return AlbumEdit(album=self._read(album), over_limit=True)
            for i in new:
                members[i] = now
            if new:
                album = self.albums[album_id] = replace(album, update_time=now)
            return AlbumEdit(album=self._read(album))

    async def remove_album_photos(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID], *, now: datetime
    ) -> AlbumEdit:
        await self._repo._enter()
        async with self._repo._lock:
            album = self._owned(owner_id, album_id)
            if album is None:
                return AlbumEdit(album=None)
            if missing := self._missing(owner_id, photo_ids):
                return AlbumEdit(album=self._read(album), missing_photo_ids=missing)
            members = self._members(album_id)
            removed = [i for i in photo_ids if members.pop(i, None) is not None]
            if removed:
                album = self.albums[album_id] = replace(album, update_time=now)
            return AlbumEdit(album=self._read(album))


class InMemoryShareLinkRepository:
    """Share links whose album or photo must be their owner's; a deleted album or photo takes
    its links with it (read as gone when the target is)."""

    def __init__(self, repo: InMemoryPhotoRepository, albums: InMemoryAlbumRepository) -> None:
        self._repo = repo
        self._albums = albums
        self.links: dict[UUID, ShareLink] = {}
        albums.on_delete.append(self._album_deleted)

    def _album_deleted(self, album_id: UUID) -> None:
        self.links = {k: v for k, v in self.links.items() if v.album_id != album_id}

    def _live(self, link: ShareLink, now: datetime) -> bool:
        if link.photo_id is not None and link.photo_id not in self._repo.photos:
            return False  # deleted photo: cascaded
        return link.expire_time > now

    async def create_share_link(self, link: ShareLink, *, max_links: int, now: datetime) -> bool:
        await self._repo._enter()
        async with self._repo._lock:
            self.links = {
                k: v
                for k, v in self.links.items()
                if v.owner_id != link.owner_id or self._live(v, now)
            }
            if sum(1 for v in self.links.values() if v.owner_id == link.owner_id) >= max_links:
                return False
            if link.album_id is not None:
                album = self._albums.albums.get(link.album_id)
                if album is None or album.owner_id != link.owner_id:
                    return False
            if link.photo_id is not None and not _live(
                self._repo.photos.get(link.photo_id), link.owner_id
            ):
                return False
            self.links[link.id] = link
            return True

    async def list_share_links(self, owner_id: str, *, now: datetime) -> list[ShareLink]:
        await self._repo._enter()
        return sorted(
            (v for v in self.links.values() if v.owner_id == owner_id and self._live(v, now)),
            key=lambda v: (v.create_time, v.id),
            reverse=True,
        )

    async def revoke_share_link(self, owner_id: str, link_id: UUID) -> bool:
        await self._repo._enter()
        link = self.links.get(link_id)
        if link is None or link.owner_id != owner_id:
            return False
        del self.links[link_id]
        return True

    async def find_share_link(self, token_sha256: bytes, *, now: datetime) -> ShareLink | None:
        await self._repo._enter()
        for link in self.links.values():
            if link.token_sha256 == token_sha256 and self._live(link, now):
                return link
        return None


class InMemoryAttemptLimiter:
    """Counts attempts per key: `burst` allowed, then refused until `succeeded` (no refill:
    unit tests do not wait for one). `fail` makes it unable to count (Redis down)."""

    def __init__(self, *, burst: int = 5) -> None:
        self.burst = burst
        self.counts: dict[str, int] = {}
        self.fail = False

    async def attempt(self, key: str) -> timedelta | None:
        await _round_trip()
        if self.fail:
            raise Unavailable("password attempts cannot be counted (simulated)")
        if self.counts.get(key, 0) >= self.burst:
            return timedelta(seconds=12)
        self.counts[key] = self.counts.get(key, 0) + 1
        return None

    async def succeeded(self, key: str) -> None:
        await _round_trip()
        if self.fail:
            raise Unavailable("password attempts cannot be counted (simulated)")
        self.counts.pop(key, None)


def _matches(photo: Photo, flt: PhotoFilter) -> bool:
    if not set(flt.tags) <= set(photo.tags):
        return False
    texts = (photo.title.lower(), photo.description.lower(), photo.file_name.lower())
    if not all(any(word.lower() in text for text in texts) for word in flt.words):
        return False
    if flt.created_after is not None and photo.create_time < flt.created_after:
        return False
    if flt.created_before is not None and photo.create_time >= flt.created_before:
        return False
    if flt.taken_after is not None and taken_sort_time(photo) < flt.taken_after:
        return False
    if flt.taken_before is not None and taken_sort_time(photo) >= flt.taken_before:
        return False
    if flt.visibility is not Visibility.UNSPECIFIED and photo.visibility is not flt.visibility:
        return False
    return not (flt.content_type and photo.content_type != flt.content_type)


# The smallest JPEG start the core recognises (SOI + APP0/JFIF), padded past the sniffed prefix.
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(80)


@dataclass
class Harness:
    """A PhotoService wired to fresh fakes, with the fakes at hand for assertions."""

    service: PhotoService
    repo: InMemoryPhotoRepository
    store: InMemoryObjectStore
    cache: InMemoryUrlCache
    clock: FakeClock
    config: ServiceConfig
    multipart: InMemoryMultipartRepository | None = None
    albums: InMemoryAlbumRepository | None = None
    share_links: InMemoryShareLinkRepository | None = None
    attempts: InMemoryAttemptLimiter | None = None

    def another_process(self) -> Harness:
        """A second PhotoService on the same database, bucket, signing key and clock but with a
        URL cache of its own, empty (another instance without Redis, a cold Lambda)."""
        cache = InMemoryUrlCache(self.clock)
        service = PhotoService(
            repo=self.repo,
            store=self.store,
            cache=cache,
            config=self.config,
            page_tokens=PageTokenCodec(b"0" * 32),
            clock=self.clock,
            multipart=self.multipart,
            albums=self.albums,
            share_links=self.share_links,
            attempts=self.attempts,
        )
        return dataclasses.replace(self, service=service, cache=cache)

    def process_with_other_credentials(self) -> Harness:
        """A second PhotoService of the fleet: same database, bucket, clock and shared URL cache,
        but credentials of its own (its signatures differ from this one's, and it may be given
        a credential expiry of its own)."""
        store = InMemoryObjectStore(self.clock, scope=self.store.scope)
        store.objects = self.store.objects
        store.unique_signatures = True
        service = PhotoService(
            repo=self.repo,
            store=store,
            cache=self.cache,
            config=self.config,
            page_tokens=PageTokenCodec(b"0" * 32),
            clock=self.clock,
            multipart=self.multipart,
            albums=self.albums,
            share_links=self.share_links,
            attempts=self.attempts,
        )
        return dataclasses.replace(self, service=service, store=store)

    async def upload_served(
        self,
        user_id: str = "alice",
        *,
        file_name: str = "photo.jpg",
        content_type: str = "image/jpeg",
        data: bytes = JPEG_BYTES,
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: int = 0,
    ) -> ServedPhoto:
        """The whole upload flow: CreateUploadUrl, the client's PUT, ConfirmUpload; what
        ConfirmUpload answered: the photo with its URL."""
        ticket = await self.service.create_upload_url(
            user_id, file_name=file_name, content_type=content_type, size_bytes=len(data)
        )
        self.store.put(self.repo.uploads[ticket.upload_id].object_key, data, content_type)
        return await self.service.confirm_upload(
            user_id,
            upload_id=str(ticket.upload_id),
            title=title,
            description=description,
            tags=tags,
            visibility=visibility,
        )

    async def upload_photo(
        self,
        user_id: str = "alice",
        *,
        file_name: str = "photo.jpg",
        content_type: str = "image/jpeg",
        data: bytes = JPEG_BYTES,
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: int = 0,
    ) -> Photo:
        """upload_served's photo, its URL aside."""
        served = await self.upload_served(
            user_id,
            file_name=file_name,
            content_type=content_type,
            data=data,
            title=title,
            description=description,
            tags=tags,
            visibility=visibility,
        )
        return served.photo

    def add_photo(
        self,
        user_id: str = "alice",
        *,
        create_time: datetime | None = None,
        file_name: str = "photo.jpg",
        content_type: str = "image/jpeg",
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: Visibility = Visibility.PRIVATE,
        size_bytes: int = 100,
    ) -> Photo:
        """Puts a confirmed photo straight into the repository (listing tests need many)."""
        photo_id = uuid4()
        created = create_time or self.clock()
        extension = {"image/jpeg": ".jpg", "image/png": ".png"}.get(content_type, ".img")
        photo = Photo(
            id=photo_id,
            owner_id=user_id,
            object_key=f"users/{user_id}/photos/{photo_id}{extension}",
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256="",
            title=title,
            description=description,
            tags=tuple(tags),
            visibility=visibility,
            create_time=created,
            update_time=created,
        )
        self.repo.photos[photo_id] = photo
        return photo


def make_harness(
    *,
    download_ttl: timedelta = timedelta(hours=2),
    cache_margin: timedelta = timedelta(minutes=30),
    public_base_url: str = "",
    quota_bytes: int = 10 * 1024**3,
    max_upload_bytes: int = 25 * 1024 * 1024,
    upload_url_ttl: timedelta = timedelta(minutes=15),
    confirm_window: timedelta = timedelta(hours=1),
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES,
    max_multipart_upload_bytes: int = 5 * 1024**3,
    max_open_multipart_uploads: int = 20,
    trash_retention: timedelta = timedelta(days=30),
) -> Harness:
    """Builds the service on fresh fakes, the URL policy and config from the arguments."""
    clock = FakeClock()
    repo = InMemoryPhotoRepository()
    store = InMemoryObjectStore(clock)
    cache = InMemoryUrlCache(clock)
    config = ServiceConfig(
        urls=UrlPolicy(
            download_ttl=download_ttl, cache_margin=cache_margin, public_base_url=public_base_url
        ),
        quota_bytes=quota_bytes,
        max_upload_bytes=max_upload_bytes,
        upload_url_ttl=upload_url_ttl,
        confirm_window=confirm_window,
        allowed_content_types=allowed_content_types,
        variant_names=("thumb", "preview"),
        max_multipart_upload_bytes=max_multipart_upload_bytes,
        max_open_multipart_uploads=max_open_multipart_uploads,
        trash_retention=trash_retention,
    )
    multipart = InMemoryMultipartRepository(repo)
    albums = InMemoryAlbumRepository(repo)
    share_links = InMemoryShareLinkRepository(repo, albums)
    attempts = InMemoryAttemptLimiter()
    service = PhotoService(
        repo=repo,
        store=store,
        cache=cache,
        config=config,
        page_tokens=PageTokenCodec(b"0" * 32),
        clock=clock,
        multipart=multipart,
        albums=albums,
        share_links=share_links,
        attempts=attempts,
    )
    return Harness(
        service=service,
        repo=repo,
        store=store,
        cache=cache,
        clock=clock,
        config=config,
        multipart=multipart,
        albums=albums,
        share_links=share_links,
        attempts=attempts,
    )


def _conforms(
    repo: InMemoryPhotoRepository,
    store: InMemoryObjectStore,
    cache: InMemoryUrlCache,
    multipart: InMemoryMultipartRepository,
    albums: InMemoryAlbumRepository,
    share_links: InMemoryShareLinkRepository,
    attempts: InMemoryAttemptLimiter,
) -> tuple[
    PhotoRepository,
    ObjectStore,
    UrlCache,
    MultipartRepository,
    AlbumRepository,
    ShareLinkRepository,
    AttemptLimiter,
]:
    """Never called: mypy checks here that each fake satisfies its Protocol."""
    return repo, store, cache, multipart, albums, share_links, attempts
