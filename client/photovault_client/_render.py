"""How the CLI shows photos and accounts: rich tables for people, JSON records for scripts.
User-supplied text is wrapped in rich Text, so a title like "[red]" is shown, not styled."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from ._models import Account, Photo


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
    table.add_column("TAGS", overflow="fold")
    table.add_column("VIS", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for photo in photos:
        table.add_row(
            photo.id,
            Text(photo.title),
            Text(photo.file_name),
            human_size(photo.size_bytes),
            Text(", ".join(photo.tags)),
            photo.visibility.name.lower(),
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
        ]
    )


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
