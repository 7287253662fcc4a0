"""photovault_client against the real server (Postgres, Redis, moto's S3) over both of its
transports: native gRPC to the grpc.aio server and Connect to the web gateway, both on real
sockets. Every test that takes `connect` runs once per transport.

RPCs are counted (and made to fail) by wrapping the session app's PhotoService methods, which
both servers call: retries and the URL cache are proven by what the server actually saw.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, Unpack

import httpx
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from photovault_client import (
    ClientOptions,
    Code,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PhotoOrder,
    PhotoVaultClient,
    PhotoVaultError,
    ProcessingState,
    QuotaExceeded,
    ResourceExhausted,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
    UploadRejected,
    UrlCache,
    Visibility,
    error_from_status,
)
from photovault_client._connect import parse_error_body, response_error
from photovault_client._content_types import content_type_of, sniff
from photovault_client._source import UploadSource
from photovault_client._upload import put_object
from photovault_server import core
from photovault_server.app import App, open_app
from photovault_server.server import RunningServer, running_grpc_server
from photovault_server.transport.web import connect as gateway_connect
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.buckets import create_bucket
from .support.clock import FakeClock
from .support.images import camera_exif, encode, halves, jpeg, png
from .support.loopback import closed_port
from .support.processing import process_due_photos
from .support.s3_servers import localstack_s3_server
from .support.settings import make_settings
from .support.users import User

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.005, max_backoff=0.02)
SERVICE_METHODS = (
    "create_upload_url",
    "confirm_upload",
    "get_photo",
    "list_photos",
    "batch_get_photo_urls",
    "update_photo",
    "delete_photo",
    "get_account",
)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# Fixtures ---------------------------------------------------------------------------------------


class Connect(Protocol):
    def __call__(self, **options: Unpack[ClientOptions]) -> PhotoVaultClient: ...


@pytest.fixture(scope="session")
async def web_url(app: App) -> AsyncIterator[str]:
    async with running_web_gateway(web_gateway(app), "127.0.0.1:0") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(params=["grpc", "web"])
def connect(request: pytest.FixtureRequest, grpc_server: RunningServer, web_url: str) -> Connect:
    """Builds an (unopened) client for the transport of this run of the test."""

    def make(**options: Unpack[ClientOptions]) -> PhotoVaultClient:
        options.setdefault("retry", FAST_RETRY)
        if request.param == "grpc":
            return PhotoVaultClient.grpc(f"127.0.0.1:{grpc_server.port}", **options)
        return PhotoVaultClient.web(web_url, **options)

    return make


@pytest.fixture
async def pv(connect: Connect, alice: User) -> AsyncIterator[PhotoVaultClient]:
    async with connect(token=alice.token) as client:
        yield client


def count_calls(monkeypatch: pytest.MonkeyPatch, service: object) -> Counter[str]:
    """Counts every PhotoService call the servers make from now on (both transports)."""
    counts: Counter[str] = Counter()
    for name in SERVICE_METHODS:
        original = getattr(service, name)

        async def counted(
            *args: Any, _name: str = name, _original: Any = original, **kw: Any
        ) -> Any:
            counts[_name] += 1
            return await _original(*args, **kw)

        monkeypatch.setattr(service, name, counted)
    return counts


def fail_first(
    monkeypatch: pytest.MonkeyPatch, service: object, name: str, failures: int
) -> Counter[str]:
    """Makes `service.<name>` raise the core's Unavailable `failures` times, then work."""
    counts: Counter[str] = Counter()
    original = getattr(service, name)

    async def flaky(*args: Any, **kw: Any) -> Any:
        counts[name] += 1
        if counts[name] <= failures:
            raise core.Unavailable("database unavailable (injected by the test)")
        return await original(*args, **kw)

    monkeypatch.setattr(service, name, flaky)
    return counts


class FlakyPuts(httpx.AsyncBaseTransport):
    """Real HTTP, except that the first `failures` PUTs fail with a connection error."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.puts = 0
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts += 1
            if self.puts <= self.failures:
                raise httpx.ConnectError("connection reset (injected by the test)", request=request)
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


# Every method, both transports -------------------------------------------------------------


async def test_every_method(pv: PhotoVaultClient, alice: User, http: httpx.AsyncClient) -> None:
    data = jpeg()
    ticket = await pv.create_upload_url(
        "cat.jpg", "image/jpeg", len(data), checksum_sha256=sha256_b64(data)
    )
    assert ticket.method == "PUT"
    assert ticket.required_headers["x-amz-checksum-sha256"] == sha256_b64(data)
    assert ticket.expire_time is not None
    assert ticket.expire_time > datetime.now(UTC)
    put = await http.put(ticket.upload_url, content=data, headers=dict(ticket.required_headers))
    assert put.status_code == 200, put.text

    photo = await pv.confirm_upload(
        ticket.upload_id, title="Cat", description="on a mat", tags=["Pets", "cats"]
    )
    assert photo.id == ticket.upload_id
    assert (photo.owner_id, photo.file_name, photo.title) == (alice.id, "cat.jpg", "Cat")
    assert photo.tags == ("pets", "cats")
    assert photo.visibility is Visibility.PRIVATE
    assert photo.checksum_sha256 == sha256_b64(data)
    assert photo.url_expire_time is not None
    assert photo.url_expire_time > datetime.now(UTC)
    assert isinstance(photo.create_time, datetime)
    assert photo.create_time.tzinfo is not None
    assert (await http.get(photo.url)).content == data
    # ConfirmUpload is idempotent: the same photo again.
    assert (await pv.confirm_upload(ticket.upload_id)).id == photo.id

    got = await pv.get_photo(photo.id)
    assert (got.id, got.title, got.url) == (photo.id, "Cat", photo.url)

    page = await pv.list_photos(tags=["pets"])
    assert [p.id for p in page.photos] == [photo.id]
    assert page.next_page_token == ""

    (url,) = await pv.batch_get_photo_urls([photo.id])
    assert (url.photo_id, url.url) == (photo.id, photo.url)
    assert url.expire_time == photo.url_expire_time

    updated = await pv.update_photo(photo.id, title="Tabby", visibility=Visibility.PUBLIC)
    assert (updated.title, updated.description, updated.visibility) == (
        "Tabby",
        "on a mat",
        Visibility.PUBLIC,
    )
    assert updated.update_time >= photo.update_time

    account = await pv.get_account()
    assert (account.user_id, account.photo_count, account.used_bytes) == (alice.id, 1, len(data))
    assert account.quota_bytes == 10 * 1024 * 1024

    await pv.delete_photo(photo.id)
    with pytest.raises(NotFound):
        await pv.get_photo(photo.id)
    assert (await pv.get_account()).photo_count == 0


async def test_list_pages_and_iterate(pv: PhotoVaultClient) -> None:
    ids = [
        (await pv.upload(png(rgb=(i, 0, 0)), tags=["batch"], title=f"p{i}")).id for i in range(5)
    ]
    await pv.upload(jpeg(), tags=["other"], title="unrelated")

    first = await pv.list_photos(page_size=2, tags=["batch"], order=PhotoOrder.OLDEST_FIRST)
    assert [p.id for p in first.photos] == ids[:2]
    assert first.next_page_token
    second = await pv.list_photos(
        page_size=2, page_token=first.next_page_token, tags=["batch"], order=PhotoOrder.OLDEST_FIRST
    )
    assert [p.id for p in second.photos] == ids[2:4]

    every = [p.id async for p in pv.iter_photos(page_size=2, tags=["batch"])]
    assert every == ids[::-1]  # newest first by default, over three pages
    assert [p.title async for p in pv.iter_photos(query="unrelated")] == ["unrelated"]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert [p async for p in pv.iter_photos(created_after=later)] == []
    assert len([p async for p in pv.iter_photos(visibility=Visibility.PRIVATE)]) == 6
    assert [p async for p in pv.iter_photos(content_type="image/gif")] == []


async def test_trash_restore_and_list_trash(pv: PhotoVaultClient) -> None:
    ids = [(await pv.upload(png(rgb=(0, i, 0)), title=f"t{i}")).id for i in range(3)]
    for photo_id in ids:
        await pv.trash_photo(photo_id)
    await pv.trash_photo(ids[0])  # idempotent
    with pytest.raises(NotFound):
        await pv.get_photo(ids[0])
    with pytest.raises(NotFound):
        await pv.get_url(ids[0])  # evicted from the client's URL cache too
    assert [p async for p in pv.iter_photos()] == []

    first = await pv.list_trash(page_size=2)
    assert [p.id for p in first.photos] == ids[:0:-1]
    second = await pv.list_trash(page_size=2, page_token=first.next_page_token)
    assert [p.id for p in second.photos] == [ids[0]]
    assert second.next_page_token == ""

    restored = await pv.restore_photo(ids[1])
    assert (restored.id, restored.title) == (ids[1], "t1")
    assert [p.id async for p in pv.iter_photos()] == [ids[1]]
    assert (await pv.get_account()).photo_count == 3  # the trash still counts
    with pytest.raises(NotFound):
        await pv.trash_photo("00000000-0000-4000-8000-000000000000")


async def test_albums_and_share_links(pv: PhotoVaultClient) -> None:
    ids = [(await pv.upload(png(rgb=(i, 0, 9)), title=f"a{i}")).id for i in range(2)]
    album = await pv.create_album("Trip", description="by the sea")
    album = await pv.add_album_photos(album.id, ids)
    assert (album.photo_count, album.cover_photo_id) == (2, ids[1])
    album = await pv.update_album(album.id, title="Trip 2", cover_photo_id=ids[0])
    assert (album.title, album.description, album.cover_photo_id) == (
        "Trip 2",
        "by the sea",
        ids[0],
    )
    assert await pv.get_album(album.id) == album
    assert [a.id async for a in pv.iter_albums(page_size=1)] == [album.id]
    page = await pv.list_photos(album_id=album.id)
    assert [p.id for p in page.photos] == ids[::-1]

    link = await pv.create_share_link(
        album_id=album.id, expire_time=datetime.now(UTC) + timedelta(hours=1), password="p" * 8
    )
    assert link.token
    assert link.has_password
    listed = await pv.list_share_links()
    assert [(x.id, x.token) for x in listed] == [(link.id, "")]
    shared = await pv.get_shared_album(link.token, password="p" * 8, page_size=1)
    assert (shared.title, [p.id for p in shared.photos]) == ("Trip 2", [ids[1]])
    rest = await pv.get_shared_album(
        link.token, password="p" * 8, page_token=shared.next_page_token
    )
    assert [p.id for p in rest.photos] == [ids[0]]
    assert all(p.url == "" for p in rest.photos)  # no originals without allow_original

    await pv.remove_album_photos(album.id, [ids[1]])
    await pv.revoke_share_link(link.id)
    with pytest.raises(NotFound):
        await pv.get_shared_album(link.token, password="p" * 8)
    await pv.delete_album(album.id)
    with pytest.raises(NotFound):
        await pv.get_album(album.id)


async def test_upload_skips_a_duplicate_by_default(pv: PhotoVaultClient) -> None:
    data = png(rgb=(1, 99, 1))
    first = await pv.upload(data, title="first")
    again = await pv.upload(data, title="ignored")
    assert (again.id, again.title) == (first.id, "first")
    assert (await pv.get_account()).photo_count == 1
    ticket = await pv.create_upload_url(
        "x.png", "image/png", len(data), checksum_sha256=sha256_b64(data), skip_if_duplicate=True
    )
    assert (ticket.existing_photo_id, ticket.upload_id, ticket.upload_url) == (first.id, "", "")
    # Without it, the same bytes make a second photo.
    second = await pv.upload(data, skip_if_duplicate=False)
    assert second.id != first.id


async def test_for_target_picks_the_transport(
    grpc_server: RunningServer, web_url: str, alice: User
) -> None:
    for target in (
        f"127.0.0.1:{grpc_server.port}",
        f"grpc://127.0.0.1:{grpc_server.port}",
        web_url,
    ):
        async with PhotoVaultClient.for_target(target, token=alice.token) as pv:
            assert (await pv.get_account()).user_id == alice.id


async def test_tls_is_used_when_secure(grpc_server: RunningServer, alice: User) -> None:
    """secure=True speaks TLS: against this plaintext server the handshake fails."""
    async with PhotoVaultClient.grpc(
        f"127.0.0.1:{grpc_server.port}",
        secure=True,
        token=alice.token,
        timeout=5,
        retry=RetryPolicy(max_attempts=1),
    ) as pv:
        with pytest.raises(Unavailable):
            await pv.get_account()


async def test_a_client_must_be_opened(grpc_server: RunningServer) -> None:
    pv = PhotoVaultClient.grpc(f"127.0.0.1:{grpc_server.port}")
    with pytest.raises(RuntimeError, match="async with"):
        await pv.get_account()


# Tokens and deadlines ----------------------------------------------------------------------


async def test_token_provider_is_asked_per_call(connect: Connect, alice: User) -> None:
    asked: list[str] = []

    def sync_token() -> str:
        asked.append("sync")
        return alice.token

    async def async_token() -> str:
        asked.append("async")
        return alice.token

    for provider in (sync_token, async_token):
        async with connect(token=provider) as pv:
            assert (await pv.get_account()).user_id == alice.id
            assert (await pv.get_account()).user_id == alice.id
    assert asked == ["sync", "sync", "async", "async"]


async def test_deadline_per_call(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app.service.get_account

    async def slow(*args: Any, **kw: Any) -> Any:
        await asyncio.sleep(1.0)
        return await original(*args, **kw)

    monkeypatch.setattr(app.service, "get_account", slow)
    async with connect(token=alice.token, timeout=10) as pv:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await pv.get_account(timeout=0.2)
        assert time.monotonic() - started < 0.9
        assert (await pv.get_account()).user_id == alice.id  # the client default: 10 s


# Retries --------------------------------------------------------------------------------------

Call = Callable[[PhotoVaultClient, Any], Any]
IDEMPOTENT: list[tuple[str, Call]] = [
    ("get_photo", lambda pv, photo: pv.get_photo(photo.id)),
    ("list_photos", lambda pv, photo: pv.list_photos()),
    ("batch_get_photo_urls", lambda pv, photo: pv.batch_get_photo_urls([photo.id])),
    ("get_account", lambda pv, photo: pv.get_account()),
    ("confirm_upload", lambda pv, photo: pv.confirm_upload(photo.id)),
]
NOT_IDEMPOTENT: list[tuple[str, Call]] = [
    ("create_upload_url", lambda pv, photo: pv.create_upload_url("a.jpg", "image/jpeg", 100)),
    ("update_photo", lambda pv, photo: pv.update_photo(photo.id, title="new")),
    ("delete_photo", lambda pv, photo: pv.delete_photo(photo.id)),
]


@pytest.mark.parametrize(("method", "call"), IDEMPOTENT, ids=[m for m, _ in IDEMPOTENT])
async def test_idempotent_calls_are_retried_on_unavailable(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch, method: str, call: Call
) -> None:
    photo = await pv.upload(jpeg())
    calls = fail_first(monkeypatch, app.service, method, failures=2)
    await call(pv, photo)
    assert calls[method] == 3


@pytest.mark.parametrize(("method", "call"), NOT_IDEMPOTENT, ids=[m for m, _ in NOT_IDEMPOTENT])
async def test_other_calls_are_not_retried(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch, method: str, call: Call
) -> None:
    photo = await pv.upload(jpeg())
    calls = fail_first(monkeypatch, app.service, method, failures=1)
    with pytest.raises(Unavailable) as error:
        await call(pv, photo)
    assert error.value.reason == "BACKEND_UNAVAILABLE"
    assert calls[method] == 1
    await call(pv, photo)  # the backend is back: the same call works
    assert calls[method] == 2


async def test_retries_stop_after_max_attempts(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_first(monkeypatch, app.service, "get_account", failures=100)
    with pytest.raises(Unavailable):
        await pv.get_account()
    assert calls["get_account"] == FAST_RETRY.max_attempts


async def test_retries_stop_at_the_deadline(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_first(monkeypatch, app.service, "get_account", failures=100)
    slow_backoff = RetryPolicy(max_attempts=50, initial_backoff=0.2, max_backoff=0.2)
    async with connect(token=alice.token, retry=slow_backoff) as pv:
        started = time.monotonic()
        with pytest.raises((Unavailable, DeadlineExceeded)):
            await pv.get_account(timeout=0.5)
    assert time.monotonic() - started < 1.0
    assert 1 <= calls["get_account"] < 50


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, multiplier=2)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        delays = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.7  # spread over the whole range
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


# Processed photos: metadata and variants -------------------------------------------------------


CAMERA_JPEG = encode(
    halves((400, 300), (220, 20, 20), (20, 20, 220)),
    "JPEG",
    exif=camera_exif(
        orientation=6,
        taken="2021:05:04 18:30:00",
        offset="+02:00",
        make="Canon",
        model="EOS R6",
        gps=(48.8584, "N", 2.2945, "E"),
    ),
)


async def test_a_processed_photo_carries_its_metadata_and_variants(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    uploaded = await pv.upload(CAMERA_JPEG, title="tower")
    assert uploaded.processing_state == ProcessingState.PENDING
    assert (uploaded.width, uploaded.taken_time, uploaded.location) == (0, None, None)
    assert uploaded.variants == ()
    await process_due_photos(app)

    photo = await pv.get_photo(uploaded.id)
    assert photo.processing_state == ProcessingState.READY
    assert (photo.width, photo.height) == (300, 400)  # turned upright
    assert photo.taken_time == datetime(2021, 5, 4, 16, 30, tzinfo=UTC)
    assert photo.camera == "Canon EOS R6"
    assert photo.location is not None
    assert photo.location.latitude == pytest.approx(48.8584)
    assert photo.location.longitude == pytest.approx(2.2945)
    assert base64.b64decode(photo.placeholder)
    thumb = photo.variant("thumb")
    assert thumb is not None
    assert (thumb.content_type, thumb.width, thumb.height) == ("image/webp", 240, 320)
    assert thumb.url_expire_time is not None  # private: presigned
    fetched = await http.get(thumb.url)
    assert fetched.status_code == 200
    assert len(fetched.content) == thumb.size_bytes
    assert photo.variant("missing") is None

    page = await pv.list_photos(
        order=PhotoOrder.TAKEN_OLDEST_FIRST,
        taken_after=datetime(2021, 5, 4, 16, 30, tzinfo=UTC),
        taken_before=datetime(2021, 5, 4, 16, 31, tzinfo=UTC),
        variants=["thumb"],
    )
    assert [(p.id, [v.name for v in p.variants]) for p in page.photos] == [(photo.id, ["thumb"])]
    outside = await pv.list_photos(taken_before=datetime(2021, 5, 4, 16, 30, tzinfo=UTC))
    assert outside.photos == ()

    [url] = await pv.batch_get_photo_urls([photo.id], variant="preview")
    assert url.variant == "preview"
    assert url.url == photo.variant("preview").url  # type: ignore[union-attr]
    assert url.url != photo.url
    # The variants' URLs came with the photo: handed out again without an RPC.
    calls = count_calls(monkeypatch, app.service)
    assert await pv.get_url(photo.id, variant="thumb") == thumb.url
    assert await pv.get_url(photo.id) == photo.url
    assert sum(calls.values()) == 0


async def test_a_variant_not_ready_is_answered_with_the_original(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connect(token=alice.token) as uploader:
        pending = await uploader.upload(jpeg(), title="not processed yet")
    async with connect(token=alice.token) as pv:  # a new client: an empty cache
        calls = count_calls(monkeypatch, app.service)
        [url] = await pv.batch_get_photo_urls([pending.id], variant="thumb")
        assert (url.variant, url.url) == ("", pending.url)
        # Not remembered as the thumb: asked again, since it may be ready by now.
        assert await pv.get_url(pending.id, variant="thumb") == pending.url
        assert calls == {"batch_get_photo_urls": 2}
        assert await pv.get_url(pending.id) == pending.url  # remembered as the original
        assert calls == {"batch_get_photo_urls": 2}


def test_evicting_a_photo_forgets_its_variants_urls() -> None:
    cache = UrlCache()
    later = datetime.now(UTC) + timedelta(hours=1)
    cache.put("p1", "https://x/original", later)
    cache.put("p1", "https://x/thumb", later, "thumb")
    cache.put("p2", "https://x/other", later, "thumb")
    assert cache.get("p1", "thumb") == "https://x/thumb"
    assert cache.get("p1") == "https://x/original"
    cache.evict("p1")
    assert (cache.get("p1"), cache.get("p1", "thumb")) == (None, None)
    assert cache.get("p2", "thumb") == "https://x/other"


# The URL cache --------------------------------------------------------------------------------


async def test_get_url_makes_no_rpc_while_the_url_is_fresh(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    photo = await pv.upload(jpeg(), title="cached")  # the confirmed photo fills the cache
    calls = count_calls(monkeypatch, app.service)
    urls = {await pv.get_url(photo.id) for _ in range(10)}
    assert urls == {photo.url}
    assert sum(calls.values()) == 0
    assert (await http.get(photo.url)).content == jpeg()


async def test_get_url_fetches_once_then_serves_from_cache(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connect(token=alice.token) as uploader:
        photos = [await uploader.upload(png(rgb=(i, 1, 1))) for i in range(3)]
    calls = count_calls(monkeypatch, app.service)
    async with connect(token=alice.token) as pv:  # a new client: an empty cache
        first = await pv.get_url(photos[0].id)
        assert calls == {"batch_get_photo_urls": 1}
        assert await pv.get_url(photos[0].id) == first
        assert calls == {"batch_get_photo_urls": 1}
        # get_urls fetches only the misses, in one batch.
        urls = await pv.get_urls([p.id for p in photos])
        assert set(urls) == {p.id for p in photos}
        assert calls == {"batch_get_photo_urls": 2}
        await pv.get_urls([p.id for p in photos])
        assert calls == {"batch_get_photo_urls": 2}


async def test_listing_fills_the_cache(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connect(token=alice.token) as uploader:
        photo = await uploader.upload(jpeg())
    async with connect(token=alice.token) as pv:
        [listed] = [p async for p in pv.iter_photos()]
        calls = count_calls(monkeypatch, app.service)
        assert await pv.get_url(photo.id) == listed.url
        assert sum(calls.values()) == 0


async def test_cache_honours_expiry_minus_margin(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(datetime.now(UTC))
    cache = UrlCache(margin=timedelta(minutes=5), clock=clock)
    async with connect(token=alice.token, url_cache=cache) as pv:
        photo = await pv.upload(jpeg())
        assert photo.url_expire_time is not None
        calls = count_calls(monkeypatch, app.service)
        await pv.get_url(photo.id)
        assert sum(calls.values()) == 0
        # Just over the margin before expiry: still fresh.
        clock.now = photo.url_expire_time - timedelta(minutes=5, seconds=1)
        await pv.get_url(photo.id)
        assert sum(calls.values()) == 0
        # Within the margin: the URL is fetched again.
        clock.now = photo.url_expire_time - timedelta(minutes=4)
        await pv.get_url(photo.id)
        assert calls == {"batch_get_photo_urls": 1}


async def test_a_margin_longer_than_the_url_life_caches_nothing(
    connect: Connect, alice: User, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connect(token=alice.token, url_cache=UrlCache(margin=timedelta(days=8))) as pv:
        photo = await pv.upload(jpeg())
        calls = count_calls(monkeypatch, app.service)
        for _ in range(3):
            await pv.get_url(photo.id)
    assert calls == {"batch_get_photo_urls": 3}


async def test_deleting_evicts_the_url(pv: PhotoVaultClient) -> None:
    photo = await pv.upload(jpeg())
    await pv.delete_photo(photo.id)
    assert len(pv.url_cache) == 0
    with pytest.raises(NotFound):
        await pv.get_url(photo.id)


def test_url_cache_bounds_its_size() -> None:
    cache = UrlCache(max_entries=2)
    later = datetime.now(UTC) + timedelta(hours=1)
    for name in "abc":
        cache.put(name, f"https://x/{name}", later)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, "https://x/b", "https://x/c")


# Uploads --------------------------------------------------------------------------------------


async def test_upload_a_file_with_checksum_and_progress(
    pv: PhotoVaultClient, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    # A real JPEG with trailing bytes, big enough to go out in several chunks.
    data = jpeg(size=(64, 48)) + bytes(range(256)) * 2000
    path = tmp_path / "holiday.jpg"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    photo = await pv.upload(
        path,
        title="Holiday",
        tags=["trips", "2024"],
        visibility=Visibility.PUBLIC,
        progress=lambda sent, total: seen.append((sent, total)),
    )
    assert (photo.file_name, photo.content_type, photo.size_bytes) == (
        "holiday.jpg",
        "image/jpeg",
        len(data),
    )
    assert photo.checksum_sha256 == sha256_b64(data)
    assert (photo.title, photo.tags, photo.visibility) == (
        "Holiday",
        ("trips", "2024"),
        Visibility.PUBLIC,
    )
    assert (await http.get(photo.url)).content == data
    assert seen[0] == (0, len(data))
    assert seen[-1] == (len(data), len(data))
    assert len(seen) > 2
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)


async def test_upload_bytes_sniffs_the_type(pv: PhotoVaultClient) -> None:
    photo = await pv.upload(png())
    assert (photo.content_type, photo.file_name) == ("image/png", "photo.png")
    assert photo.visibility is Visibility.PRIVATE


async def test_upload_trusts_the_bytes_over_the_suffix(
    pv: PhotoVaultClient, tmp_path: Path
) -> None:
    path = tmp_path / "really-a-png.jpg"
    path.write_bytes(png())
    photo = await pv.upload(path)
    assert (photo.content_type, photo.file_name) == ("image/png", "really-a-png.jpg")


async def test_corrupted_upload_is_rejected(pv: PhotoVaultClient) -> None:
    """Bytes that do not start like the declared type: S3 stores them, ConfirmUpload refuses
    them (and deletes the object), so no photo exists."""
    with pytest.raises(FailedPrecondition) as error:
        await pv.upload(b"GIF89a but not really a jpeg" * 4, content_type="image/jpeg")
    assert error.value.reason == "UPLOAD_MISMATCH"
    assert error.value.code is Code.FAILED_PRECONDITION
    assert (await pv.get_account()).photo_count == 0


async def test_unknown_bytes_need_a_content_type(
    pv: PhotoVaultClient, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(monkeypatch, app.service)
    with pytest.raises(ValueError, match="content_type="):
        await pv.upload(b"plain text, no image")
    assert sum(calls.values()) == 0


async def test_upload_put_is_retried_on_network_errors(
    connect: Connect, alice: User, http: httpx.AsyncClient
) -> None:
    flaky = FlakyPuts(failures=2)
    async with (
        httpx.AsyncClient(transport=flaky, timeout=10) as put_http,
        connect(token=alice.token, http=put_http, upload_retry=FAST_RETRY) as pv,
    ):
        photo = await pv.upload(jpeg())
    assert flaky.puts == 3
    assert (await http.get(photo.url)).content == jpeg()


async def test_upload_gives_up_after_its_attempts(connect: Connect, alice: User) -> None:
    flaky = FlakyPuts(failures=100)
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.001)
    async with (
        httpx.AsyncClient(transport=flaky, timeout=10) as put_http,
        connect(token=alice.token, http=put_http, upload_retry=retry) as pv,
    ):
        with pytest.raises(Unavailable) as error:
            await pv.upload(jpeg())
        assert error.value.reason == "UPLOAD_UNAVAILABLE"
        assert flaky.puts == 3
        account = await pv.get_account()
    assert (account.photo_count, account.pending_bytes) == (0, len(jpeg()))


# Uploads to an S3 that checks signatures and checksums (LocalStack) ----------------------
#
# moto accepts any PUT; LocalStack refuses one whose signed headers, length or SHA-256 differ
# from what was signed, so these prove the client sends exactly the required headers (a
# Content-Length, not chunked encoding) and that corrupted bytes never become a photo.


@pytest.fixture(scope="module")
async def strict_s3_target(database_url: str, redis_url: str, aws_env: None) -> AsyncIterator[str]:
    """`host:port` of a gRPC server whose app stores photos in LocalStack."""
    with localstack_s3_server() as endpoint:
        create_bucket(endpoint)
        previous = os.environ["AWS_ENDPOINT_URL_S3"]
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint  # read when the app's S3 client is made
        try:
            async with open_app(make_settings(database_url, redis_url)) as strict_app:
                os.environ["AWS_ENDPOINT_URL_S3"] = previous
                async with running_grpc_server(strict_app, "127.0.0.1:0") as running:
                    yield f"127.0.0.1:{running.port}"
        finally:
            os.environ["AWS_ENDPOINT_URL_S3"] = previous


class CorruptingPuts(httpx.AsyncBaseTransport):
    """Flips one byte of every PUT body on its way, as a faulty network or disk would."""

    def __init__(self) -> None:
        self.puts = 0
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts += 1
            body = bytearray(await request.aread())
            body[-1] ^= 0xFF
            request = httpx.Request(
                request.method, request.url, headers=request.headers, content=bytes(body)
            )
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


class LostAnswer(httpx.AsyncBaseTransport):
    """The first PUT reaches S3, but its answer is lost (the connection drops)."""

    def __init__(self) -> None:
        self.puts = 0
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._real.handle_async_request(request)
        if request.method == "PUT":
            self.puts += 1
            if self.puts == 1:
                await response.aread()
                raise httpx.ReadError("connection dropped (injected by the test)", request=request)
        return response

    async def aclose(self) -> None:
        await self._real.aclose()


@pytest.mark.localstack
async def test_upload_to_signature_checking_s3(
    strict_s3_target: str, alice: User, http: httpx.AsyncClient
) -> None:
    data = jpeg(size=(32, 32)) + bytes(range(256)) * 2000  # several chunks, one Content-Length
    async with PhotoVaultClient.grpc(strict_s3_target, token=alice.token) as pv:
        photo = await pv.upload(data, tags=["strict"])
    assert photo.checksum_sha256 == sha256_b64(data)
    assert (await http.get(photo.url)).content == data


@pytest.mark.localstack
async def test_bytes_corrupted_in_transit_are_refused_by_the_checksum(
    strict_s3_target: str, alice: User
) -> None:
    corrupting = CorruptingPuts()
    async with (
        httpx.AsyncClient(transport=corrupting) as put_http,
        PhotoVaultClient.grpc(strict_s3_target, token=alice.token, http=put_http) as pv,
    ):
        with pytest.raises(UploadRejected) as error:
            await pv.upload(jpeg())
        assert error.value.http_status == 400
        assert "BadDigest" in error.value.message  # S3's error code, without the URL
        assert error.value.reason == "UPLOAD_REJECTED"
        assert isinstance(error.value, FailedPrecondition)
        assert corrupting.puts == 1  # a refusal is not retried
        assert (await pv.get_account()).photo_count == 0


@pytest.mark.localstack
async def test_a_second_put_to_the_same_url_is_refused(strict_s3_target: str, alice: User) -> None:
    data = jpeg()
    async with (
        httpx.AsyncClient() as put_http,
        PhotoVaultClient.grpc(strict_s3_target, token=alice.token) as pv,
    ):
        ticket = await pv.create_upload_url("a.jpg", "image/jpeg", len(data))
        source = await UploadSource.open(data)
        await put_object(put_http, ticket, source)
        with pytest.raises(UploadRejected) as error:  # If-None-Match: *
            await put_object(put_http, ticket, source)
        assert error.value.http_status == 412
        assert (await pv.confirm_upload(ticket.upload_id)).id == ticket.upload_id


@pytest.mark.localstack
async def test_a_retried_put_whose_first_answer_was_lost_succeeds(
    strict_s3_target: str, alice: User, http: httpx.AsyncClient
) -> None:
    """The retry meets 412 (the first bytes did arrive): the upload goes on to ConfirmUpload,
    which verifies the stored object."""
    lost = LostAnswer()
    async with (
        httpx.AsyncClient(transport=lost) as put_http,
        PhotoVaultClient.grpc(
            strict_s3_target, token=alice.token, http=put_http, upload_retry=FAST_RETRY
        ) as pv,
    ):
        photo = await pv.upload(jpeg())
    assert lost.puts == 2
    assert (await http.get(photo.url)).content == jpeg()


# Typed errors ---------------------------------------------------------------------------------


async def test_invalid_argument_has_field_violations(pv: PhotoVaultClient) -> None:
    with pytest.raises(InvalidArgument) as error:
        await pv.create_upload_url("", "text/plain", 0)
    fields = [field for field, _ in error.value.field_violations]
    assert fields == ["file_name", "content_type", "size_bytes"]
    assert all(description for _, description in error.value.field_violations)
    assert error.value.code is Code.INVALID_ARGUMENT


async def test_not_found(pv: PhotoVaultClient, bob: User, connect: Connect) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as error:
        await pv.get_photo(missing)
    assert (error.value.reason, error.value.code) == ("PHOTO_NOT_FOUND", Code.NOT_FOUND)
    assert missing in error.value.message
    # Another user's photo is not found either.
    photo = await pv.upload(jpeg())
    async with connect(token=bob.token) as as_bob:
        with pytest.raises(NotFound):
            await as_bob.get_photo(photo.id)


async def test_quota_exceeded_carries_the_numbers(pv: PhotoVaultClient) -> None:
    mib = 1024 * 1024
    for i in range(10):  # 10 MiB of pending uploads: the whole quota
        await pv.create_upload_url(f"{i}.jpg", "image/jpeg", mib)
    with pytest.raises(QuotaExceeded) as error:
        await pv.create_upload_url("one-too-many.jpg", "image/jpeg", mib)
    quota = error.value
    assert (quota.quota_bytes, quota.reserved_bytes, quota.requested_bytes) == (
        10 * mib,
        10 * mib,
        mib,
    )
    assert quota.reason == "QUOTA_EXCEEDED"
    assert isinstance(quota, ResourceExhausted)


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
async def test_unauthenticated(connect: Connect, token: str | None) -> None:
    async with connect(token=token) as pv:
        with pytest.raises(Unauthenticated) as error:
            await pv.get_account()
    assert error.value.reason == ("TOKEN_MISSING" if token is None else "TOKEN_INVALID")


async def test_failed_precondition_confirm_before_put(pv: PhotoVaultClient) -> None:
    ticket = await pv.create_upload_url("x.jpg", "image/jpeg", 100)
    with pytest.raises(FailedPrecondition) as error:
        await pv.confirm_upload(ticket.upload_id)
    assert error.value.reason == "OBJECT_NOT_UPLOADED"


async def test_unreachable_server_is_unavailable(alice: User) -> None:
    port = closed_port()
    for pv in (
        PhotoVaultClient.grpc(f"127.0.0.1:{port}", token=alice.token, retry=FAST_RETRY, timeout=5),
        PhotoVaultClient.web(f"http://127.0.0.1:{port}", token=alice.token, retry=FAST_RETRY),
    ):
        async with pv:
            with pytest.raises(Unavailable):
                await pv.get_account()


def _status(code: int, *details: Any, message: str = "m") -> status_pb2.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return status_pb2.Status(code=code, message=message, details=packed)


ERROR_TABLE = [
    (Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", InvalidArgument),
    (Code.NOT_FOUND, "PHOTO_NOT_FOUND", NotFound),
    (Code.UNAUTHENTICATED, "TOKEN_EXPIRED", Unauthenticated),
    (Code.FAILED_PRECONDITION, "UPLOAD_MISMATCH", FailedPrecondition),
    (Code.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED", QuotaExceeded),
    (Code.RESOURCE_EXHAUSTED, "MESSAGE_TOO_LARGE", ResourceExhausted),
    (Code.UNAVAILABLE, "BACKEND_UNAVAILABLE", Unavailable),
    (Code.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", DeadlineExceeded),
    (Code.INTERNAL, "INTERNAL", Internal),
    (Code.ABORTED, "SOMETHING_NEW", PhotoVaultError),
]


@pytest.mark.parametrize(("code", "reason", "cls"), ERROR_TABLE)
def test_status_to_error_table(code: Code, reason: str, cls: type[PhotoVaultError]) -> None:
    """One table for both transports: the gateway's own Connect error body decodes to the
    same error as the google.rpc.Status it was made from."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain="photovault.v1")
    if cls is QuotaExceeded:
        info.metadata.update(quota_bytes="100", reserved_bytes="90", requested_bytes="20")
    bad = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="f", description="d")]
    )
    status = _status(code, info, bad, message="what went wrong")
    _, body = gateway_connect.error_body(status)
    decoded = parse_error_body(body)
    assert decoded == status
    for error in (error_from_status(status), error_from_status(decoded)):
        assert type(error) is cls
        assert (error.code, error.message, error.reason) == (code, "what went wrong", reason)
        if isinstance(error, InvalidArgument):
            assert error.field_violations == [("f", "d")]
        if isinstance(error, QuotaExceeded):
            assert (error.quota_bytes, error.reserved_bytes, error.requested_bytes) == (100, 90, 20)


@pytest.mark.parametrize(
    ("http_status", "content_type", "body", "cls", "code"),
    [
        (503, "text/html", b"<h1>Service Unavailable</h1>", Unavailable, Code.UNAVAILABLE),
        (502, "text/plain", b"bad gateway", Unavailable, Code.UNAVAILABLE),
        (401, "text/plain", b"", Unauthenticated, Code.UNAUTHENTICATED),
        (404, "text/plain", b"no such route", PhotoVaultError, Code.UNIMPLEMENTED),
        (500, "application/json", b"not json", PhotoVaultError, Code.UNKNOWN),
        (404, "application/json", b'{"code":"not_found","message":"x"}', NotFound, Code.NOT_FOUND),
    ],
)
def test_connect_errors_without_a_status(
    http_status: int, content_type: str, body: bytes, cls: type[PhotoVaultError], code: Code
) -> None:
    """A proxy's or load balancer's own error page: the code Connect derives from HTTP."""
    error = response_error(http_status, {"content-type": content_type}, body)
    assert type(error) is cls
    assert error.code is code


def test_status_without_details_uses_the_code_name() -> None:
    error = error_from_status(status_pb2.Status(code=14, message="connection refused"))
    assert isinstance(error, Unavailable)
    assert str(error) == "UNAVAILABLE: connection refused"


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (jpeg(), None, "image/jpeg"),
        (png(), "x.jpg", "image/png"),
        (b"GIF89a....", None, "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", None, "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf", None, "image/heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", None, "image/avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", None, "image/avif"),
        (b"unknown", "scan.JPEG", "image/jpeg"),
        (b"unknown", "photo.heic", "image/heic"),
    ],
)
def test_content_type_sniffing(head: bytes, name: str | None, expected: str) -> None:
    assert content_type_of(head, name) == expected


def test_unknown_content_type() -> None:
    assert sniff(b"%PDF-1.7") is None
    with pytest.raises(ValueError, match=r"notes\.txt"):
        content_type_of(b"hello", "notes.txt")
