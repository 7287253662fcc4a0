"""What a photo's EXIF says: when it was taken, with which camera, where. Pure parsing of
Pillow's `Image.Exif`; anything malformed reads as absent, never as an error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

from photovault_server.core.models import GeoPoint

ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
MAX_CAMERA_CHARS = 100
# Orientations 5-8 turn the image a quarter: width and height swap.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable()).strip()


def oriented_size(exif: Image.Exif, size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    return (height, width) if exif.get(ORIENTATION) in _QUARTER_TURNS else (width, height)


def camera(exif: Image.Exif) -> str:
    make, model = _text(exif.get(_MAKE)), _text(exif.get(_MODEL))
    # Most cameras repeat the make in the model ("Canon" + "Canon EOS R5").
    name = model if make and model.lower().startswith(make.lower()) else f"{make} {model}"
    return name.strip()[:MAX_CAMERA_CHARS]


def taken_time(exif: Image.Exif) -> datetime | None:
    """DateTimeOriginal with OffsetTimeOriginal; UTC when no offset is recorded."""
    ifd = exif.get_ifd(_EXIF_IFD)
    raw = _text(ifd.get(_DATE_TIME_ORIGINAL))
    try:
        local = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    zone: timezone = UTC
    offset = _text(ifd.get(_OFFSET_TIME_ORIGINAL))
    if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
        except ValueError:
            hours = minutes = 0
        if hours < 24 and minutes < 60:
            sign = -1 if offset[0] == "-" else 1
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, and the like
        return None


def _degrees(value: Any) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = d + m / 60 + s / 3600
    return result if math.isfinite(result) else None


def location(exif: Image.Exif) -> GeoPoint | None:
    gps = exif.get_ifd(_GPS_IFD)
    lat, lon = _degrees(gps.get(_GPS_LAT)), _degrees(gps.get(_GPS_LON))
    if lat is None or lon is None:
        return None
    if _text(gps.get(_GPS_LAT_REF)).upper() == "S":
        lat = -lat
    if _text(gps.get(_GPS_LON_REF)).upper() == "W":
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return GeoPoint(latitude=round(lat, 7), longitude=round(lon, 7))
