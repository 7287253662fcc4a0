"""Parity across transports: every RPC, and its errors, answered alike by native gRPC, gRPC-web
(binary and text), Connect JSON and the independent `connectrpc` client (tests/support/
callers.py), all over real sockets against the same core."""

from __future__ import annotations

import time
import uuid
from typing import cast
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.protocol import ProtocolType
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message

from photovault.v1 import album_pb2, photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.errors import InvalidArgument
from photovault_server.core.models import Account

from .support.callers import (
    PROTOCOLS,
    Caller,
    connect_json_caller,
    connectrpc_caller,
    grpc_web_caller,
    native_caller,
    patch_core,
)
from .support.images import camera_exif, encode, halves, jpeg
from .support.processing import process_due_photos
from .support.users import User, put_bytes, upload_photo


@pytest.fixture(params=PROTOCOLS)
def caller(request: pytest.FixtureRequest, web: httpx.AsyncClient, gateway_url: str) -> Caller:
    match request.param:
        case "grpc-web":
            return grpc_web_caller(web, text=False)
        case "grpc-web-text":
            return grpc_web_caller(web, text=True)
        case "connect-json":
            return connect_json_caller(web)
        case "connectrpc-grpc-web":
            return connectrpc_caller(
                gateway_url, ProtocolType.GRPC_WEB, google_protobuf_binary_codec()
            )
        case "connectrpc-connect-json":
            return connectrpc_caller(
                gateway_url, ProtocolType.CONNECT, google_protobuf_json_codec()
            )
        case "connectrpc-connect-proto":
            return connectrpc_caller(
                gateway_url, ProtocolType.CONNECT, google_protobuf_binary_codec()
            )
    raise AssertionError(request.param)


@pytest.fixture
def native(stub: pb_grpc.PhotoServiceAsyncStub) -> Caller:
    return native_caller(stub)


# Parity with native gRPC


def without(message: Message, *fields: str) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    for name in fields:
        copy.ClearField(name)
    return copy


async def test_every_rpc_matches_native_grpc(
    caller: Caller, native: Caller, http: httpx.AsyncClient, alice: User
) -> None:
    """The whole life of a photo through one web protocol; after each step the same call
    natively must answer the same message (read calls on the same photo: message-for-message)."""
    data = jpeg(rgb=(10, 200, 10))

    async def both(rpc: str, request: Message) -> tuple[Message, Message]:
        web_outcome = await caller(rpc, request, alice)
        native_outcome = await native(rpc, request, alice)
        assert web_outcome.reply is not None, (rpc, web_outcome)
        assert native_outcome.reply is not None, (rpc, native_outcome)
        return web_outcome.reply, native_outcome.reply

    # CreateUploadUrl: a new upload each time, so ids, URLs and expiry differ; the rest not.
    create = pb.CreateUploadUrlRequest(
        file_name="web.jpg", content_type="image/jpeg", size_bytes=len(data)
    )
    ticket, native_ticket = await both("CreateUploadUrl", create)
    assert isinstance(ticket, pb.CreateUploadUrlResponse)
    assert isinstance(native_ticket, pb.CreateUploadUrlResponse)
    assert ticket.upload_id != native_ticket.upload_id
    fields = ("upload_id", "upload_url", "expire_time")
    assert without(ticket, *fields) == without(native_ticket, *fields)
    assert ticket.method == "PUT"
    assert dict(ticket.required_headers)
    assert urlsplit(ticket.upload_url).path.replace(ticket.upload_id, "ID") == urlsplit(
        native_ticket.upload_url
    ).path.replace(native_ticket.upload_id, "ID")
    assert abs(ticket.expire_time.seconds - native_ticket.expire_time.seconds) <= 2
    assert (await put_bytes(http, ticket, data)).status_code == 200

    # ConfirmUpload is idempotent: confirming again natively answers the same photo.
    confirm = pb.ConfirmUploadRequest(
        upload_id=ticket.upload_id, title="Été à Paris", tags=["web", "Paris"], description="✓"
    )
    confirmed, native_confirmed = await both("ConfirmUpload", confirm)
    assert confirmed == native_confirmed
    assert isinstance(confirmed, pb.ConfirmUploadResponse)
    photo = confirmed.photo
    assert (photo.id, photo.title, list(photo.tags)) == (
        ticket.upload_id,
        "Été à Paris",
        ["web", "paris"],
    )
    assert (await http.get(photo.url)).content == data

    got, native_got = await both("GetPhoto", pb.GetPhotoRequest(id=photo.id))
    assert got == native_got == pb.GetPhotoResponse(photo=photo)

    listed, native_listed = await both("ListPhotos", pb.ListPhotosRequest(tags=["web"]))
    assert listed == native_listed == pb.ListPhotosResponse(photos=[photo])

    batch = pb.BatchGetPhotoUrlsRequest(photo_ids=[photo.id, photo.id])
    urls, native_urls = await both("BatchGetPhotoUrls", batch)
    assert urls == native_urls
    assert isinstance(urls, pb.BatchGetPhotoUrlsResponse)
    assert [u.photo_id for u in urls.urls] == [photo.id, photo.id]

    update = pb.UpdatePhotoRequest(
        photo=photo_pb2.Photo(id=photo.id, title="Renamed ✓"),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
    )
    updated = (await caller("UpdatePhoto", update, alice)).reply
    assert isinstance(updated, pb.UpdatePhotoResponse)
    assert updated.photo.title == "Renamed ✓"
    after = (await native("GetPhoto", pb.GetPhotoRequest(id=photo.id), alice)).reply
    assert updated == pb.UpdatePhotoResponse(photo=cast(pb.GetPhotoResponse, after).photo)
    # The same update natively answers the same photo (a later update_time: every update
    # touches it).
    _, native_updated = await both("UpdatePhoto", update)
    assert isinstance(native_updated, pb.UpdatePhotoResponse)
    assert without(native_updated.photo, "update_time") == without(updated.photo, "update_time")
    assert (
        native_updated.photo.update_time.ToNanoseconds() > updated.photo.update_time.ToNanoseconds()
    )

    account, native_account = await both("GetAccount", pb.GetAccountRequest())
    assert account == native_account
    assert isinstance(account, pb.GetAccountResponse)
    assert (account.account.user_id, account.account.photo_count) == (alice.id, 1)

    deleted = await caller("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    assert deleted.reply == pb.DeletePhotoResponse()
    gone = await native("GetPhoto", pb.GetPhotoRequest(id=photo.id), alice)
    assert gone.code == grpc.StatusCode.NOT_FOUND.value[0]
    again = await caller("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    native_again = await native("DeletePhoto", pb.DeletePhotoRequest(id=photo.id), alice)
    assert (again.code, again.message, again.status) == (
        native_again.code,
        native_again.message,
        native_again.status,
    )


async def test_processed_photos_match_native_grpc(
    caller: Caller,
    native: Caller,
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    """What the worker adds (state, size, taken time, camera, location, placeholder, variants
    with their URLs) and the requests that select it, alike on every protocol (Connect JSON
    maps GeoPoint, the enum and the nested Timestamps on its own)."""
    exif = camera_exif(
        orientation=8,
        taken="2020:02:29 23:59:59",
        offset="-03:30",
        make="Fujifilm",
        model="X-T4",
        gps=(33.8568, "S", 151.2153, "E"),
    )
    data = encode(halves((60, 40), (200, 10, 10), (10, 10, 200)), "JPEG", exif=exif)
    photo = await upload_photo(stub, http, alice, data, title="processed")
    await process_due_photos(app)

    async def both(rpc: str, request: Message) -> Message:
        web_outcome = await caller(rpc, request, alice)
        native_outcome = await native(rpc, request, alice)
        assert web_outcome.reply is not None, (rpc, web_outcome)
        assert web_outcome.reply == native_outcome.reply
        return web_outcome.reply

    got = await both("GetPhoto", pb.GetPhotoRequest(id=photo.id))
    assert isinstance(got, pb.GetPhotoResponse)
    ready = got.photo
    assert ready.processing_state == photo_pb2.PROCESSING_STATE_READY
    assert (ready.width, ready.height, ready.camera) == (40, 60, "Fujifilm X-T4")
    assert ready.taken_time.ToSeconds() == 1583033399  # 2020-03-01T03:29:59Z
    assert ready.location.latitude < 0 < ready.location.longitude
    assert ready.placeholder
    assert {v.name for v in ready.variants} == {"thumb", "preview"}
    assert all(v.url and v.url_expire_time.seconds for v in ready.variants)

    day = pb.ListPhotosRequest(
        order=pb.PHOTO_ORDER_TAKEN_NEWEST_FIRST,
        taken_after=ready.taken_time,
        variants=["thumb"],
    )
    listed = await both("ListPhotos", day)
    assert isinstance(listed, pb.ListPhotosResponse)
    assert [(p.id, [v.name for v in p.variants]) for p in listed.photos] == [(photo.id, ["thumb"])]
    before = pb.ListPhotosRequest(
        order=pb.PHOTO_ORDER_TAKEN_OLDEST_FIRST, taken_before=ready.taken_time
    )
    assert await both("ListPhotos", before) == pb.ListPhotosResponse()

    urls = await both(
        "BatchGetPhotoUrls", pb.BatchGetPhotoUrlsRequest(photo_ids=[photo.id], variant="preview")
    )
    assert isinstance(urls, pb.BatchGetPhotoUrlsResponse)
    preview = next(v for v in ready.variants if v.name == "preview")
    assert [(u.variant, u.url) for u in urls.urls] == [("preview", preview.url)]


async def test_multipart_rpcs_match_native_grpc(
    caller: Caller, native: Caller, http: httpx.AsyncClient, alice: User
) -> None:
    """A one-part multipart upload through one web protocol, each step also called natively."""
    data = jpeg(rgb=(200, 10, 200))

    async def both(rpc: str, request: Message) -> tuple[Message, Message]:
        web_outcome = await caller(rpc, request, alice)
        native_outcome = await native(rpc, request, alice)
        assert web_outcome.reply is not None, (rpc, web_outcome)
        assert native_outcome.reply is not None, (rpc, native_outcome)
        return web_outcome.reply, native_outcome.reply

    create = pb.CreateMultipartUploadRequest(
        file_name="big.jpg", content_type="image/jpeg", size_bytes=len(data)
    )
    upload, native_upload = await both("CreateMultipartUpload", create)
    assert isinstance(upload, pb.CreateMultipartUploadResponse)
    assert isinstance(native_upload, pb.CreateMultipartUploadResponse)
    fields = ("upload_id", "expire_time")
    assert without(upload, *fields) == without(native_upload, *fields)
    assert (upload.part_count, upload.part_size_bytes) == (1, 5 * 1024 * 1024)

    sign = pb.SignUploadPartsRequest(upload_id=upload.upload_id, part_numbers=[1])
    signed, native_signed = await both("SignUploadParts", sign)
    assert isinstance(signed, pb.SignUploadPartsResponse)
    assert isinstance(native_signed, pb.SignUploadPartsResponse)
    (part,), (native_part,) = signed.parts, native_signed.parts
    assert without(part, "url", "expire_time") == without(native_part, "url", "expire_time")
    assert dict(part.required_headers) == {"Content-Length": str(len(data))}
    put = await http.put(part.url, content=data, headers=dict(part.required_headers))
    assert put.status_code == 200

    listing = pb.ListUploadedPartsRequest(upload_id=upload.upload_id)
    listed, native_listed = await both("ListUploadedParts", listing)
    assert listed == native_listed
    assert isinstance(listed, pb.ListUploadedPartsResponse)
    assert [(p.part_number, p.size_bytes) for p in listed.parts] == [(1, len(data))]

    abort = pb.AbortUploadRequest(upload_id=upload.upload_id)
    aborted = await caller("AbortUpload", abort, alice)
    assert aborted.reply == pb.AbortUploadResponse()
    again = await caller("AbortUpload", abort, alice)
    native_again = await native("AbortUpload", abort, alice)
    assert again.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert (again.code, again.message, again.status) == (
        native_again.code,
        native_again.message,
        native_again.status,
    )
    native_abort = pb.AbortUploadRequest(upload_id=native_upload.upload_id)
    assert (await native("AbortUpload", native_abort, alice)).reply == pb.AbortUploadResponse()


async def test_trash_rpcs_match_native_grpc(
    caller: Caller,
    native: Caller,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    """Trash, list the trash, restore through one web protocol; natively, the same answers."""
    first = await upload_photo(stub, http, alice, jpeg(rgb=(1, 2, 3)), title="one")
    second = await upload_photo(stub, http, alice, jpeg(rgb=(3, 2, 1)), title="two")

    for photo in (first, second):
        trashed = await caller("TrashPhoto", pb.TrashPhotoRequest(id=photo.id), alice)
        assert trashed.reply == pb.TrashPhotoResponse()
    # Trashing again is idempotent, natively too.
    again = await native("TrashPhoto", pb.TrashPhotoRequest(id=first.id), alice)
    assert again.reply == pb.TrashPhotoResponse()

    listing = pb.ListTrashRequest(page_size=1)
    page, native_page = (
        (await caller("ListTrash", listing, alice)),
        (await native("ListTrash", listing, alice)),
    )
    assert page.reply == native_page.reply
    assert isinstance(page.reply, pb.ListTrashResponse)
    assert [p.id for p in page.reply.photos] == [second.id]
    rest = pb.ListTrashRequest(page_size=1, page_token=page.reply.next_page_token)
    page2, native_page2 = (
        (await caller("ListTrash", rest, alice)),
        (await native("ListTrash", rest, alice)),
    )
    assert page2.reply == native_page2.reply
    assert isinstance(page2.reply, pb.ListTrashResponse)
    assert [p.id for p in page2.reply.photos] == [first.id]

    hidden = await caller("GetPhoto", pb.GetPhotoRequest(id=first.id), alice)
    native_hidden = await native("GetPhoto", pb.GetPhotoRequest(id=first.id), alice)
    assert hidden.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert (hidden.code, hidden.message, hidden.status) == (
        native_hidden.code,
        native_hidden.message,
        native_hidden.status,
    )

    restore = pb.RestorePhotoRequest(id=first.id)
    restored, native_restored = (
        (await caller("RestorePhoto", restore, alice)),
        (await native("RestorePhoto", restore, alice)),
    )
    assert restored.reply == native_restored.reply
    assert isinstance(restored.reply, pb.RestorePhotoResponse)
    assert restored.reply.photo.title == "one"
    listed = await caller("ListPhotos", pb.ListPhotosRequest(), alice)
    assert isinstance(listed.reply, pb.ListPhotosResponse)
    assert [p.id for p in listed.reply.photos] == [first.id]


async def test_album_and_share_link_rpcs_match_native_grpc(
    caller: Caller,
    native: Caller,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    """Every album and share link RPC through one web protocol and natively: the same answers
    (GetSharedAlbum without a bearer token on both)."""
    photo = await upload_photo(stub, http, alice, jpeg(rgb=(4, 5, 6)), title="shared")

    async def both(rpc: str, request: Message, user: User | None = alice) -> Message:
        web, nat = await caller(rpc, request, user), await native(rpc, request, user)
        assert web.reply is not None, (rpc, web.message)
        if rpc == "UpdateAlbum":  # each call is a change: its own update time
            for reply in (web.reply, nat.reply):
                assert isinstance(reply, pb.UpdateAlbumResponse)
                reply.album.ClearField("update_time")
        assert web.reply == nat.reply, rpc
        return web.reply

    created = await caller("CreateAlbum", pb.CreateAlbumRequest(title="web"), alice)
    assert isinstance(created.reply, pb.CreateAlbumResponse)
    album_id = created.reply.album.id
    added = await both(
        "AddAlbumPhotos", pb.AddAlbumPhotosRequest(album_id=album_id, photo_ids=[photo.id])
    )
    assert isinstance(added, pb.AddAlbumPhotosResponse)
    assert added.album.cover_photo_id == photo.id
    await both("GetAlbum", pb.GetAlbumRequest(id=album_id))
    await both("ListAlbums", pb.ListAlbumsRequest())
    await both(
        "UpdateAlbum",
        pb.UpdateAlbumRequest(
            album=album_pb2.Album(id=album_id, description="same on both"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
    )
    listed = await both("ListPhotos", pb.ListPhotosRequest(album_id=album_id))
    assert isinstance(listed, pb.ListPhotosResponse)
    assert [p.id for p in listed.photos] == [photo.id]

    expire = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    made = await caller(
        "CreateShareLink", pb.CreateShareLinkRequest(album_id=album_id, expire_time=expire), alice
    )
    assert isinstance(made.reply, pb.CreateShareLinkResponse)
    link = made.reply.share_link
    await both("ListShareLinks", pb.ListShareLinksRequest())
    view = await both("GetSharedAlbum", pb.GetSharedAlbumRequest(token=link.token), None)
    assert isinstance(view, pb.GetSharedAlbumResponse)
    assert [p.id for p in view.photos] == [photo.id]

    await both(
        "RemoveAlbumPhotos", pb.RemoveAlbumPhotosRequest(album_id=album_id, photo_ids=[photo.id])
    )
    revoked = await caller("RevokeShareLink", pb.RevokeShareLinkRequest(id=link.id), alice)
    assert revoked.reply == pb.RevokeShareLinkResponse()
    deleted = await caller("DeleteAlbum", pb.DeleteAlbumRequest(id=album_id), alice)
    assert deleted.reply == pb.DeleteAlbumResponse()


ERROR_CASES = [
    pytest.param("GetPhoto", pb.GetPhotoRequest(id="not-a-uuid"), True, 3, id="bad-id"),
    pytest.param("GetPhoto", pb.GetPhotoRequest(id=str(uuid.uuid4())), True, 5, id="unknown-id"),
    pytest.param("GetAccount", pb.GetAccountRequest(), False, 16, id="no-token"),
    pytest.param(
        "CreateUploadUrl",
        pb.CreateUploadUrlRequest(file_name="", content_type="image/svg+xml", size_bytes=-1),
        True,
        3,
        id="bad-fields",
    ),
    pytest.param("ListPhotos", pb.ListPhotosRequest(tags=["é" * 51]), True, 3, id="bad-tag"),
    pytest.param(
        "ListPhotos", pb.ListPhotosRequest(variants=["thumb", "poster"]), True, 3, id="bad-variants"
    ),
    pytest.param(
        "BatchGetPhotoUrls",
        pb.BatchGetPhotoUrlsRequest(photo_ids=[str(uuid.uuid4())], variant="poster"),
        True,
        3,
        id="bad-variant",
    ),
    pytest.param(
        "UpdatePhoto",
        pb.UpdatePhotoRequest(photo=photo_pb2.Photo(id=str(uuid.uuid4()))),
        True,
        3,
        id="bad-mask",
    ),
    pytest.param(
        "SignUploadParts",
        pb.SignUploadPartsRequest(upload_id=str(uuid.uuid4()), part_numbers=[0, 1, 1]),
        True,
        3,
        id="bad-part-numbers",
    ),
    pytest.param(
        "CreateMultipartUpload",
        pb.CreateMultipartUploadRequest(
            file_name="a.jpg", content_type="image/jpeg", size_bytes=10, skip_if_duplicate=True
        ),
        True,
        3,
        id="skip-duplicate-without-checksum",
    ),
    pytest.param("TrashPhoto", pb.TrashPhotoRequest(id="../x"), True, 3, id="trash-bad-id"),
    pytest.param(
        "RestorePhoto", pb.RestorePhotoRequest(id=str(uuid.uuid4())), True, 5, id="restore-unknown"
    ),
    pytest.param(
        "ListTrash",
        pb.ListTrashRequest(page_size=-1, page_token="not-a-token"),
        True,
        3,
        id="trash-bad-page",
    ),
    pytest.param("GetAlbum", pb.GetAlbumRequest(id=str(uuid.uuid4())), True, 5, id="album-unknown"),
    pytest.param(
        "CreateAlbum", pb.CreateAlbumRequest(title="", description="\x00"), True, 3, id="album-bad"
    ),
    pytest.param(
        "AddAlbumPhotos",
        pb.AddAlbumPhotosRequest(album_id="x", photo_ids=["y"]),
        True,
        3,
        id="album-add-bad-ids",
    ),
    pytest.param(
        "CreateShareLink", pb.CreateShareLinkRequest(), True, 3, id="share-link-no-target"
    ),
    pytest.param(
        "GetSharedAlbum",
        pb.GetSharedAlbumRequest(token="no-such-token"),
        False,
        5,
        id="shared-unknown-token",
    ),
    pytest.param("GetSharedAlbum", pb.GetSharedAlbumRequest(), False, 3, id="shared-no-token"),
    pytest.param("ListShareLinks", pb.ListShareLinksRequest(), False, 16, id="share-no-bearer"),
    pytest.param(
        "ListUploadedParts",
        pb.ListUploadedPartsRequest(upload_id=str(uuid.uuid4())),
        True,
        5,
        id="unknown-upload",
    ),
]


@pytest.mark.parametrize(("rpc", "request_message", "with_token", "code"), ERROR_CASES)
async def test_errors_match_native_grpc(
    caller: Caller,
    native: Caller,
    alice: User,
    rpc: str,
    request_message: Message,
    with_token: bool,
    code: int,
) -> None:
    user = alice if with_token else None
    web_outcome = await caller(rpc, request_message, user)
    native_outcome = await native(rpc, request_message, user)
    assert web_outcome.reply is None
    assert native_outcome.reply is None
    assert web_outcome.code == native_outcome.code == code
    assert web_outcome.message == native_outcome.message
    assert native_outcome.status is not None
    assert web_outcome.status == native_outcome.status


async def test_non_ascii_error_message_matches_native_grpc(
    caller: Caller,
    native: Caller,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
) -> None:
    async def refuse(user_id: str) -> Account:
        raise InvalidArgument.field("title", "«été» 100% ✓")

    patch_core(monkeypatch, app, "get_account", refuse)
    web_outcome = await caller("GetAccount", pb.GetAccountRequest(), alice)
    native_outcome = await native("GetAccount", pb.GetAccountRequest(), alice)
    assert web_outcome.message == native_outcome.message == "title: «été» 100% ✓"
    assert web_outcome.status == native_outcome.status
