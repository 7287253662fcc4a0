"""Small, real image files for tests, encoded by Pillow so browsers and decoders accept them."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (8, 6), rgb: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (8, 6), rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    return image_bytes("JPEG", size, rgb)


def png(size: tuple[int, int] = (8, 6), rgb: tuple[int, int, int] = (30, 30, 200)) -> bytes:
    return image_bytes("PNG", size, rgb)


def decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size
