"""Large uploads as S3 multipart uploads: created and reserved here, signed part by part, listed
for resuming, completed by ConfirmUpload, aborted by the caller or by the sweep.

The pending `Upload` row is the reservation, exactly as for a single PUT (quota, expiry, the
sweep); a `MultipartUpload` row beside it holds S3's upload id and the part layout the server
chose. Part URLs sign the part's exact Content-Length (and its checksum when the client gives
one), so S3 refuses any other bytes; they live at most an hour and are signed again on demand,
so a slow upload never holds an expired URL for long.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from . import validation as val
from .errors import (
    ErrorCode,
    FailedPrecondition,
    NotFound,
    PhotoVaultError,
)
from .models import ExistingPhoto, Upload
from .multipart_models import MultipartTicket, MultipartUpload, PartUrl, UploadedPart
from .new_uploads import admit_new_upload, reservation_refusal
from .ports import MultipartRepository, ObjectStore, PhotoRepository

MiB = 1024 * 1024
MIN_PART_BYTES = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's maximum part number
MAX_PARTS_PER_CALL = 100
MAX_PART_URL_TTL = timedelta(hours=1)
# Everything the service stores lives under this prefix: the sweep aborts S3's own incomplete
# uploads there (those it has no row for, e.g. when a create failed halfway).
OBJECT_PREFIX = "users/"


class TooManyOpenUploads(PhotoVaultError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_reason = "TOO_MANY_MULTIPART_UPLOADS"


def part_layout(size_bytes: int) -> tuple[int, int]:
    """(part size, part count): the smallest whole number of MiB, at least S3's 5 MiB, that
    fits the file in at most 10,000 parts."""
    part_size = max(MIN_PART_BYTES, math.ceil(size_bytes / MAX_PARTS / MiB) * MiB)
    return part_size, math.ceil(size_bytes / part_size)


def _upload_not_found(upload_id: object) -> NotFound:
    # The same answer for "no such upload" and "someone else's": ids leak nothing.
    return NotFound(f"upload {upload_id} not found", reason="UPLOAD_NOT_FOUND")


class MultipartUploads:
    def __init__(
        self,
        *,
        repo: PhotoRepository,
        multipart: MultipartRepository,
        store: ObjectStore,
        clock: Callable[[], datetime],
        allowed_content_types: tuple[str, ...],
        max_bytes: int,
        ttl: timedelta,
        part_url_ttl: timedelta,
        quota_bytes: int,
        max_pending_uploads: int,
        max_open: int,
        object_key: Callable[[str, uuid.UUID, str], str],
    ) -> None:
        self._repo = repo
        self._multipart = multipart
        self._store = store
        self._clock = clock
        self._types = allowed_content_types
        self._max_bytes = max_bytes
        self._ttl = ttl
        self._part_url_ttl = min(part_url_ttl, MAX_PART_URL_TTL)
        self._quota_bytes = quota_bytes
        self._max_pending = max_pending_uploads
        self._max_open = max_open
        self._object_key = object_key

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def create(
        self,
        user_id: str,
        *,
        file_name: str,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str = "",
        skip_if_duplicate: bool = False,
    ) -> MultipartTicket | ExistingPhoto:
        request = await admit_new_upload(
            self._repo,
            user_id,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
            skip_if_duplicate=skip_if_duplicate,
            allowed_types=self._types,
            max_bytes=self._max_bytes,
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
        key = self._object_key(user_id, upload_id, content_type)
        part_size, part_count = part_layout(size_bytes)
        expire_time = now + self._ttl
        upload = Upload(
            id=upload_id,
            owner_id=user_id,
            object_key=key,
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum,
            create_time=now,
            reserved_until=expire_time,
        )
        # S3 first: a failing object store must not leave a reservation behind. An S3 upload
        # left open by a failure below is aborted by the sweep (it has no row).
        s3_upload_id = await self._store.create_multipart(key, content_type=content_type)
        reservation = await self._repo.reserve_upload(
            upload,
            default_quota_bytes=self._quota_bytes,
            max_pending_uploads=self._max_pending,
            now=now,
        )
        refused = reservation_refusal(
            reservation,
            user_id=user_id,
            max_pending_uploads=self._max_pending,
            requested=size_bytes,
        )
        if refused is not None:
            await self._store.abort_multipart(key, s3_upload_id)
            raise refused
        multipart = MultipartUpload(upload_id, user_id, s3_upload_id, part_size, part_count)
        if not await self._multipart.add_multipart(multipart, max_open=self._max_open, now=now):
            # Nothing was stored and nobody knows the id yet: the row simply goes.
            await self._repo.delete_uploads([upload_id])
            await self._store.abort_multipart(key, s3_upload_id)
            raise TooManyOpenUploads(
                f"at most {self._max_open} multipart uploads may be open at once; "
                "confirm or abort one first"
            )
        return MultipartTicket(upload_id, part_size, part_count, expire_time)

    async def _open(self, user_id: str, raw_id: str) -> tuple[Upload, MultipartUpload]:
        v = val.Violations()
        uid = val.check_id(v, "upload_id", raw_id)
        v.raise_if_any()
        assert uid is not None
        upload = await self._repo.get_upload(user_id, uid)
        multipart = await self._multipart.get_multipart(user_id, uid) if upload else None
        if upload is None or multipart is None:
            raise _upload_not_found(uid)
        if upload.reserved_until <= self._clock():
            raise FailedPrecondition(
                f"upload {uid} expired; start a new upload", reason="UPLOAD_EXPIRED"
            )
        return upload, multipart

    async def sign_parts(
        self,
        user_id: str,
        *,
        upload_id: str,
        part_numbers: Sequence[int],
        checksums_sha256: Sequence[str] = (),
    ) -> list[PartUrl]:
        v = val.Violations()
        val.check_id(v, "upload_id", upload_id)
        if not part_numbers:
            v.add("part_numbers", f"must name 1 to {MAX_PARTS_PER_CALL} parts")
        elif len(part_numbers) > MAX_PARTS_PER_CALL:
            v.add(
                "part_numbers",
                f"must name at most {MAX_PARTS_PER_CALL} parts (got {len(part_numbers)})",
            )
        else:
            seen: set[int] = set()
            for i, number in enumerate(part_numbers):
                if not 1 <= number <= MAX_PARTS:
                    v.add(f"part_numbers[{i}]", f"must be from 1 to {MAX_PARTS}")
                elif number in seen:
                    v.add(f"part_numbers[{i}]", f"part {number} is named twice")
                seen.add(number)
        if checksums_sha256 and len(checksums_sha256) != len(part_numbers):
            v.add("checksums_sha256", "must be empty or hold one checksum per part number")
        elif len(part_numbers) <= MAX_PARTS_PER_CALL:
            for i, checksum in enumerate(checksums_sha256):
                val.check_checksum(v, f"checksums_sha256[{i}]", checksum)
        v.raise_if_any()

        upload, multipart = await self._open(user_id, upload_id)
        for i, number in enumerate(part_numbers):
            if number > multipart.part_count:
                v.add(f"part_numbers[{i}]", f"must be from 1 to {multipart.part_count}")
        v.raise_if_any()
        # No URL outlives the upload itself.
        expires_in = min(self._part_url_ttl, upload.reserved_until - self._clock())
        checksums = list(checksums_sha256) or [""] * len(part_numbers)
        urls = []
        for number, checksum in zip(part_numbers, checksums, strict=True):
            signed = await self._store.presign_upload_part(
                upload.object_key,
                multipart.s3_upload_id,
                number,
                size_bytes=multipart.part_bytes(number, upload.size_bytes),
                checksum_sha256=checksum,
                expires_in=expires_in,
            )
            urls.append(PartUrl(number, signed.url, "PUT", signed.headers, signed.expire_time))
        return urls

    async def uploaded_parts(self, user_id: str, *, upload_id: str) -> list[UploadedPart]:
        upload, multipart = await self._open(user_id, upload_id)
        parts = await self._store.list_parts(upload.object_key, multipart.s3_upload_id)
        return parts or []

    async def lookup(self, upload: Upload) -> MultipartUpload | None:
        """The multipart side of `upload`; None for a single upload."""
        return await self._multipart.get_multipart(upload.owner_id, upload.id)

    async def abort_in_store(self, upload: Upload, multipart: MultipartUpload) -> None:
        """S3 drops the upload and its parts (the caller took, or holds a claim on, its row)."""
        await self._store.abort_multipart(upload.object_key, multipart.s3_upload_id)

    async def abort_all_in_store(self, uploads: Sequence[Upload]) -> list[Upload]:
        """Aborts the S3 multipart uploads of those `uploads` that are multipart (the sweep's
        claimed expired uploads, before their rows and S3 ids go); returns those."""
        found = await self._multipart.multiparts_of([u.id for u in uploads])
        aborted = []
        for upload in uploads:
            if (multipart := found.get(upload.id)) is not None:
                await self.abort_in_store(upload, multipart)
                aborted.append(upload)
        return aborted

    async def assemble(self, upload: Upload) -> None:
        """ConfirmUpload's first step for a multipart upload (nothing for a single one): every
        part must be there with its size, then S3 assembles the object. A missing part is
        FAILED_PRECONDITION and loses nothing: upload it and confirm again."""
        multipart = await self._multipart.get_multipart(upload.owner_id, upload.id)
        if multipart is None:
            return
        parts = await self._store.list_parts(upload.object_key, multipart.s3_upload_id)
        if parts is None:
            return  # assembled by an earlier confirm (or aborted): the object check decides
        held = {p.part_number: p for p in parts}
        missing = [n for n in range(1, multipart.part_count + 1) if n not in held]
        if missing:
            raise FailedPrecondition(
                f"upload {upload.id} lacks {len(missing)} of its {multipart.part_count} parts "
                f"(first: {missing[0]}); upload them and confirm again",
                reason="PARTS_MISSING",
                metadata={"missing_parts": ",".join(map(str, missing[:100]))},
            )
        wrong = [
            n
            for n, p in held.items()
            if n > multipart.part_count
            or p.size_bytes != multipart.part_bytes(n, upload.size_bytes)
        ]
        if wrong:
            raise FailedPrecondition(
                f"upload {upload.id} has parts of the wrong size: {wrong[:10]}; upload them again",
                reason="PARTS_MISMATCH",
                metadata={"wrong_parts": ",".join(map(str, wrong[:100]))},
            )
        ordered = [held[n] for n in range(1, multipart.part_count + 1)]
        await self._store.complete_multipart(upload.object_key, multipart.s3_upload_id, ordered)

    async def verify_checksum(self, upload: Upload) -> None:
        """S3 checks each part's checksum but not the whole file's SHA-256: read it back."""
        if not upload.checksum_sha256:
            return
        if await self._multipart.get_multipart(upload.owner_id, upload.id) is None:
            return  # a single PUT's checksum was signed into its URL: S3 checked it
        if await self._store.sha256(upload.object_key) != upload.checksum_sha256:
            await self._store.delete(upload.object_key)
            raise FailedPrecondition(
                f"upload {upload.id} rejected: its bytes do not match checksum_sha256",
                reason="UPLOAD_MISMATCH",
            )

    async def sweep_incomplete(self, *, before: datetime, limit: int) -> int:
        """Aborts S3's own open uploads under our prefix that began before any live upload
        could have (a create that failed after S3 started it, a row lost), unless a row still
        owns one: S3's clock (or a test server's fixed dates) must not end a live upload."""
        aborted = 0
        pages = self._store.incomplete_multiparts(OBJECT_PREFIX, initiated_before=before)
        async for page in pages:
            owned = await self._multipart.owned_s3_uploads([item.s3_upload_id for item in page])
            for item in page:
                if item.s3_upload_id not in owned and aborted < limit:
                    await self._store.abort_multipart(item.object_key, item.s3_upload_id)
                    aborted += 1
            if aborted >= limit:
                break
        return aborted
