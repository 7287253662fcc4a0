"""What CreateUploadUrl and CreateMultipartUpload share around their own S3 step: the request's
checks and the duplicate answer before anything is signed or reserved, and a refused
reservation as the caller's error."""

from __future__ import annotations

from collections.abc import Sequence

from . import validation as val
from .duplicates import existing_duplicate
from .errors import PendingUploadsExceeded, QuotaExceeded
from .models import ExistingPhoto, Reservation
from .ports import PhotoRepository


async def admit_new_upload(
    repo: PhotoRepository,
    user_id: str,
    *,
    file_name: str,
    content_type: str,
    size_bytes: int,
    checksum_sha256: str,
    skip_if_duplicate: bool,
    allowed_types: Sequence[str],
    max_bytes: int,
) -> val.NewUpload | ExistingPhoto:
    """The request checked (InvalidArgument naming each bad field), or, with
    `skip_if_duplicate`, the caller's photo that already holds these bytes."""
    request = val.check_new_upload(
        file_name=file_name,
        content_type=content_type,
        size_bytes=size_bytes,
        checksum_sha256=checksum_sha256,
        skip_if_duplicate=skip_if_duplicate,
        allowed_types=allowed_types,
        max_bytes=max_bytes,
    )
    existing = await existing_duplicate(
        repo, user_id, request.checksum_sha256, skip=skip_if_duplicate
    )
    return request if existing is None else existing


def reservation_refusal(
    reservation: Reservation, *, user_id: str, max_pending_uploads: int, requested: int
) -> QuotaExceeded | None:
    """Why the reservation was refused, as the error to raise; None when it was accepted."""
    if reservation.too_many_pending:
        return PendingUploadsExceeded(user_id=user_id, limit=max_pending_uploads)
    if not reservation.accepted:
        return QuotaExceeded(
            user_id=user_id,
            quota_bytes=reservation.quota_bytes,
            reserved_bytes=reservation.reserved_bytes,
            requested=requested,
        )
    return None
