"""Uploads never confirmed in time are swept: object first, then the row; fresh uploads and
those within the grace stay; an S3 failure keeps the row. (Their quota was released when their
reservation ended; the sweep removes what is left.)"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.errors import Unavailable
from photovault_server.core.service import SWEEP_GRACE

from .support.cli import serve_env
from .support.images import jpeg
from .support.settings import BUCKET
from .support.users import User, put_bytes

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")


async def _upload(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, user: User
) -> pb.CreateUploadUrlResponse:
    data = jpeg()
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="a.jpg", content_type="image/jpeg", size_bytes=len(data)
        ),
        metadata=user.metadata,
    )
    assert (await put_bytes(http, ticket, data)).status_code == 200
    return ticket


async def _age(app: App, upload_id: str, by: timedelta) -> None:
    await app.pool.execute(
        "UPDATE uploads SET reserved_until = now() - $2::interval WHERE id = $1::uuid",
        upload_id,
        by,
    )


async def _pending(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> int:
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)).account
    return account.pending_bytes


async def test_expired_uploads_are_swept_with_their_objects(
    app: App, stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    old = await _upload(stub, http, alice)
    recent = await _upload(stub, http, alice)
    fresh = await _upload(stub, http, alice)
    await _age(app, old.upload_id, SWEEP_GRACE + timedelta(minutes=1))
    await _age(app, recent.upload_id, SWEEP_GRACE - timedelta(minutes=1))
    before = await _pending(stub, alice)
    swept = await app.service.sweep_expired_uploads()
    assert swept >= 1
    # Expired reservations stopped counting when they ended: only the fresh one is pending.
    assert await _pending(stub, alice) == before == len(jpeg())
    # The object is gone from S3; the others are still there.
    assert (await http.get(old.upload_url.split("?")[0])).status_code in (403, 404)
    remaining = await app.pool.fetch(
        "SELECT id::text FROM uploads WHERE id = ANY($1::uuid[])",
        [old.upload_id, recent.upload_id, fresh.upload_id],
    )
    assert {r["id"] for r in remaining} == {recent.upload_id, fresh.upload_id}
    confirmed = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=fresh.upload_id), metadata=alice.metadata
    )
    assert confirmed.photo.id == fresh.upload_id


async def test_an_s3_failure_keeps_the_row_for_the_next_sweep(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticket = await _upload(stub, http, alice)
    await _age(app, ticket.upload_id, SWEEP_GRACE + timedelta(hours=1))

    async def s3_down(keys: object) -> list[str]:
        raise Unavailable("object store unavailable (test)")

    store = app.backends.store
    monkeypatch.setattr(store, "delete_many", s3_down)
    with pytest.raises(Unavailable):
        await app.service.sweep_expired_uploads()
    assert (
        await app.pool.fetchval(
            "SELECT count(*) FROM uploads WHERE id = $1::uuid", ticket.upload_id
        )
        == 1
    )
    monkeypatch.undo()
    assert await app.service.sweep_expired_uploads() >= 1
    assert (
        await app.pool.fetchval(
            "SELECT count(*) FROM uploads WHERE id = $1::uuid", ticket.upload_id
        )
        == 0
    )


async def test_photovault_sweep_command(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    database_url: str,
    redis_url: str,
    s3_endpoint: str,
) -> None:
    ticket = await _upload(stub, http, alice)
    await _age(app, ticket.upload_id, SWEEP_GRACE + timedelta(hours=1))
    env = serve_env(database_url, redis_url, s3_endpoint, 0)
    assert env["PHOTOVAULT_BUCKET"] == BUCKET
    process = await asyncio.create_subprocess_exec(
        PHOTOVAULT,
        "sweep",
        "--batch",
        "2",
        env={**env, "PATH": os.environ.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert stdout.decode().startswith("swept ")
    assert int(stdout.split()[1]) >= 1
    assert "abandoned multipart uploads" in stdout.decode()
    assert (
        await app.pool.fetchval(
            "SELECT count(*) FROM uploads WHERE id = $1::uuid", ticket.upload_id
        )
        == 0
    )
