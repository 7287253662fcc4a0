"""Values of S3 multipart uploads, as the core and its ports see them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from msgspec import Struct


class MultipartUpload(Struct, frozen=True):
    """What a multipart upload adds to its pending `Upload` row (same id, same reservation)."""

    upload_id: UUID
    owner_id: str
    s3_upload_id: str
    part_size_bytes: int
    part_count: int

    def part_bytes(self, part_number: int, size_bytes: int) -> int:
        """Every part is `part_size_bytes` but the last, which holds the rest."""
        if part_number < self.part_count:
            return self.part_size_bytes
        return size_bytes - self.part_size_bytes * (self.part_count - 1)


class UploadedPart(Struct, frozen=True):
    """A part S3 holds (ListParts)."""

    part_number: int
    size_bytes: int
    etag: str
    checksum_sha256: str = ""


class IncompleteUpload(Struct, frozen=True):
    """A multipart upload S3 holds open (ListMultipartUploads), ours or not yet recorded."""

    object_key: str
    s3_upload_id: str
    initiated: datetime


class MultipartTicket(Struct, frozen=True):
    """What CreateMultipartUpload hands back."""

    upload_id: UUID
    part_size_bytes: int
    part_count: int
    expire_time: datetime


class PartUrl(Struct, frozen=True):
    """A presigned PUT for one part."""

    part_number: int
    url: str
    method: str
    required_headers: dict[str, str]
    expire_time: datetime
