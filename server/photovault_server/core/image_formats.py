"""Allowed image types: their object-key extension and how to recognise their first bytes.

The service never trusts a client's file name or declared type alone: the key's extension comes
from the allowed type, and ConfirmUpload checks the object's leading bytes against it.
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

# Enough bytes for every signature below (ISO-BMFF brands sit in the first box).
SNIFF_BYTES = 64

_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"}) | _HEIC_BRANDS
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _ftyp_brands(head: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF `ftyp` box at offset 0."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    box_size = min(int.from_bytes(head[0:4], "big"), len(head))
    brands = {head[8:12]}
    brands.update(head[i : i + 4] for i in range(16, box_size - 3, 4))
    return brands


def _bmff(accepted: frozenset[bytes]) -> Callable[[bytes], bool]:
    return lambda head: bool(_ftyp_brands(head) & accepted)


class ImageFormat(Struct, frozen=True):
    content_type: str
    extension: str
    matches: Callable[[bytes], bool]


FORMATS: dict[str, ImageFormat] = {
    f.content_type: f
    for f in (
        ImageFormat("image/jpeg", ".jpg", lambda h: h.startswith(b"\xff\xd8\xff")),
        ImageFormat("image/png", ".png", lambda h: h.startswith(b"\x89PNG\r\n\x1a\n")),
        ImageFormat("image/gif", ".gif", lambda h: h[:6] in (b"GIF87a", b"GIF89a")),
        ImageFormat("image/webp", ".webp", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
        ImageFormat("image/heic", ".heic", _bmff(_HEIC_BRANDS)),
        ImageFormat("image/heif", ".heif", _bmff(_HEIF_BRANDS)),
        ImageFormat("image/avif", ".avif", _bmff(_AVIF_BRANDS)),
    )
}

DEFAULT_ALLOWED_TYPES: tuple[str, ...] = tuple(FORMATS)
