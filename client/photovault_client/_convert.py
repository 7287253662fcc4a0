"""Protobuf messages <-> the client's dataclasses: the one place that knows both."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from photovault.v1 import account_pb2, album_pb2, photo_pb2
from photovault.v1 import photo_service_pb2 as pb

from ._models import (
    Account,
    Album,
    GeoPoint,
    Photo,
    PhotoPage,
    PhotoUrl,
    PhotoVariant,
    ProcessingState,
    SharedAlbumPage,
    SharedPhoto,
    ShareLink,
    UploadTicket,
    Visibility,
)


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


# For the multipart RPCs (_client.py), read where they are answered.
optional_time = _time


def _required_time(message: Message, field: str) -> datetime:
    return _time(message, field) or datetime.fromtimestamp(0, UTC)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    if value.tzinfo is None:
        raise ValueError("datetimes sent to PhotoVault must be timezone-aware")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def photo(message: photo_pb2.Photo) -> Photo:
    return Photo(
        id=message.id,
        owner_id=message.owner_id,
        file_name=message.file_name,
        content_type=message.content_type,
        size_bytes=message.size_bytes,
        checksum_sha256=message.checksum_sha256,
        title=message.title,
        description=message.description,
        tags=tuple(message.tags),
        visibility=_visibility(message.visibility),
        create_time=_required_time(message, "create_time"),
        update_time=_required_time(message, "update_time"),
        url=message.url,
        url_expire_time=_time(message, "url_expire_time"),
        processing_state=_processing_state(message.processing_state),
        width=message.width,
        height=message.height,
        taken_time=_time(message, "taken_time"),
        camera=message.camera,
        location=_location(message),
        placeholder=message.placeholder,
        variants=tuple(_variant(v) for v in message.variants),
    )


def _variant(message: photo_pb2.PhotoVariant) -> PhotoVariant:
    return PhotoVariant(
        name=message.name,
        content_type=message.content_type,
        width=message.width,
        height=message.height,
        size_bytes=message.size_bytes,
        url=message.url,
        url_expire_time=_time(message, "url_expire_time"),
    )


def _location(message: photo_pb2.Photo) -> GeoPoint | None:
    if not message.HasField("location"):
        return None
    return GeoPoint(latitude=message.location.latitude, longitude=message.location.longitude)


def photo_url(message: photo_pb2.PhotoUrl) -> PhotoUrl:
    return PhotoUrl(
        photo_id=message.photo_id,
        url=message.url,
        expire_time=_time(message, "expire_time"),
        variant=message.variant,
    )


def photo_page(message: pb.ListPhotosResponse | pb.ListTrashResponse) -> PhotoPage:
    return PhotoPage(
        photos=tuple(photo(p) for p in message.photos), next_page_token=message.next_page_token
    )


def account(message: account_pb2.Account) -> Account:
    return Account(
        user_id=message.user_id,
        photo_count=message.photo_count,
        used_bytes=message.used_bytes,
        pending_bytes=message.pending_bytes,
        quota_bytes=message.quota_bytes,
        create_time=_time(message, "create_time"),
    )


def upload_ticket(message: pb.CreateUploadUrlResponse) -> UploadTicket:
    return UploadTicket(
        upload_id=message.upload_id,
        upload_url=message.upload_url,
        method=message.method or "PUT",
        required_headers=dict(message.required_headers),
        expire_time=_time(message, "expire_time"),
        existing_photo_id=message.existing_photo_id,
    )


def _processing_state(value: int) -> ProcessingState:
    try:
        return ProcessingState(value)
    except ValueError:  # a value added by a newer server
        return ProcessingState.UNSPECIFIED


def _visibility(value: int) -> Visibility:
    try:
        return Visibility(value)
    except ValueError:  # a value added by a newer server
        return Visibility.UNSPECIFIED


def album(message: album_pb2.Album) -> Album:
    return Album(
        id=message.id,
        title=message.title,
        description=message.description,
        cover_photo_id=message.cover_photo_id,
        photo_count=message.photo_count,
        create_time=_time(message, "create_time"),
        update_time=_time(message, "update_time"),
    )


def share_link(message: album_pb2.ShareLink) -> ShareLink:
    return ShareLink(
        id=message.id,
        token=message.token,
        album_id=message.album_id,
        photo_id=message.photo_id,
        expire_time=_time(message, "expire_time"),
        allow_original=message.allow_original,
        create_time=_time(message, "create_time"),
        has_password=message.has_password,
    )


def shared_album_page(message: pb.GetSharedAlbumResponse) -> SharedAlbumPage:
    return SharedAlbumPage(
        title=message.title,
        description=message.description,
        photos=tuple(
            SharedPhoto(
                id=p.id,
                title=p.title,
                description=p.description,
                width=p.width,
                height=p.height,
                placeholder=p.placeholder,
                content_type=p.content_type,
                url=p.url,
                url_expire_time=_time(p, "url_expire_time"),
                variants=tuple(_variant(v) for v in p.variants),
            )
            for p in message.photos
        ),
        next_page_token=message.next_page_token,
    )
