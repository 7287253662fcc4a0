"""Hostile calls against the whole service on real backends (issue 13): Postgres, and
LocalStack's S3, whose conditional PUTs (If-None-Match) and signature checks are the real ones.
The core's clock is driven by the test (open_app(clock=...)); S3 keeps real time, so an upload
URL stays valid while the core already lives past its expiry.

docs/security.md points at these tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App, open_app
from photovault_server.server import running_grpc_server

from .support.buckets import create_bucket
from .support.grpc_status import call_error
from .support.images import jpeg
from .support.s3_servers import localstack_s3_server
from .support.settings import make_settings
from .support.users import User, new_user, put_bytes

pytestmark = pytest.mark.localstack

MAX_PENDING = 3
# Past any upload URL's lifetime and the sweep's grace, as the core sees time.
LATER = timedelta(hours=2)


class DrivenClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Service:
    app: App
    stub: pb_grpc.PhotoServiceAsyncStub
    clock: DrivenClock

    async def object_exists(self, key: str) -> bool:
        return await self.app.backends.store.head(key) is not None


@pytest.fixture(scope="module")
def localstack_endpoint() -> Iterator[str]:
    with localstack_s3_server() as endpoint:
        create_bucket(endpoint)
        yield endpoint


@pytest.fixture(scope="module")
async def service(
    localstack_endpoint: str, database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[Service]:
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = localstack_endpoint
    clock = DrivenClock()
    try:
        settings = make_settings(
            database_url,
            redis_url,
            PHOTOVAULT_UPLOAD_URL_TTL_SECONDS=60,
            PHOTOVAULT_CONFIRM_WINDOW_SECONDS=0,
            PHOTOVAULT_MAX_PENDING_UPLOADS=MAX_PENDING,
        )
        async with open_app(settings, clock=clock) as app:
            os.environ["AWS_ENDPOINT_URL_S3"] = previous
            async with (
                running_grpc_server(app, "127.0.0.1:0") as running,
                grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            ):
                yield Service(app, pb_grpc.PhotoServiceStub(channel), clock)
    finally:
        os.environ["AWS_ENDPOINT_URL_S3"] = previous


async def _ticket(service: Service, user: User, data: bytes) -> pb.CreateUploadUrlResponse:
    return await service.stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="a.jpg", content_type="image/jpeg", size_bytes=len(data)
        ),
        metadata=user.metadata,
    )


async def _confirm(service: Service, user: User, upload_id: str) -> pb.ConfirmUploadResponse:
    return await service.stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=upload_id), metadata=user.metadata
    )


async def _object_key(service: Service, upload_id: str) -> str:
    key = await service.app.pool.fetchval(
        "SELECT object_key FROM uploads WHERE id = $1::uuid", upload_id
    )
    assert isinstance(key, str)
    return key


# Item 3 -------------------------------------------------------------------------------------


async def test_an_upload_url_used_again_after_its_photo_is_deleted_leaves_nothing(
    service: Service, http: httpx.AsyncClient
) -> None:
    """Upload, confirm, DeletePhoto, then PUT again with the same URL while it is still
    valid: S3 accepts it (the object is gone, so If-None-Match: * passes). Once the URL has
    expired, the sweep deletes what it created: no object is left, tracked or not."""
    alice = new_user()
    data = jpeg((6, 6))
    ticket = await _ticket(service, alice, data)
    key = await _object_key(service, ticket.upload_id)
    assert (await put_bytes(http, ticket, data)).status_code == 200
    await _confirm(service, alice, ticket.upload_id)
    await service.stub.DeletePhoto(
        pb.DeletePhotoRequest(id=ticket.upload_id), metadata=alice.metadata
    )
    assert not await service.object_exists(key)

    again = await put_bytes(http, ticket, data)
    assert again.status_code == 200, again.text  # S3 itself cannot refuse it
    assert await service.object_exists(key)

    service.clock.offset += LATER  # the URL has expired, as the core sees it
    await service.app.service.sweep()
    assert not await service.object_exists(key)


# Item 4 -------------------------------------------------------------------------------------


async def test_a_retried_confirm_at_the_deadline_never_records_a_photo_without_bytes(
    service: Service, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Confirm A passes the deadline check and reaches the database only after a retry B,
    landing past the deadline, has deleted the object: A must not record the photo."""
    alice = new_user()
    data = jpeg((7, 7))
    ticket = await _ticket(service, alice, data)
    key = await _object_key(service, ticket.upload_id)
    assert (await put_bytes(http, ticket, data)).status_code == 200

    repo, store = service.app.backends.repository, service.app.backends.store
    a_at_the_database, a_may_go = asyncio.Event(), asyncio.Event()
    real_confirm = repo.confirm_upload

    async def confirm_held_back(*args: object, **kwargs: object) -> object:
        a_at_the_database.set()
        await a_may_go.wait()
        return await real_confirm(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "confirm_upload", confirm_held_back)
    confirm_a = asyncio.create_task(_confirm(service, alice, ticket.upload_id))
    await a_at_the_database.wait()
    service.clock.offset += LATER  # B lands past the deadline

    def then_run_a(delete: object) -> object:
        async def deleting(*args: object) -> object:
            result = await delete(*args)  # type: ignore[operator]
            a_may_go.set()  # A reaches the database between B's two steps
            await asyncio.wait([confirm_a])
            return result

        return deleting

    monkeypatch.setattr(store, "delete", then_run_a(store.delete))
    monkeypatch.setattr(
        store, "delete_many", then_run_a(getattr(store, "delete_many", None)), raising=False
    )
    retry_b = await call_error(_confirm(service, alice, ticket.upload_id))
    assert retry_b.code() == grpc.StatusCode.FAILED_PRECONDITION
    a_may_go.set()
    outcome_a = await call_error(confirm_a)
    assert outcome_a.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)

    monkeypatch.undo()
    gone = await call_error(
        service.stub.GetPhoto(pb.GetPhotoRequest(id=ticket.upload_id), metadata=alice.metadata)
    )
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    assert not await service.object_exists(key)


# Item 5 -------------------------------------------------------------------------------------


async def test_pending_uploads_per_user_are_bounded(
    service: Service, http: httpx.AsyncClient
) -> None:
    """size_bytes=1 reservations cost no quota to speak of: their number is bounded too."""
    alice, bob = new_user(), new_user()
    data = jpeg((4, 4))
    first = await _ticket(service, alice, data)
    for _ in range(MAX_PENDING - 1):
        await _ticket(service, alice, b"x")
    refused = await call_error(_ticket(service, alice, b"x"))
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(refused)
    assert status is not None
    failures = [d for d in status.details if d.Is(error_details_pb2.QuotaFailure.DESCRIPTOR)]
    assert len(failures) == 1
    failure = error_details_pb2.QuotaFailure()
    failures[0].Unpack(failure)
    assert failure.violations[0].subject == f"user:{alice.id}"
    # Another user is not affected; a confirmed upload frees its place.
    await _ticket(service, bob, b"x")
    assert (await put_bytes(http, first, data)).status_code == 200
    await _confirm(service, alice, first.upload_id)
    await _ticket(service, alice, b"x")


async def test_two_sweepers_never_take_the_same_rows_and_delete_in_batches(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [new_user() for _ in range(4)]
    for user in users:
        for _ in range(MAX_PENDING):
            await _ticket(service, user, b"x")
    await service.app.pool.execute(
        "UPDATE uploads SET reserved_until = reserved_until - interval '1 day' "
        "WHERE owner_id = ANY($1::text[])",
        [u.id for u in users],
    )
    store = service.app.backends.store
    requests: list[list[str]] = []
    real_delete, real_delete_many = store.delete, getattr(store, "delete_many", None)

    async def one(key: str) -> None:
        requests.append([key])
        await real_delete(key)

    async def many(keys: Sequence[str]) -> list[str]:
        requests.append(list(keys))
        assert real_delete_many is not None
        result: list[str] = await real_delete_many(keys)
        return result

    monkeypatch.setattr(store, "delete", one)
    monkeypatch.setattr(store, "delete_many", many, raising=False)
    sweeper = service.app.service
    await asyncio.gather(*(sweeper.sweep_expired_uploads(limit=5) for _ in range(4)))
    await sweeper.sweep(batch=100)  # whatever is left, other tests' included

    mine = tuple(f"users/{u.id}/" for u in users)
    keys = [k for batch in requests for k in batch if k.startswith(mine)]
    assert len(keys) == len(users) * MAX_PENDING
    assert len(set(keys)) == len(keys), "two sweepers deleted the same object"
    assert len(requests) < len(keys), "one request per object"
    left = await service.app.pool.fetchval(
        "SELECT count(*) FROM uploads WHERE owner_id = ANY($1::text[])", [u.id for u in users]
    )
    assert left == 0


# Item 8: headers the upload URL does not sign -----------------------------------------------

UNSIGNED_HEADERS = {
    "content-encoding": "gzip",
    "content-disposition": 'attachment; filename="invoice.html"',
    "cache-control": "public, max-age=31536000, immutable",
}


@pytest.mark.parametrize("header", sorted(UNSIGNED_HEADERS))
async def test_headers_the_upload_url_does_not_sign_are_refused(
    service: Service, http: httpx.AsyncClient, header: str
) -> None:
    """S3 stores Content-Encoding, Content-Disposition and Cache-Control sent with a
    presigned PUT even though the URL does not sign them, and serves them with every
    download. The service refuses such an upload at confirm and deletes its bytes (a
    Cache-Control that lets no cache keep the object is fine: Node's fetch sends
    `no-cache`, tests/test_node_clients.py)."""
    alice = new_user()
    data = jpeg((5, 5))
    ticket = await _ticket(service, alice, data)
    key = await _object_key(service, ticket.upload_id)
    put = await http.request(
        ticket.method,
        ticket.upload_url,
        content=data,
        headers={**dict(ticket.required_headers), header: UNSIGNED_HEADERS[header]},
    )
    if put.status_code != 200:  # refused by S3 itself: nothing stored
        assert put.status_code in (400, 403), put.text
        assert not await service.object_exists(key)
        return
    refused = await call_error(_confirm(service, alice, ticket.upload_id))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert header in (refused.details() or "").lower()
    assert not await service.object_exists(key)


async def test_a_cache_control_that_caches_nothing_is_accepted(
    service: Service, http: httpx.AsyncClient
) -> None:
    alice = new_user()
    data = jpeg((5, 5))
    ticket = await _ticket(service, alice, data)
    headers = {**dict(ticket.required_headers), "cache-control": "no-cache, no-store"}
    put = await http.request(ticket.method, ticket.upload_url, content=data, headers=headers)
    assert put.status_code == 200, put.text
    confirmed = await _confirm(service, alice, ticket.upload_id)
    assert confirmed.photo.id == ticket.upload_id
