"""Albums over native gRPC against Postgres, Redis and S3: create, read, list, update, delete,
add and remove photos; ListPhotos by album; the cover's fallback; the limits; and hostile
input: another user's album or photo ids in every album RPC are NOT_FOUND and change nothing,
and an edit with one bad id changes nothing at all."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import grpc
import httpx
from google.protobuf import field_mask_pb2, timestamp_pb2

from photovault.v1 import album_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.albums import MAX_ALBUM_PAGE_SIZE, MAX_PHOTOS_PER_ALBUM

from .support.grpc_status import call_error, details
from .support.images import jpeg
from .support.users import User, new_user, upload_photo

if TYPE_CHECKING:
    Stub = pb_grpc.PhotoServiceAsyncStub


async def _album(stub: Stub, user: User, title: str = "Holidays") -> album_pb2.Album:
    reply = await stub.CreateAlbum(pb.CreateAlbumRequest(title=title), metadata=user.metadata)
    return reply.album


async def _get(stub: Stub, user: User, album_id: str) -> album_pb2.Album:
    return (await stub.GetAlbum(pb.GetAlbumRequest(id=album_id), metadata=user.metadata)).album


async def _in_album(stub: Stub, user: User, album_id: str, page_size: int = 0) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        reply = await stub.ListPhotos(
            pb.ListPhotosRequest(album_id=album_id, page_size=page_size, page_token=token),
            metadata=user.metadata,
        )
        ids += [p.id for p in reply.photos]
        token = reply.next_page_token
        if not token:
            return ids


async def _add(stub: Stub, user: User, album_id: str, *ids: str) -> album_pb2.Album:
    reply = await stub.AddAlbumPhotos(
        pb.AddAlbumPhotosRequest(album_id=album_id, photo_ids=list(ids)), metadata=user.metadata
    )
    return reply.album


async def test_an_album_holds_photos_lists_them_and_keeps_them_when_deleted(
    stub: Stub, http: httpx.AsyncClient, alice: User
) -> None:
    first = await upload_photo(stub, http, alice, jpeg(), title="first")
    second = await upload_photo(stub, http, alice, jpeg(rgb=(9, 9, 9)), title="second")
    outside = await upload_photo(stub, http, alice, jpeg(rgb=(90, 9, 9)))
    created = await _album(stub, alice, "  Holidays  ")
    assert (created.title, created.photo_count, created.cover_photo_id) == ("Holidays", 0, "")

    album = await _add(stub, alice, created.id, first.id, second.id, first.id)
    assert album.photo_count == 2
    assert album.cover_photo_id == second.id  # the newest, by default
    # Adding again changes nothing.
    assert (await _add(stub, alice, created.id, first.id)).photo_count == 2
    assert await _in_album(stub, alice, created.id) == [second.id, first.id]
    assert await _in_album(stub, alice, created.id, page_size=1) == [second.id, first.id]
    # The usual filters still apply.
    only = await stub.ListPhotos(
        pb.ListPhotosRequest(album_id=created.id, query="first"), metadata=alice.metadata
    )
    assert [p.id for p in only.photos] == [first.id]

    removed = await stub.RemoveAlbumPhotos(
        pb.RemoveAlbumPhotosRequest(album_id=created.id, photo_ids=[second.id]),
        metadata=alice.metadata,
    )
    assert (removed.album.photo_count, removed.album.cover_photo_id) == (1, first.id)

    await stub.DeleteAlbum(pb.DeleteAlbumRequest(id=created.id), metadata=alice.metadata)
    error = await call_error(_get(stub, alice, created.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
    assert {p.id for p in listed.photos} == {first.id, second.id, outside.id}
    error = await call_error(_in_album(stub, alice, created.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_the_cover_falls_back_when_its_photo_goes(
    stub: Stub, http: httpx.AsyncClient, alice: User
) -> None:
    old = await upload_photo(stub, http, alice, jpeg())
    cover = await upload_photo(stub, http, alice, jpeg(rgb=(1, 2, 3)))
    newest = await upload_photo(stub, http, alice, jpeg(rgb=(3, 2, 1)))
    album = await _album(stub, alice)
    await _add(stub, alice, album.id, old.id, cover.id, newest.id)
    mask = field_mask_pb2.FieldMask(paths=["cover_photo_id"])
    updated = await stub.UpdateAlbum(
        pb.UpdateAlbumRequest(
            album=album_pb2.Album(id=album.id, cover_photo_id=cover.id), update_mask=mask
        ),
        metadata=alice.metadata,
    )
    assert updated.album.cover_photo_id == cover.id

    # Trashed: the newest photo stands in, and the count drops; restored: back.
    await stub.TrashPhoto(pb.TrashPhotoRequest(id=cover.id), metadata=alice.metadata)
    now = await _get(stub, alice, album.id)
    assert (now.cover_photo_id, now.photo_count) == (newest.id, 2)
    assert await _in_album(stub, alice, album.id) == [newest.id, old.id]
    await stub.RestorePhoto(pb.RestorePhotoRequest(id=cover.id), metadata=alice.metadata)
    assert (await _get(stub, alice, album.id)).cover_photo_id == cover.id

    # Deleted: gone from the album for good.
    await stub.DeletePhoto(pb.DeletePhotoRequest(id=cover.id), metadata=alice.metadata)
    now = await _get(stub, alice, album.id)
    assert (now.cover_photo_id, now.photo_count) == (newest.id, 2)
    await stub.DeletePhoto(pb.DeletePhotoRequest(id=newest.id), metadata=alice.metadata)
    assert (await _get(stub, alice, album.id)).cover_photo_id == old.id

    # A photo not in the album cannot be the cover.
    outside = await upload_photo(stub, http, alice, jpeg(rgb=(7, 7, 7)))
    error = await call_error(
        stub.UpdateAlbum(
            pb.UpdateAlbumRequest(
                album=album_pb2.Album(id=album.id, cover_photo_id=outside.id), update_mask=mask
            ),
            metadata=alice.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert details(error)["reason"] == "PHOTO_NOT_IN_ALBUM"


async def test_another_users_ids_are_not_found_in_every_album_rpc_and_change_nothing(
    stub: Stub, http: httpx.AsyncClient, alice: User, bob: User
) -> None:
    mine = await upload_photo(stub, http, alice, jpeg())
    theirs = await upload_photo(stub, http, bob, jpeg(rgb=(5, 5, 5)))
    my_album = await _album(stub, alice, "mine")
    their_album = await _album(stub, bob, "theirs")
    await _add(stub, bob, their_album.id, theirs.id)
    mask = field_mask_pb2.FieldMask(paths=["title"])
    calls: list[Awaitable[object]] = [
        stub.GetAlbum(pb.GetAlbumRequest(id=their_album.id), metadata=alice.metadata),
        stub.UpdateAlbum(
            pb.UpdateAlbumRequest(
                album=album_pb2.Album(id=their_album.id, title="mine now"), update_mask=mask
            ),
            metadata=alice.metadata,
        ),
        stub.DeleteAlbum(pb.DeleteAlbumRequest(id=their_album.id), metadata=alice.metadata),
        stub.AddAlbumPhotos(
            pb.AddAlbumPhotosRequest(album_id=their_album.id, photo_ids=[mine.id]),
            metadata=alice.metadata,
        ),
        stub.RemoveAlbumPhotos(
            pb.RemoveAlbumPhotosRequest(album_id=their_album.id, photo_ids=[theirs.id]),
            metadata=alice.metadata,
        ),
        # Another user's photo into my album, alone or among mine: nothing is added.
        stub.AddAlbumPhotos(
            pb.AddAlbumPhotosRequest(album_id=my_album.id, photo_ids=[mine.id, theirs.id]),
            metadata=alice.metadata,
        ),
        stub.RemoveAlbumPhotos(
            pb.RemoveAlbumPhotosRequest(album_id=my_album.id, photo_ids=[theirs.id]),
            metadata=alice.metadata,
        ),
        # Their photo as my cover.
        stub.UpdateAlbum(
            pb.UpdateAlbumRequest(
                album=album_pb2.Album(id=my_album.id, cover_photo_id=theirs.id),
                update_mask=field_mask_pb2.FieldMask(paths=["cover_photo_id"]),
            ),
            metadata=alice.metadata,
        ),
        stub.ListPhotos(pb.ListPhotosRequest(album_id=their_album.id), metadata=alice.metadata),
    ]
    for call in calls:
        error = await call_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert (await _get(stub, alice, my_album.id)).photo_count == 0
    kept = await _get(stub, bob, their_album.id)
    assert (kept.title, kept.photo_count) == ("theirs", 1)
    assert await _in_album(stub, bob, their_album.id) == [theirs.id]
    listed = await stub.ListAlbums(pb.ListAlbumsRequest(), metadata=alice.metadata)
    assert [a.id for a in listed.albums] == [my_album.id]


async def test_every_field_is_validated(stub: Stub, alice: User) -> None:
    album = await _album(stub, alice)
    cases: list[tuple[Awaitable[object], set[str]]] = [
        (stub.CreateAlbum(pb.CreateAlbumRequest(title=" "), metadata=alice.metadata), {"title"}),
        (
            stub.CreateAlbum(
                pb.CreateAlbumRequest(title="x" * 201, description="y" * 2001),
                metadata=alice.metadata,
            ),
            {"title", "description"},
        ),
        (stub.GetAlbum(pb.GetAlbumRequest(id="../x"), metadata=alice.metadata), {"id"}),
        (stub.DeleteAlbum(pb.DeleteAlbumRequest(id=""), metadata=alice.metadata), {"id"}),
        (
            stub.ListAlbums(
                pb.ListAlbumsRequest(page_size=-1, page_token="x" * 600), metadata=alice.metadata
            ),
            {"page_size", "page_token"},
        ),
        (
            stub.ListAlbums(
                pb.ListAlbumsRequest(page_token="not-a-token"), metadata=alice.metadata
            ),
            {"page_token"},
        ),
        (
            stub.UpdateAlbum(
                pb.UpdateAlbumRequest(
                    album=album_pb2.Album(id=album.id, title="\x00", cover_photo_id="nope"),
                    update_mask=field_mask_pb2.FieldMask(
                        paths=["title", "cover_photo_id", "photo_count"]
                    ),
                ),
                metadata=alice.metadata,
            ),
            {"album.title", "album.cover_photo_id", "update_mask"},
        ),
        (
            stub.UpdateAlbum(
                pb.UpdateAlbumRequest(album=album_pb2.Album(id=album.id)),
                metadata=alice.metadata,
            ),
            {"update_mask"},
        ),
        (
            stub.AddAlbumPhotos(
                pb.AddAlbumPhotosRequest(album_id="x", photo_ids=[]), metadata=alice.metadata
            ),
            {"album_id", "photo_ids"},
        ),
        (
            stub.AddAlbumPhotos(
                pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=[str(uuid.uuid4())] * 101),
                metadata=alice.metadata,
            ),
            {"photo_ids"},
        ),
        (
            stub.RemoveAlbumPhotos(
                pb.RemoveAlbumPhotosRequest(album_id=album.id, photo_ids=["a", str(uuid.uuid4())]),
                metadata=alice.metadata,
            ),
            {"photo_ids[0]"},
        ),
        (
            stub.ListPhotos(pb.ListPhotosRequest(album_id="nope"), metadata=alice.metadata),
            {"album_id"},
        ),
    ]
    for call, fields in cases:
        error = await call_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, error.details())
        assert set(details(error)["fields"]) == fields
    # 100 ids is the edge: accepted (and NOT_FOUND, as none is a photo of hers).
    error = await call_error(
        stub.AddAlbumPhotos(
            pb.AddAlbumPhotosRequest(
                album_id=album.id, photo_ids=[str(uuid.uuid4()) for _ in range(100)]
            ),
            metadata=alice.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A ListPhotos page token without the album is not one with it.
    page = await stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=alice.metadata)
    if page.next_page_token:
        error = await call_error(
            stub.ListPhotos(
                pb.ListPhotosRequest(album_id=album.id, page_token=page.next_page_token),
                metadata=alice.metadata,
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_albums_pages_exactly(stub: Stub, alice: User) -> None:
    made = [(await _album(stub, alice, f"album {i}")).id for i in range(5)]
    for size in (1, 2, 5, 0):
        ids: list[str] = []
        token = ""
        while True:
            reply = await stub.ListAlbums(
                pb.ListAlbumsRequest(page_size=size, page_token=token), metadata=alice.metadata
            )
            ids += [a.id for a in reply.albums]
            token = reply.next_page_token
            if not token:
                break
        assert ids == list(reversed(made))
    # Another user's page token is not hers.
    bob = new_user()
    for i in range(2):
        await _album(stub, bob, f"b{i}")
    theirs = await stub.ListAlbums(pb.ListAlbumsRequest(page_size=1), metadata=bob.metadata)
    error = await call_error(
        stub.ListAlbums(
            pb.ListAlbumsRequest(page_token=theirs.next_page_token), metadata=alice.metadata
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_user_has_at_most_1000_albums(stub: Stub, app: App) -> None:
    user = new_user()
    await _album(stub, user, "the first")
    # The other 999 straight into the table: only the bound is under test.
    async with app.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO albums (id, owner_id, title, create_time, update_time) "
            "SELECT gen_random_uuid(), $1, 'a' || i, now(), now() "
            "FROM generate_series(2, 1000) AS i",
            user.id,
        )
    error = await call_error(_album(stub, user, "one too many"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(error)["reason"] == "TOO_MANY_ALBUMS"
    assert details(error)["quota"] == [f"user:{user.id}"]
    # A page holds at most 100 albums, whatever the page_size asks (replies stay small).
    page = await stub.ListAlbums(pb.ListAlbumsRequest(page_size=500), metadata=user.metadata)
    assert len(page.albums) == MAX_ALBUM_PAGE_SIZE
    assert page.next_page_token


async def test_10000_photos_in_an_album_page_to_the_end_and_no_more_fit(
    stub: Stub, http: httpx.AsyncClient, app: App
) -> None:
    """The photos are rows made with generate_series (their bytes are never read: a listing
    of private photos only signs URLs)."""
    user = new_user()
    first = await upload_photo(stub, http, user, jpeg())
    album = await _album(stub, user, "big")
    await _add(stub, user, album.id, first.id)
    async with app.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO photos (id, owner_id, object_key, file_name, content_type, "
            "size_bytes, title, description, tags, visibility, create_time, update_time) "
            "SELECT gen_random_uuid(), $1, 'users/' || $1 || '/photos/' || i || '.jpg', "
            "'f.jpg', 'image/jpeg', 1, '', '', '{}', 1, "
            "timestamptz '2020-01-01 00:00Z' + i * interval '1 second', now() "
            "FROM generate_series(1, $2::int) AS i",
            user.id,
            MAX_PHOTOS_PER_ALBUM,
        )
        await conn.execute(
            "INSERT INTO album_photos (album_id, photo_id, owner_id, add_time, photo_create_time) "
            "SELECT $1, id, owner_id, now(), create_time FROM photos WHERE owner_id = $2 "
            "AND id <> $3 "
            "ORDER BY create_time LIMIT $4",
            uuid.UUID(album.id),
            user.id,
            uuid.UUID(first.id),
            MAX_PHOTOS_PER_ALBUM - 1,
        )
        spare = await conn.fetchval(
            "SELECT id FROM photos WHERE owner_id = $1 AND NOT EXISTS "
            "(SELECT 1 FROM album_photos WHERE photo_id = photos.id)",
            user.id,
        )
    assert (await _get(stub, user, album.id)).photo_count == MAX_PHOTOS_PER_ALBUM
    ids = await _in_album(stub, user, album.id, page_size=500)
    assert len(ids) == len(set(ids)) == MAX_PHOTOS_PER_ALBUM
    assert ids[0] == first.id  # the one confirmed now is the newest
    # The same 10,000 through a share link, without a bearer token, to the end.
    expire = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    link = (
        await stub.CreateShareLink(
            pb.CreateShareLinkRequest(album_id=album.id, expire_time=expire),
            metadata=user.metadata,
        )
    ).share_link
    shared: list[str] = []
    token = ""
    while True:
        page = await stub.GetSharedAlbum(
            pb.GetSharedAlbumRequest(token=link.token, page_size=500, page_token=token)
        )
        shared += [p.id for p in page.photos]
        token = page.next_page_token
        if not token:
            break
    assert shared == ids
    error = await call_error(_add(stub, user, album.id, str(spare)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(error)["reason"] == "TOO_MANY_ALBUM_PHOTOS"
    # Already in the album: no new membership, so no limit.
    assert (await _add(stub, user, album.id, first.id)).photo_count == MAX_PHOTOS_PER_ALBUM
