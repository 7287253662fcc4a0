"""`skip_if_duplicate` of CreateUploadUrl and CreateMultipartUpload: an upload of bytes the
caller already holds answers that photo's id and reserves nothing. Only the caller's own
confirmed photos outside the trash count: the lookup names the owner before the checksum
(its index, migration 0007, is (owner_id, checksum_sha256)), so another user's photos are never
read, let alone matched, and the answer's timing cannot tell whether they hold the bytes."""

from __future__ import annotations

from .models import ExistingPhoto
from .ports import PhotoRepository


async def existing_duplicate(
    repo: PhotoRepository, owner_id: str, checksum_sha256: str, *, skip: bool
) -> ExistingPhoto | None:
    """The caller's photo with these bytes, when asked to skip a duplicate and there is one."""
    if not skip or not checksum_sha256:
        return None
    photo_id = await repo.find_photo_by_checksum(owner_id, checksum_sha256)
    return None if photo_id is None else ExistingPhoto(photo_id)
