"""Small, real image files for tests, encoded by Pillow so browsers and decoders accept them."""

from __future__ import annotations

import io
import random
import zlib

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


def halves(
    size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
) -> Image.Image:
    """An RGB image whose left half is `left` and right half `right` (to see a rotation)."""
    img = Image.new("RGB", size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return img


def camera_exif(
    *,
    orientation: int = 1,
    taken: str = "",
    offset: str = "",
    make: str = "",
    model: str = "",
    gps: tuple[float, str, float, str] | None = None,
) -> Image.Exif:
    """An EXIF block as a camera writes it; `gps` is (lat, "N"/"S", lon, "E"/"W") in degrees."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        ifd = exif.get_ifd(0x8769)
        ifd[0x9003] = taken
        if offset:
            ifd[0x9011] = offset
    if gps is not None:
        lat, lat_ref, lon, lon_ref = gps
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1], gps_ifd[3] = lat_ref, lon_ref
        gps_ifd[2] = _dms(lat)
        gps_ifd[4] = _dms(lon)
    return exif


def _dms(degrees: float) -> tuple[float, float, float]:
    d = int(degrees)
    m = int((degrees - d) * 60)
    s = round((degrees - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height` (a decompression bomb's shape)."""
    data = bytearray(png((1, 1)))
    # IHDR: 8-byte signature, 4-byte length, "IHDR", then width and height, then its CRC.
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[12:29]))
    data[29:33] = crc.to_bytes(4, "big")
    return bytes(data)


def animated(
    fmt: str, colours: list[tuple[int, int, int]], size: tuple[int, int] = (40, 30)
) -> bytes:
    frames = [Image.new("RGB", size, c) for c in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def photo_like(size: tuple[int, int], seed: int = 0, quality: int = 90) -> bytes:
    """A JPEG that compresses like a photo (smooth colour fields, gradients, some noise), so
    variant sizes against the original are realistic."""
    rnd = random.Random(seed)
    cells = Image.new("RGB", (8, 6))
    cells.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(48)])
    smooth = cells.resize(size, Image.Resampling.BICUBIC)
    noise = Image.effect_noise(size, 48).convert("RGB")
    return encode(Image.blend(smooth, noise, 0.12), "JPEG", quality=quality)
