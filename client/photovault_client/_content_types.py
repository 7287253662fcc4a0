"""The MIME type of a photo to upload: from its first bytes (magic number), else its suffix.

The service checks the uploaded bytes against the declared type, so sniffing first saves a
rejected upload when a file's suffix lies.
"""

from __future__ import annotations

from pathlib import PurePath

# Enough bytes for every signature below (ISO-BMFF brands sit in the first box).
SNIFF_BYTES = 64

EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/avif": ".avif",
}
SUFFIXES: dict[str, str] = {
    **{ext: content_type for content_type, ext in EXTENSIONS.items()},
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
}

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})


def _ftyp_brands(head: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF `ftyp` box at offset 0."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    box_size = min(int.from_bytes(head[0:4], "big"), len(head))
    return {head[8:12]} | {head[i : i + 4] for i in range(16, box_size - 3, 4)}


def sniff(head: bytes) -> str | None:
    """The image type the bytes start like, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    # HEIF is the container of both HEIC and AVIF: the most specific brand wins.
    brands = _ftyp_brands(head)
    if brands & _AVIF_BRANDS:
        return "image/avif"
    if brands & _HEIC_BRANDS:
        return "image/heic"
    if brands & _HEIF_BRANDS:
        return "image/heif"
    return None


def content_type_of(head: bytes, file_name: str | None) -> str:
    """Sniffed from `head`, else from the file name's suffix; ValueError when neither tells."""
    sniffed = sniff(head)
    if sniffed is not None:
        return sniffed
    if file_name:
        by_suffix = SUFFIXES.get(PurePath(file_name).suffix.lower())
        if by_suffix is not None:
            return by_suffix
    raise ValueError(
        f"cannot tell the image type of {file_name or 'the bytes'}: "
        "not a JPEG, PNG, GIF, WebP, HEIC, HEIF or AVIF; pass content_type="
    )


def default_file_name(content_type: str) -> str:
    return "photo" + EXTENSIONS.get(content_type, "")
