"""Background processing of confirmed photos: read the original, make the variants, store them
and the metadata. Knows nothing of Pillow or S3: the image work is the ImageProcessor port."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from .models import ProcessedImage


class UnprocessableImage(Exception):
    """The bytes can never be processed (corrupt, truncated, too large): the photo is FAILED at
    once, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageProcessor(Protocol):
    @property
    def extension(self) -> str:
        """The variants' object-key extension (".webp")."""
        ...

    def process(self, data: bytes) -> ProcessedImage:
        """Variants and metadata of an original's bytes; raises UnprocessableImage. CPU-bound:
        the worker runs it in a thread."""
        ...


def variant_key(owner_id: str, photo_id: UUID, name: str, extension: str) -> str:
    return f"users/{owner_id}/variants/{photo_id}/{name}{extension}"
