"""PhotoService use cases. Knows nothing of gRPC, HTTP, boto, redis or asyncpg: it validates,
authorises (every lookup is scoped to the caller) and orchestrates the three ports."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, overload

from msgspec import Struct

from . import validation as val
from .albums import Albums, album_not_found
from .errors import (
    FailedPrecondition,
    NotFound,
    Unavailable,
)
from .image_formats import DEFAULT_ALLOWED_TYPES, FORMATS, SNIFF_BYTES
from .models import (
    Account,
    Cursor,
    ExistingPhoto,
    Photo,
    PhotoChanges,
    PhotoFilter,
    PhotoOrder,
    PhotoPage,
    PhotoQuery,
    PhotoUrl,
    ServedPhoto,
    Upload,
    UploadTicket,
    Visibility,
)
from .multipart import MultipartUploads
from .multipart_models import MultipartTicket, MultipartUpload, PartUrl, UploadedPart
from .new_uploads import admit_new_upload, reservation_refusal
from .page_tokens import PageTokenCodec
from .ports import (
    AlbumRepository,
    AttemptLimiter,
    DownloadSigner,
    MultipartRepository,
    ObjectStore,
    PhotoRepository,
    ShareLinkRepository,
    UrlCache,
)
from .shares import ShareLinks
from .urls import DownloadUrls, UrlPolicy, UrlStats, VariantObject

Clock = Callable[[], datetime]
DownloadUrlsFactory = Callable[[DownloadSigner, UrlCache, UrlPolicy], DownloadUrls]
UPDATABLE_PATHS = frozenset({"title", "description", "tags", "visibility"})
MAX_UPLOAD_URL_TTL = timedelta(hours=1)
# Longer than any confirm can take (its deadline), so a sweep never races one; and longer than
# a PUT begun just before its URL expired may take to land.
SWEEP_GRACE = timedelta(minutes=10)
# How long after a photo was confirmed an upload URL may still create its object again: the
# longest URL lifetime (whatever the setting was when it was signed) plus the grace. A deleted
# photo's key is deleted again after that.
UPLOAD_WINDOW = MAX_UPLOAD_URL_TTL + SWEEP_GRACE
# A sweeper's rows are its own this long; a crashed sweeper's come back after it.
SWEEP_CLAIM = timedelta(minutes=5)
# After the sweep took an expired multipart upload: longer than a confirm that began before its
# deadline can still take to have S3 assemble the object (AWS: minutes for 5 GiB).
MULTIPART_SETTLE = timedelta(hours=1)
# Keys per object-store batch deletion (S3 DeleteObjects takes at most 1,000).
DELETE_BATCH = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


class ServiceConfig(Struct, frozen=True):
    urls: UrlPolicy
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    max_upload_bytes: int = 25 * 1024 * 1024
    quota_bytes: int = 10 * 1024**3
    upload_url_ttl: timedelta = timedelta(minutes=15)
    # How long after the upload URL expires a confirm is still accepted; the quota stays
    # reserved until then, so a slow upload that started in time can still be confirmed.
    confirm_window: timedelta = timedelta(hours=1)
    # Pending (unconfirmed, unexpired) uploads one user may hold: each costs a row and a sweep.
    max_pending_uploads: int = 100
    # The names of the variants the worker makes (PHOTOVAULT_VARIANTS): what ListPhotos'
    # `variants` and BatchGetPhotoUrls' `variant` may name.
    variant_names: tuple[str, ...] = ()
    # Multipart uploads (core/multipart.py): largest file, how long one may stay open, and how
    # many one user may hold open at once.
    max_multipart_upload_bytes: int = 5 * 1024**3
    multipart_upload_ttl: timedelta = timedelta(days=1)
    max_open_multipart_uploads: int = 20
    # How long a trashed photo stays restorable; the sweep deletes it for good after that.
    trash_retention: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        unknown = set(self.allowed_content_types) - set(FORMATS)
        if unknown:
            raise ValueError(f"content types without a known image format: {sorted(unknown)}")
        if not timedelta(0) < self.upload_url_ttl <= MAX_UPLOAD_URL_TTL:
            raise ValueError("upload URL lifetime must be between 1 second and 1 hour")
        if self.max_upload_bytes <= 0 or self.quota_bytes < 0:
            raise ValueError("max upload size must be positive and quota not negative")
        if self.max_pending_uploads < 1:
            raise ValueError("max pending uploads must be at least 1")
        if self.trash_retention <= timedelta(0):
            raise ValueError("trash retention must be positive")


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
        signer: DownloadSigner | None = None,
        multipart: MultipartRepository | None = None,
        albums: AlbumRepository | None = None,
        share_links: ShareLinkRepository | None = None,
        attempts: AttemptLimiter | None = None,
    ) -> None:
        """`signer` signs private download URLs: the store's own presigned URLs unless a CDN
        signs them. `download_urls` builds the URL layer; replaced only to measure the service
        without it (bench/list_photos.py's floor). Without `multipart`, multipart uploads are
        refused; without `albums`, the album RPCs, and without `share_links` and `attempts`
        too, the share link RPCs (core/albums.py, core/shares.py)."""
        self._repo = repo
        self._store = store
        self._config = config
        self._tokens = page_tokens
        self._clock = clock
        self._urls = download_urls(signer or store, cache, config.urls)
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
                max_pending_uploads=config.max_pending_uploads,
                max_open=config.max_open_multipart_uploads,
                object_key=object_key,
            )
        )

        self._albums = (
            None if albums is None else Albums(repo=albums, page_tokens=page_tokens, clock=clock)
        )
        self._shares = (
            None
            if albums is None or share_links is None or attempts is None
            else ShareLinks(
                repo=share_links,
                albums=albums,
                photos=repo,
                signer=signer or store,
                attempts=attempts,
                page_tokens=page_tokens,
                clock=clock,
            )
        )
        self._album_repo = albums

    @property
    def albums(self) -> Albums:
        if self._albums is None:
            raise FailedPrecondition("albums are not available on this server", reason="ALBUMS_OFF")
        return self._albums

    @property
    def share_links(self) -> ShareLinks:
        if self._shares is None:
            raise FailedPrecondition(
                "share links are not available on this server", reason="SHARE_LINKS_OFF"
            )
        return self._shares

    @property
    def url_stats(self) -> UrlStats:
        return self._urls.stats

    @overload
    async def create_upload_url(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: Literal[False] = False,
    ) -> UploadTicket: ...

    @overload
    async def create_upload_url(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: bool,
    ) -> UploadTicket | ExistingPhoto: ...

    async def create_upload_url(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: bool = False,
    ) -> UploadTicket | ExistingPhoto:
        """With `skip_if_duplicate`, the caller's photo with that checksum, if any, instead of
        a ticket: nothing is signed or reserved (core/duplicates.py)."""
        cfg = self._config
        request = await admit_new_upload(
            self._repo,
            user_id,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
            skip_if_duplicate=skip_if_duplicate,
            allowed_types=cfg.allowed_content_types,
            max_bytes=cfg.max_upload_bytes,
        )
        if isinstance(request, ExistingPhoto):
            return request
        file_name, content_type, checksum = (
            request.file_name,
            request.content_type,
            request.checksum_sha256,
        )

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
            upload,
            default_quota_bytes=cfg.quota_bytes,
            max_pending_uploads=cfg.max_pending_uploads,
            now=now,
        )
        refused = reservation_refusal(
            reservation,
            user_id=user_id,
            max_pending_uploads=cfg.max_pending_uploads,
            requested=size_bytes,
        )
        if refused is not None:
            raise refused
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
    ) -> ServedPhoto:
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
            return await self._expire(upload, now)
        if self._multipart is not None:
            # A multipart upload's object exists once S3 assembles it; then it is checked like
            # any other (size, type, stored headers), and recorded only before the deadline.
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
        # The deadline is checked again where the row changes, at the time it changes: a
        # confirm that passed the check above but reaches the database after the deadline
        # records nothing (a retry may already be deleting the bytes).
        stored = await self._repo.confirm_upload(photo, now=self._clock())
        if stored is None:
            if await self._repo.get_upload(user_id, uid) is not None:
                raise _upload_expired(uid)
            raise NotFound(f"upload {uid} not found", reason="UPLOAD_NOT_FOUND")
        return await self._with_url(stored)

    async def _expire(self, upload: Upload, now: datetime) -> ServedPhoto:
        """An upload confirmed too late: its row goes first (only if it is still expired and
        pending, in one statement), its bytes after, so a confirm that took the row meanwhile
        keeps them."""
        multipart = await self._multipart.lookup(upload) if self._multipart else None
        key = await self._repo.expire_upload(
            upload.owner_id,
            upload.id,
            now=now,
            # Deleted again once no upload URL (or, for a multipart upload, no confirm still
            # assembling it) can make the object again.
            not_before=now + MULTIPART_SETTLE
            if multipart is not None
            else upload.reserved_until + SWEEP_GRACE,
        )
        if key is None:
            confirmed = await self._repo.get_photo(upload.owner_id, upload.id)
            if confirmed is not None:  # a concurrent confirm made it in time
                return await self._with_url(confirmed)
        else:
            await self._drop_taken_upload(upload, key, multipart)
        raise _upload_expired(upload.id)

    async def _drop_taken_upload(
        self, upload: Upload, key: str, multipart: MultipartUpload | None
    ) -> None:
        """S3's side of an upload whose row this call took (expired or aborted): its multipart
        upload (left open, the sweep aborts it once no live upload can own it) and its object
        (queued: the sweep deletes it)."""
        if multipart is not None and self._multipart is not None:
            with contextlib.suppress(Unavailable):
                await self._multipart.abort_in_store(upload, multipart)
        with contextlib.suppress(Unavailable):
            await self._delete_queued_objects([key])

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
        elif unsafe := [name for name, value in info.served_headers if not _harmless(name, value)]:
            # The upload URL does not sign them, yet they would be served with every download
            # (a gzip encoding, an attachment name, a year of public caching).
            names = ", ".join(unsafe)
            problem = f"object was uploaded with headers the upload URL does not allow: {names}"
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

    async def get_photo(self, user_id: str, photo_id: str) -> ServedPhoto:
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
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        variants: Sequence[str] = (),
        fit: Callable[[Sequence[ServedPhoto]], int] | None = None,
        album_id: str = "",
    ) -> PhotoPage:
        """`fit`, from the transport, says how many of a page's leading photos fit in one
        reply (its size limit: gRPC's message size, Lambda's response size); the page is cut
        there, at least one photo long, and the next page token continues after the last one
        kept, so pagination stays exact."""
        v = val.Violations()
        limit = val.check_page_size(v, "page_size", page_size)
        wanted_variants = self._check_variant_names(v, "variants", variants)
        album = val.check_id(v, "album_id", album_id) if album_id else None
        flt = PhotoFilter(
            album_id=album,
            tags=val.check_tags(v, "tags", tags),
            words=val.query_words(v, "query", query),
            created_after=created_after,
            created_before=created_before,
            visibility=val.check_visibility(v, "visibility", visibility, allow_unspecified=True),
            content_type=val.check_content_type(
                v, "content_type", content_type, self._config.allowed_content_types, required=False
            ),
            taken_after=taken_after,
            taken_before=taken_before,
        )
        _check_range(v, "created_after", created_after, "created_before", created_before)
        _check_range(v, "taken_after", taken_after, "taken_before", taken_before)
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
        if album is not None and (
            self._album_repo is None or await self._album_repo.get_album(user_id, album) is None
        ):
            raise album_not_found(album_id)
        query_ = PhotoQuery(owner_id=user_id, filter=flt, order=sort, limit=limit + 1, after=after)
        rows = await self._repo.list_photos(query_)
        page, more = rows[:limit], len(rows) > limit
        photos = await self._urls.attach(page, self._clock(), wanted_variants)
        if fit is not None and photos:
            fitting = max(fit(photos), 1)
            if fitting < len(photos):
                photos, more = photos[:fitting], True
        token = ""
        if more:
            last = photos[-1].photo
            token = self._tokens.encode(_cursor(last, sort), user_id, flt, sort)
        return PhotoPage(photos=photos, next_page_token=token)

    def _check_variant_names(
        self, v: val.Violations, field: str, names: Sequence[str]
    ) -> tuple[str, ...]:
        known = self._config.variant_names
        if len(names) > max(len(known), 1) * 2:
            v.add(field, f"must name at most {len(known)} variants")
            return ()
        for i, name in enumerate(names):
            if name not in known:
                shown = ", ".join(known) or "none are configured"
                v.add(f"{field}[{i}]", f"unknown variant {name[:64]!r}; known: {shown}")
        return tuple(dict.fromkeys(names))

    async def batch_get_photo_urls(
        self, user_id: str, photo_ids: Sequence[str], variant: str = ""
    ) -> list[PhotoUrl]:
        v = val.Violations()
        if variant:
            self._check_variant_names(v, "variant", [variant])
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
        # A photo without that variant ready (PENDING, FAILED) answers with its original.
        chosen = [
            next((x for x in p.variants if x.name == variant), None) if variant else None
            for p in photos
        ]
        urls = await self._urls.for_photos(
            [
                p if v is None else VariantObject.of(p, v)
                for p, v in zip(photos, chosen, strict=True)
            ],
            self._clock(),
        )
        return [
            PhotoUrl(p.id, u.url, u.expire_time, "" if v is None else v.name)
            for p, v, u in zip(photos, chosen, urls, strict=True)
        ]

    async def update_photo(self, user_id: str, photo_id: str, changes: PhotoChanges) -> ServedPhoto:
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
        # that could not be deleted now (S3 down) is deleted by the next sweep. The queue
        # keeps the key until the photo's upload URL can no longer create it again, and the
        # sweep deletes it once more after that.
        deleted = await self._repo.delete_photo(user_id, pid, upload_window=UPLOAD_WINDOW)
        if deleted is None:
            raise _photo_not_found(photo_id)
        await self._urls.forget([deleted])
        with contextlib.suppress(Unavailable):
            await self._delete_queued_objects(
                [deleted.object_key, *(v.object_key for v in deleted.variants)]
            )

    async def trash_photo(self, user_id: str, photo_id: str) -> None:
        """The photo leaves every listing at once and stays restorable (its quota kept) until
        the sweep deletes it, `trash_retention` after it was first trashed."""
        pid = _checked_id(photo_id)
        trashed = await self._repo.trash_photo(user_id, pid, self._clock())
        if trashed is None:
            raise _photo_not_found(photo_id)
        # Its cached URLs go: a restored photo gets fresh ones.
        await self._urls.forget([trashed])

    async def restore_photo(self, user_id: str, photo_id: str) -> ServedPhoto:
        pid = _checked_id(photo_id)
        restored = await self._repo.restore_photo(user_id, pid)
        if restored is None:
            raise _photo_not_found(photo_id)
        return await self._with_url(restored)

    async def list_trash(
        self, user_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> PhotoPage:
        """Most recently trashed first; keyset pages on (trash time, id)."""
        v = val.Violations()
        limit = val.check_page_size(v, "page_size", page_size)
        if len(page_token) > val.MAX_PAGE_TOKEN_CHARS:
            v.add("page_token", "is not a token from a previous ListTrash response")
        v.raise_if_any()
        after = self._tokens.decode_trash(page_token, user_id) if page_token else None
        rows = await self._repo.list_trash(user_id, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        photos = await self._urls.attach(page, self._clock())
        token = ""
        if more:
            last = photos[-1].photo
            assert last.trash_time is not None
            token = self._tokens.encode_trash(Cursor(last.trash_time, last.id), user_id)
        return PhotoPage(photos=photos, next_page_token=token)

    async def sweep_trash(self, *, limit: int = 1000) -> int:
        """Deletes for good the photos trashed longer than the retention, as DeletePhoto does:
        rows first (objects queued in the same transaction), objects after. Returns how many
        photos it deleted; objects the store could not delete stay queued."""
        photos = await self._repo.purge_trash(
            trashed_before=self._clock() - self._config.trash_retention,
            limit=limit,
            upload_window=UPLOAD_WINDOW,
        )
        if photos:
            await self._urls.forget(photos)
            with contextlib.suppress(Unavailable):
                await self._delete_queued_objects(
                    [k for p in photos for k in (p.object_key, *(v.object_key for v in p.variants))]
                )
        return len(photos)

    async def _delete_queued_objects(self, keys: Sequence[str]) -> int:
        """Deletes queued objects in batches; returns how many were deleted. Keys the store
        could not delete stay queued (claimed until SWEEP_CLAIM has passed)."""
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            sent_at = self._clock()
            try:
                failed = set(await self._store.delete_many(chunk))
            except Unavailable:
                with contextlib.suppress(Unavailable):
                    await self._repo.release_object_deletions(keys[start:])
                raise
            done = [key for key in chunk if key not in failed]
            await self._repo.objects_deleted(done, deleted_at=sent_at)
            deleted += len(done)
        return deleted

    async def sweep_deleted_objects(self, *, limit: int = 1000) -> int:
        """Deletes the queued objects that are due: those of deleted photos the store could
        not delete at once, and those due again now that no upload URL can recreate them.
        Returns how many keys it took; a failure leaves them queued for the next sweep."""
        now = self._clock()
        keys = await self._repo.claim_object_deletions(
            now=now, claim_until=now + SWEEP_CLAIM, limit=limit
        )
        await self._delete_queued_objects(keys)
        return len(keys)

    async def sweep_expired_uploads(self, *, limit: int = 1000) -> int:
        """Deletes uploads whose reservation ended, objects first (in batches), then the rows:
        a failure leaves the rows for the next sweep. Only those expired for longer than
        SWEEP_GRACE, so that a confirm that began before the end cannot lose its object, and
        no upload URL can create the object again (its URL expired no later than the
        reservation). Returns how many uploads it took."""
        now = self._clock()
        expired = await self._repo.claim_expired_uploads(
            now - SWEEP_GRACE, now=now, claim_until=now + SWEEP_CLAIM, limit=limit
        )
        for start in range(0, len(expired), DELETE_BATCH):
            chunk = expired[start : start + DELETE_BATCH]
            multipart: list[Upload] = []
            try:
                if self._multipart is not None:
                    # Before the rows go: a multipart upload's S3 id goes with its row.
                    multipart = await self._multipart.abort_all_in_store(chunk)
                failed = set(await self._store.delete_many([u.object_key for u in chunk]))
            except Unavailable:
                with contextlib.suppress(Unavailable):
                    await self._repo.release_uploads([u.id for u in expired[start:]])
                raise
            # A confirm that began before the deadline may still be assembling a multipart
            # upload: S3 can finish CompleteMultipartUpload after the abort and the deletion
            # above. Its object is deleted again once no such call can still be running.
            await self._repo.delete_uploads(
                [u.id for u in chunk if u.object_key not in failed],
                delete_again=[u.object_key for u in multipart if u.object_key not in failed],
                not_before=now + MULTIPART_SETTLE,
            )
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
        for step in (
            self.sweep_expired_uploads,
            self.sweep_deleted_objects,
            self.sweep_incomplete_multipart,
            self.sweep_trash,
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
            expired_uploads=counts[0],
            deleted_objects=counts[1],
            finished=finished,
            aborted_incomplete_multipart=counts[2],
            deleted_trashed_photos=counts[3],
        )

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

    @overload
    async def create_multipart_upload(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: Literal[False] = False,
    ) -> MultipartTicket: ...

    @overload
    async def create_multipart_upload(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: bool,
    ) -> MultipartTicket | ExistingPhoto: ...

    async def create_multipart_upload(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: bool = False,
    ) -> MultipartTicket | ExistingPhoto:
        return await self._multipart_uploads().create(
            user_id,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
            skip_if_duplicate=skip_if_duplicate,
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
        """Single or multipart. The row goes first, in the one statement that takes it (as for
        an expired confirm), with its object queued: a confirm that took the row first keeps
        its bytes, and the queue deletes again, once no upload URL can write it, whatever a
        URL still alive or a confirm assembling meanwhile stored after the first deletion. The
        reservation is released with the row."""
        v = val.Violations()
        uid = val.check_id(v, "upload_id", upload_id)
        v.raise_if_any()
        assert uid is not None
        upload = await self._repo.get_upload(user_id, uid)
        if upload is None:
            raise NotFound(f"upload {uid} not found", reason="UPLOAD_NOT_FOUND")
        multipart = await self._multipart.lookup(upload) if self._multipart else None
        # Taken "as expired" at its own deadline: whatever the clock says, the row goes.
        key = await self._repo.expire_upload(
            user_id,
            uid,
            now=max(upload.reserved_until, self._clock()),
            not_before=upload.reserved_until + SWEEP_GRACE,
        )
        if key is None:  # confirmed (or aborted) meanwhile
            raise NotFound(f"upload {uid} not found", reason="UPLOAD_NOT_FOUND")
        await self._drop_taken_upload(upload, key, multipart)

    async def get_account(self, user_id: str) -> Account:
        return await self._repo.get_account(
            user_id, default_quota_bytes=self._config.quota_bytes, now=self._clock()
        )

    async def _with_url(self, photo: Photo) -> ServedPhoto:
        (out,) = await self._urls.attach([photo], self._clock())
        return out


class SweepReport(Struct, frozen=True):
    expired_uploads: int
    deleted_objects: int
    finished: bool  # False when the time budget ran out, possibly with work left
    # S3's own open multipart uploads under our prefix that no upload row owned.
    aborted_incomplete_multipart: int = 0
    # Photos trashed longer than the retention, deleted for good.
    deleted_trashed_photos: int = 0


def _cursor(photo: Photo, order: PhotoOrder) -> Cursor:
    """The page's last row in the order's key: for the taken-time orders, the taken time, or
    the create time of a photo without one (as the repositories sort)."""
    taken = photo.metadata.taken_time if photo.metadata else None
    key = (taken or photo.create_time) if order.by_taken_time else photo.create_time
    return Cursor(create_time=key, photo_id=photo.id)


def _check_range(
    v: val.Violations,
    first: str,
    start: datetime | None,
    last: str,
    end: datetime | None,
) -> None:
    for name, when in ((first, start), (last, end)):
        if when is not None and when.tzinfo is None:
            v.add(name, "must carry a time zone")
    if start and end and start.tzinfo and end.tzinfo and start >= end:
        v.add(last, f"must be later than {first}")


# Cache-Control directives that let no cache keep a download: what HTTP clients without a
# cache (Node's fetch) or with it disabled (browser dev tools) send with every request.
_UNCACHEABLE = frozenset({"no-cache", "no-store", "private", "must-revalidate", "max-age=0"})


def _harmless(header: str, value: str) -> bool:
    """A header stored with an uploaded object that changes nothing of how it is served."""
    value = value.strip().lower()
    if header == "content-encoding":
        return value in ("", "identity")
    if header == "cache-control":
        return {d.strip() for d in value.split(",") if d.strip()} <= _UNCACHEABLE
    return not value


def _upload_expired(upload_id: uuid.UUID) -> FailedPrecondition:
    return FailedPrecondition(
        f"upload {upload_id} expired before it was confirmed; request a new upload URL",
        reason="UPLOAD_EXPIRED",
    )


def _checked_id(photo_id: str) -> uuid.UUID:
    v = val.Violations()
    pid = val.check_id(v, "id", photo_id)
    v.raise_if_any()
    assert pid is not None
    return pid


def _photo_not_found(photo_id: str) -> NotFound:
    # The same answer for "no such photo" and "someone else's photo": ids leak nothing.
    return NotFound(f"photo {photo_id} not found", reason="PHOTO_NOT_FOUND")


__all__ = ["Clock", "PhotoService", "ServiceConfig", "SweepReport", "object_key"]
