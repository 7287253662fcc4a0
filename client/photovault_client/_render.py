"""How the CLI shows photos and accounts: rich tables for people, JSON records for scripts.
User-supplied text is wrapped in rich Text, so a title like "[red]" is shown, not styled."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from ._models import Account, Photo, PhotoVariant, ProcessingState


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, index = size / 1024, 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone().strftime(fmt) if value is not None else ""


def _state(photo: Photo) -> str:
    return photo.processing_state.name.lower() if photo.processing_state else ""


def _dimensions(photo: Photo) -> str:
    return f"{photo.width}x{photo.height}" if photo.width and photo.height else ""


def _variant_record(variant: PhotoVariant) -> dict[str, Any]:
    return {
        "name": variant.name,
        "content_type": variant.content_type,
        "width": variant.width,
        "height": variant.height,
        "size_bytes": variant.size_bytes,
        "url": variant.url,
        "url_expire_time": _time(variant.url_expire_time) or None,
    }


def photo_record(photo: Photo) -> dict[str, Any]:
    return {
        "id": photo.id,
        "file_name": photo.file_name,
        "title": photo.title,
        "description": photo.description,
        "tags": list(photo.tags),
        "visibility": photo.visibility.name.lower(),
        "content_type": photo.content_type,
        "size_bytes": photo.size_bytes,
        "checksum_sha256": photo.checksum_sha256,
        "create_time": _time(photo.create_time),
        "update_time": _time(photo.update_time),
        "url": photo.url,
        "url_expire_time": _time(photo.url_expire_time) or None,
        "processing_state": _state(photo),
        "width": photo.width,
        "height": photo.height,
        "taken_time": _time(photo.taken_time) or None,
        "camera": photo.camera,
        "location": (
            {"latitude": photo.location.latitude, "longitude": photo.location.longitude}
            if photo.location is not None
            else None
        ),
        "placeholder": photo.placeholder,
        "variants": [_variant_record(v) for v in photo.variants],
    }


def account_record(account: Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "photo_count": account.photo_count,
        "used_bytes": account.used_bytes,
        "pending_bytes": account.pending_bytes,
        "quota_bytes": account.quota_bytes,
        "create_time": _time(account.create_time) or None,
    }


def photos_table(photos: Iterable[Photo]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("TITLE", overflow="fold")
    table.add_column("FILE", overflow="fold")
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("PIXELS", justify="right", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("TAGS", overflow="fold")
    table.add_column("VIS", no_wrap=True)
    table.add_column("TAKEN", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for photo in photos:
        table.add_row(
            photo.id,
            Text(photo.title),
            Text(photo.file_name),
            human_size(photo.size_bytes),
            _dimensions(photo),
            _state(photo),
            Text(", ".join(photo.tags)),
            photo.visibility.name.lower(),
            _local(photo.taken_time),
            _local(photo.create_time, "%Y-%m-%d"),
        )
    return table


def _fields(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, Text(value))
    return table


def photo_details(photo: Photo) -> Table:
    return _fields(
        [
            ("id", photo.id),
            ("title", photo.title),
            ("description", photo.description),
            ("file", photo.file_name),
            ("type", photo.content_type),
            ("size", f"{human_size(photo.size_bytes)} ({photo.size_bytes} bytes)"),
            ("sha256", photo.checksum_sha256),
            ("tags", ", ".join(photo.tags)),
            ("visibility", photo.visibility.name.lower()),
            ("created", _local(photo.create_time)),
            ("updated", _local(photo.update_time)),
            ("url expires", _local(photo.url_expire_time) or "never (public)"),
            ("processing", _state(photo)),
            *_processed_fields(photo),
        ]
    )


def _processed_fields(photo: Photo) -> list[tuple[str, str]]:
    """What the worker read from the bytes, once it has."""
    if photo.processing_state != ProcessingState.READY:
        return []
    rows = [("pixels", _dimensions(photo))]
    if photo.taken_time is not None:
        rows.append(("taken", _local(photo.taken_time)))
    if photo.camera:
        rows.append(("camera", photo.camera))
    if photo.location is not None:
        rows.append(("location", f"{photo.location.latitude:.5f}, {photo.location.longitude:.5f}"))
    for v in photo.variants:
        rows.append((f"variant {v.name}", f"{v.width}x{v.height} {human_size(v.size_bytes)}"))
    return rows


def account_details(account: Account) -> Table:
    free = max(account.quota_bytes - account.used_bytes - account.pending_bytes, 0)
    return _fields(
        [
            ("user", account.user_id),
            ("photos", str(account.photo_count)),
            ("used", human_size(account.used_bytes)),
            ("pending", human_size(account.pending_bytes)),
            ("quota", human_size(account.quota_bytes)),
            ("free", human_size(free)),
            ("created", _local(account.create_time)),
        ]
    )
