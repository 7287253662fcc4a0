"""A backend down mid-request: Postgres or S3 down -> UNAVAILABLE with a clear message and no
half-written state; Redis down -> the call still succeeds with freshly signed URLs."""

from __future__ import annotations

import os

import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App

from .support.grpc_status import call_error, details
from .support.images import jpeg
from .support.loopback import closed_port
from .support.servers import server_with
from .support.users import User, put_bytes, upload_photo


async def test_postgres_down_is_unavailable(
    database_url: str, redis_url: str, aws_env: None, alice: User
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{closed_port()}/photovault"
    async with server_with(DATABASE_URL=dead, REDIS_URL=redis_url) as (_, stub):
        error = await call_error(stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert details(error)["reason"] == "BACKEND_UNAVAILABLE"
    assert "database" in (error.details() or "")
    assert "127.0.0.1" not in (error.details() or "")  # no connection strings leak


async def test_redis_down_still_serves_fresh_urls(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    database_url: str,
    aws_env: None,
    alice: User,
) -> None:
    photo = await upload_photo(stub, http, alice, jpeg())
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    async with server_with(DATABASE_URL=database_url, REDIS_URL=dead_redis) as (_, down):
        listed = await down.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
        got = await down.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata)
    assert [p.id for p in listed.photos] == [photo.id]
    assert (await http.get(got.photo.url)).content == jpeg()


async def test_s3_down_is_unavailable_and_confirms_nothing(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    aws_env: None,
    alice: User,
) -> None:
    data = jpeg()
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="a.jpg", content_type="image/jpeg", size_bytes=len(data)
        ),
        metadata=alice.metadata,
    )
    assert (await put_bytes(http, ticket, data)).status_code == 200
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{closed_port()}"
    try:
        async with server_with(DATABASE_URL=database_url, REDIS_URL=redis_url) as (_, down):
            os.environ["AWS_ENDPOINT_URL_S3"] = previous
            error = await call_error(
                down.ConfirmUpload(
                    pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
                )
            )
    finally:
        os.environ["AWS_ENDPOINT_URL_S3"] = previous
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "object store" in (error.details() or "")
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.photo_count, account.pending_bytes) == (0, len(data))
    # With S3 back, the same upload confirms normally.
    photo = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
    )
    assert photo.photo.id == ticket.upload_id


async def test_delete_with_s3_down_deletes_the_photo_and_the_sweep_its_object(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    aws_env: None,
    alice: User,
) -> None:
    """The row goes first, in one transaction with its usage and the queued deletion of its
    object; S3 being down only delays the object's deletion to the next sweep. (Deleting the
    object first lost it when Postgres failed before the commit: a photo without its object,
    found by make soak.)"""
    photo = await upload_photo(stub, http, alice, jpeg())
    url = photo.url
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{closed_port()}"
    try:
        async with server_with(DATABASE_URL=database_url, REDIS_URL=redis_url) as (_, down):
            os.environ["AWS_ENDPOINT_URL_S3"] = previous
            await down.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=alice.metadata)
    finally:
        os.environ["AWS_ENDPOINT_URL_S3"] = previous
    gone = await call_error(stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.photo_count, account.used_bytes) == (0, 0)
    key = f"users/{alice.id}/photos/{photo.id}"
    queued = await app.pool.fetch(
        "SELECT object_key FROM object_deletions WHERE object_key LIKE $1 || '%'", key
    )
    assert len(queued) == 1
    assert (await http.get(url)).status_code == 200  # the bytes are still there ...

    assert await app.service.sweep_deleted_objects() >= 1
    assert (await http.get(url)).status_code in (403, 404)  # ... until the sweep
    # The key stays queued, deleted once, for one more deletion when no upload URL can
    # recreate it (tests/test_security.py).
    left = await app.pool.fetch(
        "SELECT deleted_once, not_before > now() AS waits FROM object_deletions "
        "WHERE object_key LIKE $1 || '%'",
        key,
    )
    assert [(r["deleted_once"], r["waits"]) for r in left] == [(True, True)]


@pytest.mark.parametrize("rpc", ["GetAccount"])
async def test_unexpected_errors_are_internal_without_details(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    alice: User,
    rpc: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals https://bucket/key?X-Amz-Signature=abc")

    monkeypatch.setattr(app.service, "get_account", boom)
    error = await call_error(getattr(stub, rpc)(pb.GetAccountRequest(), metadata=alice.metadata))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error"
    assert details(error)["reason"] == "INTERNAL"


async def test_postgres_connections_killed_mid_service_are_unavailable_not_internal(
    database_url: str, redis_url: str, aws_env: None, alice: User
) -> None:
    """As when Postgres restarts under load: the pool's connections die; calls answer
    UNAVAILABLE (or succeed on a fresh connection), never INTERNAL, and recover by themselves."""
    import asyncio

    import asyncpg

    async with server_with(DATABASE_URL=database_url, REDIS_URL=redis_url) as (app, stub):
        calls = [stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata) for _ in range(8)]
        await asyncio.gather(*calls)  # opens several pooled connections
        pids = []
        for _ in range(app.pool.get_size()):
            async with app.pool.acquire() as conn:
                pids.append(conn.get_server_pid())
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", pids)
        finally:
            await admin.close()
        codes = []
        for _ in range(3):
            results = await asyncio.gather(
                *(
                    stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
                    for _ in range(8)
                ),
                return_exceptions=True,
            )
            codes += [r.code() if isinstance(r, grpc.aio.AioRpcError) else None for r in results]
        assert set(codes) <= {None, grpc.StatusCode.UNAVAILABLE}, codes
        # And it recovers without a restart: reconnecting may take longer than one call's
        # acquire bound on a loaded machine (then UNAVAILABLE "busy", as asserted above).
        for _ in range(50):
            try:
                await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                await asyncio.sleep(0.2)
        else:
            pytest.fail("ListPhotos never recovered after the connections were killed")
