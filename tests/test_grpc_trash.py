"""The trash over native gRPC against Postgres, Redis and S3: a trashed photo leaves ListPhotos,
GetPhoto and BatchGetPhotoUrls, keeps its quota, comes back when restored, and the sweep
deletes it (row, bytes and variants) once it has been in the trash longer than the retention.
Another user's ids are NOT_FOUND and change nothing."""

from __future__ import annotations

import grpc
import httpx
import pytest

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App

from .support.grpc_status import call_error, details
from .support.images import jpeg
from .support.processing import process_due_photos
from .support.users import User, upload_photo


async def _listed(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> list[str]:
    reply = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    return [p.id for p in reply.photos]


async def _trash(stub: pb_grpc.PhotoServiceAsyncStub, user: User, page_size: int) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        reply = await stub.ListTrash(
            pb.ListTrashRequest(page_size=page_size, page_token=token), metadata=user.metadata
        )
        ids += [p.id for p in reply.photos]
        token = reply.next_page_token
        if not token:
            return ids


async def _in_store(app: App, key: str) -> bool:
    return await app.backends.store.head(key) is not None


async def test_a_trashed_photo_leaves_every_read_keeps_its_quota_and_comes_back(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg(), title="kept for later")
    other = await upload_photo(stub, http, alice, jpeg(rgb=(9, 9, 9)))
    await stub.TrashPhoto(pb.TrashPhotoRequest(id=photo.id), metadata=alice.metadata)

    assert await _listed(stub, alice) == [other.id]
    error = await call_error(
        stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await call_error(
        stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=[other.id, photo.id]), metadata=alice.metadata
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.photo_count, account.used_bytes) == (2, photo.size_bytes + other.size_bytes)
    assert await _trash(stub, alice, page_size=0) == [photo.id]

    restored = await stub.RestorePhoto(pb.RestorePhotoRequest(id=photo.id), metadata=alice.metadata)
    assert restored.photo.title == "kept for later"
    assert (await http.get(restored.photo.url)).content == jpeg()
    assert sorted(await _listed(stub, alice)) == sorted([photo.id, other.id])
    assert await _trash(stub, alice, page_size=0) == []


async def test_another_users_ids_are_not_found_and_change_nothing(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User, bob: User
) -> None:
    theirs = await upload_photo(stub, http, bob, jpeg())
    for call in (
        stub.TrashPhoto(pb.TrashPhotoRequest(id=theirs.id), metadata=alice.metadata),
        stub.RestorePhoto(pb.RestorePhotoRequest(id=theirs.id), metadata=alice.metadata),
    ):
        assert (await call_error(call)).code() == grpc.StatusCode.NOT_FOUND
    assert await _listed(stub, bob) == [theirs.id]
    await stub.TrashPhoto(pb.TrashPhotoRequest(id=theirs.id), metadata=bob.metadata)
    error = await call_error(
        stub.RestorePhoto(pb.RestorePhotoRequest(id=theirs.id), metadata=alice.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await _trash(stub, alice, page_size=0) == []
    assert await _trash(stub, bob, page_size=0) == [theirs.id]


async def test_list_trash_pages_exactly_and_validates_its_fields(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    photos = [await upload_photo(stub, http, alice, jpeg(rgb=(i, i, i))) for i in range(5)]
    for photo in photos:
        await stub.TrashPhoto(pb.TrashPhotoRequest(id=photo.id), metadata=alice.metadata)
    newest_first = [p.id for p in reversed(photos)]
    for size in (1, 2, 5):
        assert await _trash(stub, alice, page_size=size) == newest_first

    error = await call_error(
        stub.ListTrash(
            pb.ListTrashRequest(page_size=-1, page_token="x" * 600), metadata=alice.metadata
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details(error)["fields"]) == {"page_size", "page_token"}
    # A ListPhotos token is not a ListTrash one.
    for i in range(2):
        await upload_photo(stub, http, alice, jpeg(rgb=(50, i, 50)))
    listing = await stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=alice.metadata)
    assert listing.next_page_token
    error = await call_error(
        stub.ListTrash(
            pb.ListTrashRequest(page_token=listing.next_page_token), metadata=alice.metadata
        )
    )
    assert details(error)["fields"] == ["page_token"]


@pytest.mark.parametrize("rpc", ["TrashPhoto", "RestorePhoto"])
async def test_a_malformed_id_is_an_invalid_argument_on_id(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User, rpc: str
) -> None:
    request = getattr(pb, f"{rpc}Request")(id="../etc/passwd")
    error = await call_error(getattr(stub, rpc)(request, metadata=alice.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(error)["fields"] == ["id"]


async def test_the_sweep_deletes_trashed_photos_past_the_retention_for_good(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    old = await upload_photo(stub, http, alice, jpeg(rgb=(1, 1, 1)))
    young = await upload_photo(stub, http, alice, jpeg(rgb=(2, 2, 2)))
    await process_due_photos(app)
    ready = await stub.GetPhoto(pb.GetPhotoRequest(id=old.id), metadata=alice.metadata)
    assert ready.photo.processing_state == photo_pb2.PROCESSING_STATE_READY
    variant_keys = await app.pool.fetchval(
        "SELECT array_agg(v->>'object_key') FROM photos, jsonb_array_elements(variants) v "
        "WHERE id = $1::uuid",
        old.id,
    )
    assert variant_keys
    old_key = await app.pool.fetchval("SELECT object_key FROM photos WHERE id = $1::uuid", old.id)
    for photo in (old, young):
        await stub.TrashPhoto(pb.TrashPhotoRequest(id=photo.id), metadata=alice.metadata)
    retention = app.settings.service_config().trash_retention
    await app.pool.execute(
        "UPDATE photos SET trashed_at = now() - $2::interval - interval '1 minute' "
        "WHERE id = $1::uuid",
        old.id,
        retention,
    )
    await app.pool.execute(
        "UPDATE photos SET trashed_at = now() - $2::interval + interval '1 hour' "
        "WHERE id = $1::uuid",
        young.id,
        retention,
    )

    report = await app.service.sweep()
    assert report.deleted_trashed_photos >= 1
    assert await _trash(stub, alice, page_size=0) == [young.id]
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.photo_count, account.used_bytes) == (1, young.size_bytes)
    assert not await _in_store(app, old_key)
    for key in variant_keys:
        assert not await _in_store(app, key)
    error = await call_error(
        stub.RestorePhoto(pb.RestorePhotoRequest(id=old.id), metadata=alice.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_photo_of_a_trashed_photo_is_immediate(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg())
    key = await app.pool.fetchval("SELECT object_key FROM photos WHERE id = $1::uuid", photo.id)
    await stub.TrashPhoto(pb.TrashPhotoRequest(id=photo.id), metadata=alice.metadata)
    await stub.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=alice.metadata)
    assert await _trash(stub, alice, page_size=0) == []
    assert not await _in_store(app, key)
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.photo_count, account.used_bytes) == (0, 0)
