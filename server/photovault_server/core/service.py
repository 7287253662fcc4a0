"""PhotoService use cases. Knows nothing of gRPC, HTTP, boto, redis or asyncpg: it validates,
authorises (every lookup is scoped to the caller) and orchestrates the three ports."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from . import validation as val
from .errors import FailedPrecondition, NotFound, QuotaExceeded, Unavailable
from .image_formats import DEFAULT_ALLOWED_TYPES, FORMATS, SNIFF_BYTES
from .models import (
    Account,
    Cursor,
    Photo,
    PhotoChanges,
    PhotoFilter,
    PhotoOrder,
    PhotoPage,
    PhotoQuery,
    PhotoUrl,
    Upload,
    UploadTicket,
    Visibility,
)
from .multipart import MultipartUploads
from .multipart_models import MultipartTicket, PartUrl, UploadedPart
from .page_tokens import PageTokenCodec
from .ports import MultipartRepository, ObjectStore, PhotoRepository, UrlCache
from .urls import DownloadUrls, UrlPolicy, UrlStats

Clock = Callable[[], datetime]
DownloadUrlsFactory = Callable[[ObjectStore, UrlCache, UrlPolicy], DownloadUrls]
UPDATABLE_PATHS = frozenset({"title", "description", "tags", "visibility"})
MAX_UPLOAD_URL_TTL = timedelta(hours=1)
# Longer than any confirm can take (its deadline), so a sweep never races one.
SWEEP_GRACE = timedelta(minutes=10)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    urls: UrlPolicy
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    max_upload_bytes: int = 25 * 1024 * 1024
    quota_bytes: int = 10 * 1024**3
    upload_url_ttl: timedelta = timedelta(minutes=15)
    # How long after the upload URL expires a confirm is still accepted; the quota stays
    # reserved until then, so a slow upload that started in time can still be confirmed.
    confirm_window: timedelta = timedelta(hours=1)
    # Multipart uploads (core/multipart.py): largest file, how long one may stay open, and how
    # many one user may hold open at once.
    max_multipart_upload_bytes: int = 5 * 1024**3
    multipart_upload_ttl: timedelta = timedelta(days=1)
    max_open_multipart_uploads: int = 20

    def __post_init__(self) -> None:
        unknown = set(self.allowed_content_types) - set(FORMATS)
        if unknown:
            raise ValueError(f"content types without a known image format: {sorted(unknown)}")
        if not timedelta(0) < self.upload_url_ttl <= MAX_UPLOAD_URL_TTL:
            raise ValueError("upload URL lifetime must be between 1 second and 1 hour")
        if self.max_upload_bytes <= 0 or self.quota_bytes < 0:
            raise ValueError("max upload size must be positive and quota not negative")


def object_key(owner_id: str, upload_id: uuid.UUID, content_type: str) -> str:
    """Chosen by the server: the extension comes from the allowed type, never the file name."""
    return f"users/{owner_id}/photos/{upload_id}{FORMATS[content_type].extension}"


class PhotoService:
    def __init__(
        self,
        *,
        repo: PhotoRepository,
        store: ObjectStore,
        cache: UrlCache,
        config: ServiceConfig,
        page_tokens: PageTokenCodec,
        clock: Clock = utc_now,
        download_urls: DownloadUrlsFactory = DownloadUrls,
        multipart: MultipartRepository | None = None,
    ) -> None:
        """`download_urls` builds the URL layer; replaced only to measure the service without
        it (bench/list_photos.py's floor). Without `multipart`, multipart uploads are refused."""
        self._repo = repo
        self._store = store
        self._config = config
        self._tokens = page_tokens
        self._clock = clock
        self._urls = download_urls(store, cache, config.urls)
        self._multipart = (
            None
            if multipart is None
            else MultipartUploads(
                repo=repo,
                multipart=multipart,
                store=store,
                clock=clock,
                allowed_content_types=config.allowed_content_types,
                max_bytes=config.max_multipart_upload_bytes,
                ttl=config.multipart_upload_ttl,
                part_url_ttl=config.upload_url_ttl,
                quota_bytes=config.quota_bytes,
                max_open=config.max_open_multipart_uploads,
                object_key=object_key,
            )
        )

    @property
    def url_stats(self) -> UrlStats:
        return self._urls.stats

    async def create_upload_url(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
    ) -> UploadTicket:
        cfg = self._config
        v = val.Violations()
        file_name = val.check_file_name(v, "file_name", file_name)
        content_type = val.check_content_type(
            v, "content_type", content_type, cfg.allowed_content_types
        )
        if size_bytes <= 0:
            v.add("size_bytes", "must be the exact size of the file in bytes (at least 1)")
        elif size_bytes > cfg.max_upload_bytes:
            v.add("size_bytes", f"must be at most {cfg.max_upload_bytes} bytes")
        checksum = val.check_checksum(v, "checksum_sha256", checksum_sha256)
        v.raise_if_any()

        now = self._clock()
        upload_id = uuid.uuid4()
        key = object_key(user_id, upload_id, content_type)
        expire_time = now + cfg.upload_url_ttl
        upload = Upload(
            id=upload_id,
            owner_id=user_id,
            object_key=key,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum,
            create_time=now,
            reserved_until=expire_time + cfg.confirm_window,
        )
        # Sign first: a failing object store must not leave a reservation behind.
        presigned = await self._store.presign_upload(
            key,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum,
            expires_in=cfg.upload_url_ttl,
        )
        reservation = await self._repo.reserve_upload(
            upload, default_quota_bytes=cfg.quota_bytes, now=now
        )
        if not reservation.accepted:
            raise QuotaExceeded(
                user_id=user_id,
                quota_bytes=reservation.quota_bytes,
                reserved_bytes=reservation.reserved_bytes,
                requested=size_bytes,
            )
        return UploadTicket(
            upload_id=upload_id,
            url=presigned.url,
            method="PUT",
            required_headers=presigned.headers,
            expire_time=presigned.expire_time,
        )

    async def confirm_upload(
        self,
        user_id: str,
        *,
        upload_id: str,
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: int = 0,
    ) -> Photo:
        v = val.Violations()
        uid = val.check_id(v, "upload_id", upload_id)
        title = val.check_text(v, "title", title, max_chars=val.MAX_TITLE_CHARS)
        description = val.check_text(
            v, "description", description, max_chars=val.MAX_DESCRIPTION_CHARS, multiline=True
        )
        clean_tags = val.check_tags(v, "tags", tags)
        vis = val.check_visibility(v, "visibility", visibility, allow_unspecified=True)
        v.raise_if_any()
        assert uid is not None

        existing = await self._repo.get_photo(user_id, uid)
        if existing is not None:
            return await self._with_url(existing)
        upload = await self._repo.get_upload(user_id, uid)
        if upload is None:
            raise NotFound(f"upload {uid} not found", reason="UPLOAD_NOT_FOUND")
        now = self._clock()
        if upload.reserved_until <= now:
            await self._store.delete(upload.object_key)
            await self._repo.delete_upload(user_id, uid)
            raise FailedPrecondition(
                f"upload {uid} expired before it was confirmed; request a new upload URL",
                reason="UPLOAD_EXPIRED",
            )
        if self._multipart is not None:
            await self._multipart.assemble(upload)
        await self._verify_object(upload)
        if self._multipart is not None:
            await self._multipart.verify_checksum(upload)

        photo = Photo(
            id=uid,
            owner_id=user_id,
            object_key=upload.object_key,
            file_name=upload.file_name,
            content_type=upload.content_type,
            size_bytes=upload.size_bytes,
            checksum_sha256=upload.checksum_sha256,
            title=title,
            description=description,
            tags=clean_tags,
            visibility=Visibility.PRIVATE if vis is Visibility.UNSPECIFIED else vis,
            create_time=now,
            update_time=now,
        )
        stored = await self._repo.confirm_upload(photo)
        if stored is None:
            raise NotFound(f"upload {uid} not found", reason="UPLOAD_NOT_FOUND")
        return await self._with_url(stored)

    async def _verify_object(self, upload: Upload) -> None:
        """The object must exist with the declared size and type and start like that type."""
        info = await self._store.head(upload.object_key)
        if info is None:
            raise FailedPrecondition(
                f"upload {upload.id} has no object yet: PUT the bytes to the upload URL first",
                reason="OBJECT_NOT_UPLOADED",
            )
        problem = None
        if info.size_bytes != upload.size_bytes:
            problem = f"object has {info.size_bytes} bytes, {upload.size_bytes} were declared"
        elif info.content_type.lower() != upload.content_type:
            problem = f"object has type {info.content_type!r}, {upload.content_type} was declared"
        else:
            head = await self._store.read_prefix(upload.object_key, SNIFF_BYTES)
            if not FORMATS[upload.content_type].matches(head):
                problem = f"object bytes are not a {upload.content_type} image"
        if problem:
            # The bytes are not what was reserved: drop them so they cannot be served.
            await self._store.delete(upload.object_key)
            raise FailedPrecondition(
                f"upload {upload.id} rejected: {problem}", reason="UPLOAD_MISMATCH"
            )

    async def get_photo(self, user_id: str, photo_id: str) -> Photo:
        v = val.Violations()
        pid = val.check_id(v, "id", photo_id)
        v.raise_if_any()
        assert pid is not None
        photo = await self._repo.get_photo(user_id, pid)
        if photo is None:
            raise _photo_not_found(photo_id)
        return await self._with_url(photo)

    async def list_photos(
        self,
        user_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        tags: Sequence[str] = (),
        query: str = "",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        visibility: int = 0,
        content_type: str = "",
        order: int = 0,
    ) -> PhotoPage:
        v = val.Violations()
        limit = val.check_page_size(v, "page_size", page_size)
        flt = PhotoFilter(
            tags=val.check_tags(v, "tags", tags),
            words=val.query_words(v, "query", query),
            created_after=created_after,
            created_before=created_before,
            visibility=val.check_visibility(v, "visibility", visibility, allow_unspecified=True),
            content_type=val.check_content_type(
                v, "content_type", content_type, self._config.allowed_content_types, required=False
            ),
        )
        for name, when in (("created_after", created_after), ("created_before", created_before)):
            if when is not None and when.tzinfo is None:
                v.add(name, "must carry a time zone")
        if (
            created_after
            and created_before
            and created_after.tzinfo
            and created_before.tzinfo
            and created_after >= created_before
        ):
            v.add("created_before", "must be later than created_after")
        try:
            sort = PhotoOrder(order)
        except ValueError:
            v.add("order", f"unknown order {order}")
            sort = PhotoOrder.NEWEST_FIRST
        if sort is PhotoOrder.UNSPECIFIED:
            sort = PhotoOrder.NEWEST_FIRST
        if len(page_token) > val.MAX_PAGE_TOKEN_CHARS:
            v.add("page_token", "is not a token from a previous ListPhotos response")
        v.raise_if_any()

        after = self._tokens.decode(page_token, user_id, flt, sort) if page_token else None
        query_ = PhotoQuery(owner_id=user_id, filter=flt, order=sort, limit=limit + 1, after=after)
        rows = await self._repo.list_photos(query_)
        page, more = rows[:limit], len(rows) > limit
        token = ""
        if more:
            last = page[-1]
            token = self._tokens.encode(_cursor(last), user_id, flt, sort)
        return PhotoPage(photos=await self._urls.attach(page, self._clock()), next_page_token=token)

    async def batch_get_photo_urls(self, user_id: str, photo_ids: Sequence[str]) -> list[PhotoUrl]:
        v = val.Violations()
        if len(photo_ids) > val.MAX_BATCH_IDS:
            v.add("photo_ids", f"must have at most {val.MAX_BATCH_IDS} ids (got {len(photo_ids)})")
            v.raise_if_any()
        ids = [val.check_id(v, f"photo_ids[{i}]", raw) for i, raw in enumerate(photo_ids)]
        v.raise_if_any()
        wanted = [i for i in ids if i is not None]
        if not wanted:
            return []
        found = await self._repo.get_photos(user_id, list(dict.fromkeys(wanted)))
        missing = [str(i) for i in wanted if i not in found]
        if missing:
            raise NotFound(
                f"{len(missing)} of the photos not found: " + ", ".join(missing[:5]),
                reason="PHOTO_NOT_FOUND",
                metadata={"photo_ids": ",".join(missing[:20])},
            )
        photos = [found[i] for i in wanted]
        urls = await self._urls.for_photos(photos, self._clock())
        return [PhotoUrl(p.id, u.url, u.expire_time) for p, u in zip(photos, urls, strict=True)]

    async def update_photo(self, user_id: str, photo_id: str, changes: PhotoChanges) -> Photo:
        v = val.Violations()
        pid = val.check_id(v, "photo.id", photo_id)
        if not changes.paths:
            v.add("update_mask", "must name at least one of " + ", ".join(sorted(UPDATABLE_PATHS)))
        for path in sorted(changes.paths - UPDATABLE_PATHS):
            v.add(
                "update_mask",
                f"cannot update {path[:64]!r}; allowed: " + ", ".join(sorted(UPDATABLE_PATHS)),
            )
        clean = PhotoChanges(
            paths=changes.paths & UPDATABLE_PATHS,
            title=val.check_text(v, "photo.title", changes.title, max_chars=val.MAX_TITLE_CHARS),
            description=val.check_text(
                v,
                "photo.description",
                changes.description,
                max_chars=val.MAX_DESCRIPTION_CHARS,
                multiline=True,
            ),
            tags=val.check_tags(v, "photo.tags", changes.tags),
            visibility=val.check_visibility(
                v,
                "photo.visibility",
                changes.visibility,
                allow_unspecified="visibility" not in changes.paths,
            ),
        )
        v.raise_if_any()
        assert pid is not None
        before = await self._repo.get_photo(user_id, pid)
        if before is None:
            raise _photo_not_found(photo_id)
        after = await self._repo.update_photo(user_id, pid, clean, self._clock())
        if after is None:
            raise _photo_not_found(photo_id)
        if after.visibility is not before.visibility:
            await self._urls.forget([before])
        return await self._with_url(after)

    async def delete_photo(self, user_id: str, photo_id: str) -> None:
        v = val.Violations()
        pid = val.check_id(v, "id", photo_id)
        v.raise_if_any()
        assert pid is not None

        # The row goes first (its object queued in the same transaction), the object after:
        # whichever backend fails, there is never a photo whose object is gone, and an object
        # that could not be deleted now (S3 down) is deleted by the next sweep.
        deleted = await self._repo.delete_photo(user_id, pid)
        if deleted is None:
            raise _photo_not_found(photo_id)
        await self._urls.forget([deleted])
        with contextlib.suppress(Unavailable):
            await self._delete_queued_object(deleted.object_key)

    async def _delete_queued_object(self, object_key: str) -> None:
        await self._store.delete(object_key)  # deleting a missing object succeeds: retry-safe
        await self._repo.object_deleted(object_key)

    async def sweep_deleted_objects(self, *, limit: int = 1000) -> int:
        """Deletes the objects of deleted photos that are still queued (the store failed when
        the photo was deleted); a failure leaves the rest queued for the next sweep."""
        keys = await self._repo.queued_object_deletions(limit)
        for key in keys:
            await self._delete_queued_object(key)
        return len(keys)

    async def sweep_expired_uploads(self, *, limit: int = 1000) -> int:
        """Deletes uploads whose reservation ended, object first, then the row: a failure
        leaves the row for the next sweep. Only those expired for longer than SWEEP_GRACE,
        so that a confirm that began before the end cannot lose its object."""
        expired = await self._repo.expired_uploads(self._clock() - SWEEP_GRACE, limit)
        for upload in expired:
            await self._store.delete(upload.object_key)
            await self._repo.delete_upload(upload.owner_id, upload.id)
        return len(expired)

    async def sweep(
        self, *, batch: int = 1000, time_budget: timedelta | None = None
    ) -> SweepReport:
        """The whole sweep, as `photovault sweep` and the Lambda's schedule both run it: expired
        uploads, then the objects of deleted photos, each in batches until none is left or
        `time_budget` is spent (a Lambda must answer before its timeout; the rest waits for the
        next run)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        stop_at = None if time_budget is None else time.monotonic() + time_budget.total_seconds()
        counts = []
        # Multipart first: its S3 upload id goes with the upload row the next step deletes.
        for step in (
            self.sweep_expired_multipart,
            self.sweep_expired_uploads,
            self.sweep_deleted_objects,
            self.sweep_incomplete_multipart,
        ):
            total = 0
            while stop_at is None or time.monotonic() < stop_at:
                done = await step(limit=batch)
                total += done
                if done < batch:
                    break
            counts.append(total)
        finished = stop_at is None or time.monotonic() < stop_at
        return SweepReport(
            expired_uploads=counts[0] + counts[1],
            deleted_objects=counts[2],
            finished=finished,
            aborted_incomplete_multipart=counts[3],
        )

    async def sweep_expired_multipart(self, *, limit: int = 1000) -> int:
        if self._multipart is None:
            return 0
        return await self._multipart.sweep_expired(before=self._clock() - SWEEP_GRACE, limit=limit)

    async def sweep_incomplete_multipart(self, *, limit: int = 1000) -> int:
        """S3's open uploads no live upload can own: begun before the longest upload's life."""
        if self._multipart is None:
            return 0
        oldest_live = self._clock() - self._multipart.ttl - SWEEP_GRACE
        return await self._multipart.sweep_incomplete(before=oldest_live, limit=limit)

    def _multipart_uploads(self) -> MultipartUploads:
        if self._multipart is None:
            raise FailedPrecondition(
                "multipart uploads are not available on this server", reason="MULTIPART_OFF"
            )
        return self._multipart

    async def create_multipart_upload(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
    ) -> MultipartTicket:
        return await self._multipart_uploads().create(
            user_id,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
        )

    async def sign_upload_parts(
        self,
        user_id: str,
        *,
        upload_id: str,
        part_numbers: Sequence[int],
        checksums_sha256: Sequence[str] = (),
    ) -> list[PartUrl]:
        return await self._multipart_uploads().sign_parts(
            user_id,
            upload_id=upload_id,
            part_numbers=part_numbers,
            checksums_sha256=checksums_sha256,
        )

    async def list_uploaded_parts(self, user_id: str, *, upload_id: str) -> list[UploadedPart]:
        return await self._multipart_uploads().uploaded_parts(user_id, upload_id=upload_id)

    async def abort_upload(self, user_id: str, *, upload_id: str) -> None:
        await self._multipart_uploads().abort(user_id, upload_id=upload_id)

    async def get_account(self, user_id: str) -> Account:
        return await self._repo.get_account(
            user_id, default_quota_bytes=self._config.quota_bytes, now=self._clock()
        )

    async def _with_url(self, photo: Photo) -> Photo:
        (out,) = await self._urls.attach([photo], self._clock())
        return out


@dataclass(frozen=True, slots=True)
class SweepReport:
    expired_uploads: int
    deleted_objects: int
    finished: bool  # False when the time budget ran out, possibly with work left
    # S3's own open multipart uploads under our prefix that no upload row owned.
    aborted_incomplete_multipart: int = 0


def _cursor(photo: Photo) -> Cursor:
    return Cursor(create_time=photo.create_time, photo_id=photo.id)


def _photo_not_found(photo_id: str) -> NotFound:
    # The same answer for "no such photo" and "someone else's photo": ids leak nothing.
    return NotFound(f"photo {photo_id} not found", reason="PHOTO_NOT_FOUND")


__all__ = ["Clock", "PhotoService", "ServiceConfig", "SweepReport", "object_key"]
