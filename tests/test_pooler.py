"""The service behind a real PgBouncer in transaction mode with two server connections, as
behind RDS Proxy or a PgBouncer fleet: the gRPC flow with asyncpg's statement cache off, fifty
concurrent callers served by the two connections, and `photovault migrate` refusing the pooled
URL but running through DATABASE_MIGRATION_URL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev.pgbouncer import PgBouncer, pgbouncer
from photovault_server.app import open_app
from photovault_server.server import running_grpc_server

from .support.grpc_status import call_error
from .support.images import jpeg, png
from .support.settings import make_settings
from .support.users import new_user, upload_photo

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
SERVER_CONNECTIONS = 2


@pytest.fixture(scope="module")
def pooler(database_url: str) -> Iterator[PgBouncer]:
    with pgbouncer(database_url, pool_size=SERVER_CONNECTIONS) as bouncer:
        yield bouncer


@pytest.fixture(scope="module")
async def pooled_stub(
    pooler: PgBouncer, redis_url: str, aws_env: None
) -> AsyncIterator[pb_grpc.PhotoServiceAsyncStub]:
    settings = make_settings(
        pooler.database_url,
        redis_url,
        PHOTOVAULT_DB_STATEMENT_CACHE_SIZE=0,
        PHOTOVAULT_DB_POOL_MAX_SIZE=20,
        # Fifty callers queue for two server connections: on a loaded machine the wait passed
        # the 1 s default and calls were shed, which is not what these tests are about.
        PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS=30_000,
    )
    async with (
        open_app(settings) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield pb_grpc.PhotoServiceStub(channel)


def server_connections(pooler: PgBouncer) -> int:
    done = subprocess.run(
        ["psql", pooler.admin_url, "-At", "-c", "SHOW SERVERS"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return len([line for line in done.stdout.splitlines() if line.startswith("S|")])


async def test_the_flow_through_a_transaction_pooler(
    pooled_stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient
) -> None:
    user, other = new_user(), new_user()
    first = await upload_photo(pooled_stub, http, user, jpeg(), title="one", tags=["a"])
    second = await upload_photo(
        pooled_stub, http, user, png(), content_type="image/png", file_name="p.png"
    )
    page = await pooled_stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=user.metadata)
    rest = await pooled_stub.ListPhotos(
        pb.ListPhotosRequest(page_size=1, page_token=page.next_page_token),
        metadata=user.metadata,
    )
    assert [p.id for p in (*page.photos, *rest.photos)] == [second.id, first.id]
    updated = await pooled_stub.UpdatePhoto(
        pb.UpdatePhotoRequest(
            photo=photo_pb2.Photo(id=first.id, title="renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ),
        metadata=user.metadata,
    )
    assert updated.photo.title == "renamed"
    urls = await pooled_stub.BatchGetPhotoUrls(
        pb.BatchGetPhotoUrlsRequest(photo_ids=[first.id, second.id]), metadata=user.metadata
    )
    assert [u.photo_id for u in urls.urls] == [first.id, second.id]
    error = await call_error(
        pooled_stub.GetPhoto(pb.GetPhotoRequest(id=first.id), metadata=other.metadata)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    await pooled_stub.DeletePhoto(pb.DeletePhotoRequest(id=first.id), metadata=user.metadata)
    account = await pooled_stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
    assert account.account.photo_count == 1


async def test_fifty_concurrent_callers_share_two_server_connections(
    pooled_stub: pb_grpc.PhotoServiceAsyncStub, pooler: PgBouncer, http: httpx.AsyncClient
) -> None:
    users = [new_user() for _ in range(50)]
    await upload_photo(pooled_stub, http, users[0], jpeg())

    async def caller(i: int) -> None:
        user = users[i]
        for _ in range(3):
            await pooled_stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
            await pooled_stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)

    await asyncio.gather(*(caller(i) for i in range(50)))
    assert 1 <= server_connections(pooler) <= SERVER_CONNECTIONS


def _migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PHOTOVAULT, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )


def test_migrate_refuses_the_pooled_url_and_uses_the_direct_one(
    pooler: PgBouncer, database_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PHOTOVAULT_"))}
    refused = _migrate({**env, "DATABASE_URL": pooler.database_url})
    assert refused.returncode == 2, refused
    assert "DATABASE_MIGRATION_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = _migrate(
        {**env, "DATABASE_URL": pooler.database_url, "DATABASE_MIGRATION_URL": database_url}
    )
    assert done.returncode == 0, done.stderr
    assert "migrating through DATABASE_MIGRATION_URL" in done.stderr
    assert "schema is up to date" in done.stdout
