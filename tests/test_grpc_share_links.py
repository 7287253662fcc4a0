"""Share links against Postgres, Redis and S3: an album or a photo shared by token, seen
without a bearer token over native gRPC, gRPC-web, Connect and a Lambda event; variants only
unless the link allows originals; never the owner, file name, camera or location; and the
hostile cases: random, truncated, revoked and expired tokens, a deleted album, a trashed photo,
brute-forced passwords, another link's page token, another user's ids."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2

from photovault.v1 import album_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.adapters.redis_attempts import PASSWORD_ATTEMPT_BURST
from photovault_server.app import App
from photovault_server.core.shares import SHARE_URL_TTL

from .support.callers import Caller, connect_json_caller, grpc_web_caller, native_caller
from .support.grpc_status import call_error, details, status_details
from .support.images import jpeg
from .support.loopback import closed_port
from .support.processing import process_due_photos
from .support.servers import server_with
from .support.users import User, upload_photo

if TYPE_CHECKING:
    Stub = pb_grpc.PhotoServiceAsyncStub

FORBIDDEN = ("owner", "file_name", "fileName", "camera", "location", "checksum", "tags")


def _in(days: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC) + timedelta(days=days))
    return stamp


async def _shared_album(
    stub: Stub, http: httpx.AsyncClient, app: App, user: User, count: int = 2
) -> tuple[album_pb2.Album, list[str]]:
    """An album of `count` processed photos (their variants made), newest first."""
    ids = [
        (await upload_photo(stub, http, user, jpeg((64, 48), rgb=(i, 2 * i, 3)), title=f"p{i}")).id
        for i in range(count)
    ]
    await process_due_photos(app)
    album = (
        await stub.CreateAlbum(
            pb.CreateAlbumRequest(title="Trip", description="our trip"), metadata=user.metadata
        )
    ).album
    added = await stub.AddAlbumPhotos(
        pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=ids), metadata=user.metadata
    )
    return added.album, list(reversed(ids))


async def _link(stub: Stub, user: User, **fields: object) -> album_pb2.ShareLink:
    fields.setdefault("expire_time", _in(7))
    reply = await stub.CreateShareLink(
        pb.CreateShareLinkRequest(**fields),  # type: ignore[arg-type]
        metadata=user.metadata,
    )
    return reply.share_link


async def _view(stub: Stub, token: str, **fields: object) -> pb.GetSharedAlbumResponse:
    """Without a bearer token."""
    return await stub.GetSharedAlbum(pb.GetSharedAlbumRequest(token=token, **fields))  # type: ignore[arg-type]


async def test_a_shared_album_is_seen_without_a_bearer_token_variants_only(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User
) -> None:
    album, ids = await _shared_album(stub, http, app, alice)
    link = await _link(stub, alice, album_id=album.id)
    assert len(link.token) >= 43
    assert (link.album_id, link.has_password) == (album.id, False)
    # Only the token's SHA-256 is stored.
    async with app.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT token_sha256 FROM share_links WHERE id = $1", uuid.UUID(link.id)
        )
    assert bytes(stored) == hashlib.sha256(link.token.encode()).digest()

    view = await _view(stub, link.token)
    assert (view.title, view.description) == ("Trip", "our trip")
    assert [p.id for p in view.photos] == ids
    for photo in view.photos:
        assert (photo.url, photo.width) == ("", 64)
        assert photo.variants
        for variant in photo.variants:
            got = await http.get(variant.url)
            assert got.status_code == 200
            assert got.content
            left = variant.url_expire_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
            assert left <= SHARE_URL_TTL
        fields = {f.name for f, _ in photo.ListFields()}
        assert not any(name.startswith(FORBIDDEN) for name in fields)

    with_original = await _link(stub, alice, album_id=album.id, allow_original=True)
    view = await _view(stub, with_original.token)
    assert all(p.url for p in view.photos)
    assert (await http.get(view.photos[-1].url)).content == jpeg((64, 48), rgb=(0, 0, 3))

    listed = await stub.ListShareLinks(pb.ListShareLinksRequest(), metadata=alice.metadata)
    assert [x.id for x in listed.share_links] == [with_original.id, link.id]
    assert all(x.token == "" for x in listed.share_links)


async def test_a_shared_photo_and_trash_leave_the_view_at_once(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User
) -> None:
    album, ids = await _shared_album(stub, http, app, alice)
    album_link = await _link(stub, alice, album_id=album.id)
    photo_link = await _link(stub, alice, photo_id=ids[0])
    view = await _view(stub, photo_link.token)
    assert ([p.id for p in view.photos], view.title) == ([ids[0]], "p1")

    await stub.TrashPhoto(pb.TrashPhotoRequest(id=ids[0]), metadata=alice.metadata)
    assert [p.id for p in (await _view(stub, album_link.token)).photos] == ids[1:]
    error = await call_error(_view(stub, photo_link.token))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    await stub.RestorePhoto(pb.RestorePhotoRequest(id=ids[0]), metadata=alice.metadata)
    assert [p.id for p in (await _view(stub, photo_link.token)).photos] == [ids[0]]

    # Deleted for good: the photo's link goes with it.
    await stub.DeletePhoto(pb.DeletePhotoRequest(id=ids[0]), metadata=alice.metadata)
    error = await call_error(_view(stub, photo_link.token))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert [p.id for p in (await _view(stub, album_link.token)).photos] == ids[1:]


async def test_hostile_tokens_are_not_found(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User
) -> None:
    album, _ = await _shared_album(stub, http, app, alice, count=1)
    revoked = await _link(stub, alice, album_id=album.id)
    expired = await _link(stub, alice, album_id=album.id)
    live = await _link(stub, alice, album_id=album.id)
    assert (await _view(stub, revoked.token)).photos
    await stub.RevokeShareLink(pb.RevokeShareLinkRequest(id=revoked.id), metadata=alice.metadata)
    async with app.pool.acquire() as conn:
        await conn.execute(
            "UPDATE share_links SET expire_time = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(expired.id),
        )
    for token in (
        revoked.token,
        expired.token,
        secrets.token_urlsafe(32),
        live.token[:-1],
        live.token[:20],
        live.token + "A",
        "x",
        "\x00" * 10,
    ):
        error = await call_error(_view(stub, token))
        assert error.code() == grpc.StatusCode.NOT_FOUND, token
        assert details(error)["reason"] == "SHARE_LINK_NOT_FOUND"
    for token, field in (("", "token"), ("a" * 257, "token")):
        error = await call_error(_view(stub, token))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(error)["fields"] == [field]

    # The album deleted while its link is open: the link's next call is NOT_FOUND.
    assert (await _view(stub, live.token)).photos
    await stub.DeleteAlbum(pb.DeleteAlbumRequest(id=album.id), metadata=alice.metadata)
    error = await call_error(_view(stub, live.token))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListShareLinks(pb.ListShareLinksRequest(), metadata=alice.metadata)
    assert list(listed.share_links) == []


async def test_a_password_is_needed_checked_and_rate_limited_per_link(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User
) -> None:
    album, ids = await _shared_album(stub, http, app, alice, count=1)
    link = await _link(stub, alice, album_id=album.id, password="correct horse")
    other = await _link(stub, alice, album_id=album.id, password="correct horse")
    assert link.has_password
    async with app.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT password_hash FROM share_links WHERE id = $1", uuid.UUID(link.id)
        )
    assert stored.startswith("scrypt$")
    assert "correct horse" not in stored

    error = await call_error(_view(stub, link.token))
    assert (error.code(), details(error)["reason"]) == (
        grpc.StatusCode.NOT_FOUND,
        "SHARE_PASSWORD_REQUIRED",
    )
    # The right password, again and again (paging): never limited.
    for _ in range(PASSWORD_ATTEMPT_BURST + 3):
        view = await _view(stub, link.token, password="correct horse")
        assert [p.id for p in view.photos] == ids
    # Guesses: NOT_FOUND until the burst is spent, then RESOURCE_EXHAUSTED with RetryInfo,
    # even for the right password (it is not checked at all then).
    codes = []
    for i in range(PASSWORD_ATTEMPT_BURST + 3):
        error = await call_error(_view(stub, link.token, password=f"guess {i:04d}"))
        codes.append(error.code())
    assert codes[0] == grpc.StatusCode.NOT_FOUND
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    error = await call_error(_view(stub, link.token, password="correct horse"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(error)["reason"] == "TOO_MANY_PASSWORD_ATTEMPTS"
    assert timedelta(0) < details(error)["retry_after"] <= timedelta(minutes=2)
    # Per link: the other link with the same password is not slowed down.
    assert (await _view(stub, other.token, password="correct horse")).photos


async def test_page_tokens_are_bound_to_their_link(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User
) -> None:
    album, ids = await _shared_album(stub, http, app, alice, count=3)
    first = await _link(stub, alice, album_id=album.id)
    second = await _link(stub, alice, album_id=album.id)
    seen: list[str] = []
    token = ""
    while True:
        page = await _view(stub, first.token, page_size=1, page_token=token)
        seen += [p.id for p in page.photos]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    page = await _view(stub, first.token, page_size=1)
    error = await call_error(_view(stub, second.token, page_token=page.next_page_token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["fields"] == ["page_token"]
    listing = await stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=alice.metadata)
    error = await call_error(_view(stub, first.token, page_token=listing.next_page_token))
    assert details(error)["fields"] == ["page_token"]


async def test_create_share_link_validates_and_scopes_to_the_caller(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User, bob: User
) -> None:
    album, ids = await _shared_album(stub, http, app, alice, count=1)
    mine = await _link(stub, alice, album_id=album.id)
    targets: list[dict[str, object]] = [
        {"album_id": album.id},
        {"photo_id": ids[0]},
        {"album_id": str(uuid.uuid4())},
    ]
    for target in targets:
        error = await call_error(_link(stub, bob, **target))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await call_error(
        stub.RevokeShareLink(pb.RevokeShareLinkRequest(id=mine.id), metadata=bob.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await _view(stub, mine.token)).photos
    assert (
        list(
            (
                await stub.ListShareLinks(pb.ListShareLinksRequest(), metadata=bob.metadata)
            ).share_links
        )
        == []
    )

    cases: list[tuple[dict[str, object], set[str]]] = [
        ({}, {"album_id"}),
        ({"album_id": album.id, "photo_id": ids[0]}, {"album_id"}),
        ({"album_id": "../x"}, {"album_id"}),
        ({"photo_id": "x"}, {"photo_id"}),
        ({"album_id": album.id, "expire_time": _in(-1)}, {"expire_time"}),
        ({"album_id": album.id, "expire_time": _in(366)}, {"expire_time"}),
        ({"album_id": album.id, "password": "short"}, {"password"}),
        ({"album_id": album.id, "password": "x" * 129}, {"password"}),
    ]
    for fields, violated in cases:
        error = await call_error(_link(stub, alice, **fields))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert set(details(error)["fields"]) == violated
    error = await call_error(
        stub.CreateShareLink(pb.CreateShareLinkRequest(album_id=album.id), metadata=alice.metadata)
    )
    assert details(error)["fields"] == ["expire_time"]
    # The edges: a year ahead, 8 and 128 characters.
    await _link(stub, alice, album_id=album.id, expire_time=_in(364.99), password="x" * 8)
    await _link(stub, alice, album_id=album.id, password="x" * 128)
    error = await call_error(
        stub.RevokeShareLink(pb.RevokeShareLinkRequest(id="nope"), metadata=alice.metadata)
    )
    assert details(error)["fields"] == ["id"]


@pytest.fixture
def transports(stub: Stub, web: httpx.AsyncClient) -> dict[str, Caller]:
    return {
        "grpc": native_caller(stub),
        "grpc-web": grpc_web_caller(web, text=False),
        "grpc-web-text": grpc_web_caller(web, text=True),
        "connect": connect_json_caller(web),
    }


async def test_get_shared_album_needs_no_bearer_on_every_web_transport(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User, transports: dict[str, Caller]
) -> None:
    album, ids = await _shared_album(stub, http, app, alice, count=1)
    link = await _link(stub, alice, album_id=album.id)
    request = pb.GetSharedAlbumRequest(token=link.token)
    for name, caller in transports.items():
        out = await caller("GetSharedAlbum", request, None)
        assert isinstance(out.reply, pb.GetSharedAlbumResponse), (name, out.message)
        assert [p.id for p in out.reply.photos] == ids
        missing = await caller("GetSharedAlbum", pb.GetSharedAlbumRequest(token="x" * 43), None)
        assert missing.code == grpc.StatusCode.NOT_FOUND.value[0], name
        assert missing.status is not None
        assert status_details(missing.status)["reason"] == "SHARE_LINK_NOT_FOUND"
        # Every other RPC still needs the bearer token.
        out = await caller("ListShareLinks", pb.ListShareLinksRequest(), None)
        assert out.code == grpc.StatusCode.UNAUTHENTICATED.value[0], name


async def test_password_attempts_fail_closed_when_redis_cannot_count(
    stub: Stub, http: httpx.AsyncClient, app: App, alice: User, database_url: str
) -> None:
    """Redis down: a password link answers UNAVAILABLE (no guess goes uncounted), while a link
    without a password, which needs no counting, still works."""
    album, ids = await _shared_album(stub, http, app, alice, count=1)
    locked = await _link(stub, alice, album_id=album.id, password="correct horse")
    open_link = await _link(stub, alice, album_id=album.id)
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    async with server_with(DATABASE_URL=database_url, REDIS_URL=dead_redis) as (_, down):
        for password in ("correct horse", "a wrong guess"):
            error = await call_error(
                down.GetSharedAlbum(pb.GetSharedAlbumRequest(token=locked.token, password=password))
            )
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert details(error)["reason"] == "ATTEMPTS_UNAVAILABLE"
        view = await down.GetSharedAlbum(pb.GetSharedAlbumRequest(token=open_link.token))
        assert [p.id for p in view.photos] == ids
