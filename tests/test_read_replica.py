"""Reads on a real streaming replica (DATABASE_READ_URL): a primary and its hot standby of the
test's own (`pg_basebackup -R`, devtools/photovault_dev/replica.py), the service over native
gRPC in front of both.

With the replica's replay paused (`pg_wal_replay_pause()`), the replica is a snapshot of the
past: a photo its owner deleted is still there, and a row changed on the primary alone is not.
That tells apart where each read ran: the owner never sees the deleted photo (read-your-writes),
another user sees the replica's old row (their reads do go to the replica), and a second
process reading for the owner stays off the replica too (the mark shared in Redis). Stopped,
the replica costs nothing but load: calls succeed on the primary, and it serves again once
back. A lag past the bound is measured by the primary's clock, not by sleeping in the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
import grpc
import httpx
import pytest
from msgspec.structs import replace
from redis.asyncio import Redis

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev.replica import StreamingPair, streaming_replica
from photovault_server.adapters.migrations import migrate
from photovault_server.adapters.read_router import UNKNOWN_LSN, ReadRouter, RoutedPhotoRepository
from photovault_server.adapters.redis_write_marks import RedisWriteMarks, write_mark_key
from photovault_server.app import App, open_app
from photovault_server.core.models import PhotoFilter, PhotoOrder, PhotoQuery
from photovault_server.server import running_grpc_server

from .support.grpc_status import call_error
from .support.images import jpeg, png
from .support.settings import make_settings
from .support.users import User, new_user, upload_photo

# Longer than any test: a paused replica is "behind", never "too far behind", unless a test
# says otherwise with a router of its own.
GENEROUS_LAG_MS = 600_000
CATCH_UP_DEADLINE = 60.0


@pytest.fixture(scope="module")
async def pair() -> AsyncIterator[StreamingPair]:
    with streaming_replica() as pair:
        conn = await asyncpg.connect(pair.primary_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        await caught_up(pair)
        yield pair


async def caught_up(pair: StreamingPair) -> None:
    """Waits until the replica has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(pair.primary_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    finally:
        await primary.close()
    deadline = time.monotonic() + CATCH_UP_DEADLINE
    while True:
        try:
            replica = await asyncpg.connect(pair.replica_url)
            try:
                if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                    return
            finally:
                await replica.close()
        except (OSError, asyncpg.PostgresError):
            pass  # still starting
        assert time.monotonic() < deadline, "the replica did not catch up"
        await asyncio.sleep(0.05)


async def on_replica(pair: StreamingPair, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(pair.replica_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def on_primary(pair: StreamingPair, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(pair.primary_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@dataclass
class Served:
    app: App
    stub: pb_grpc.PhotoServiceAsyncStub

    @property
    def router(self) -> ReadRouter:
        assert self.app.read_router is not None
        return self.app.read_router

    def reads(self, target: str, reason: str) -> int:
        return self.router.stats.reads[target, reason]  # type: ignore[index]


@pytest.fixture(scope="module")
async def served(pair: StreamingPair, redis_url: str, aws_env: None) -> AsyncIterator[Served]:
    settings = make_settings(
        pair.primary_url,
        redis_url,
        DATABASE_READ_URL=pair.replica_url,
        PHOTOVAULT_DB_READ_MAX_LAG_MS=GENEROUS_LAG_MS,
    )
    async with (
        open_app(settings) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield Served(app, pb_grpc.PhotoServiceStub(channel))


@pytest.fixture
async def resumed(pair: StreamingPair) -> AsyncIterator[None]:
    """The replica running and replaying after the test, whatever the test did to it."""
    yield
    if pair.replica.proc is None:
        pair.start_replica()
    await on_replica(pair, "SELECT pg_wal_replay_resume()")


async def listed(served: Served, user: User) -> list[str]:
    page = await served.stub.ListPhotos(pb.ListPhotosRequest(page_size=50), metadata=user.metadata)
    return [p.id for p in page.photos]


async def test_a_paused_replica_never_shows_its_owner_a_deleted_photo_yet_serves_others(
    pair: StreamingPair, served: Served, http: httpx.AsyncClient, resumed: None
) -> None:
    owner, other = new_user(), new_user()
    kept = await upload_photo(served.stub, http, owner, jpeg(), title="kept")
    doomed = await upload_photo(
        served.stub, http, owner, png(), content_type="image/png", file_name="d.png"
    )
    theirs = await upload_photo(served.stub, http, other, jpeg(), title="before")
    await caught_up(pair)
    assert await served.router.check() == "ok"

    # Caught up: the owner's marks are replayed, so even the writer reads from the replica.
    on_replica_before = served.reads("replica", "replica")
    assert set(await listed(served, owner)) == {kept.id, doomed.id}
    assert served.reads("replica", "replica") == on_replica_before + 1

    await on_replica(pair, "SELECT pg_wal_replay_pause()")
    await served.stub.DeletePhoto(pb.DeletePhotoRequest(id=doomed.id), metadata=owner.metadata)
    # Changed on the primary behind the service's back: no mark, only the primary has it.
    await on_primary(pair, "UPDATE photos SET title = 'after' WHERE id = $1::uuid", theirs.id)
    # The replica really is behind: the deleted photo is still there.
    assert await on_replica(pair, "SELECT count(*) FROM photos WHERE id = $1::uuid", doomed.id)
    await served.router.check()  # a fresh verdict: still within the (generous) lag bound

    ryw_before = served.reads("primary", "read_your_writes")
    for _ in range(3):
        assert await listed(served, owner) == [kept.id]
        error = await call_error(
            served.stub.GetPhoto(pb.GetPhotoRequest(id=doomed.id), metadata=owner.metadata)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
    assert served.reads("primary", "read_your_writes") == ryw_before + 6

    # The other user's reads go to the replica: they see the row as it was before.
    on_replica_before = served.reads("replica", "replica")
    got = await served.stub.GetPhoto(pb.GetPhotoRequest(id=theirs.id), metadata=other.metadata)
    assert got.photo.title == "before"
    assert served.reads("replica", "replica") == on_replica_before + 1

    await on_replica(pair, "SELECT pg_wal_replay_resume()")
    await caught_up(pair)
    await served.router.check()
    got = await served.stub.GetPhoto(pb.GetPhotoRequest(id=theirs.id), metadata=other.metadata)
    assert got.photo.title == "after"
    # Replayed past the owner's mark: back on the replica, which now agrees.
    on_replica_before = served.reads("replica", "replica")
    assert await listed(served, owner) == [kept.id]
    assert served.reads("replica", "replica") == on_replica_before + 1


async def test_an_album_edit_keeps_its_owners_album_listing_off_a_paused_replica(
    pair: StreamingPair, served: Served, http: httpx.AsyncClient, resumed: None
) -> None:
    """ListPhotos(album_id) may go to the replica; adding or removing photos is a write it must
    see (albums live on the primary, their memberships decide the listing)."""
    owner = new_user()
    first = await upload_photo(served.stub, http, owner, jpeg(), title="first")
    second = await upload_photo(served.stub, http, owner, jpeg(), title="second")
    album = (
        await served.stub.CreateAlbum(pb.CreateAlbumRequest(title="trip"), metadata=owner.metadata)
    ).album
    await served.stub.AddAlbumPhotos(
        pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=[first.id]), metadata=owner.metadata
    )
    await caught_up(pair)
    await served.router.check()

    async def in_album() -> set[str]:
        page = await served.stub.ListPhotos(
            pb.ListPhotosRequest(album_id=album.id), metadata=owner.metadata
        )
        return {p.id for p in page.photos}

    await on_replica(pair, "SELECT pg_wal_replay_pause()")
    await served.stub.AddAlbumPhotos(
        pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=[second.id]), metadata=owner.metadata
    )
    await served.stub.RemoveAlbumPhotos(
        pb.RemoveAlbumPhotosRequest(album_id=album.id, photo_ids=[first.id]),
        metadata=owner.metadata,
    )
    # The replica still has the old membership; the owner is shown the new one.
    assert await on_replica(
        pair, "SELECT count(*) FROM album_photos WHERE photo_id = $1::uuid", first.id
    )
    await served.router.check()
    ryw_before = served.reads("primary", "read_your_writes")
    assert await in_album() == {second.id}
    assert served.reads("primary", "read_your_writes") == ryw_before + 1


async def test_a_write_on_one_process_keeps_the_writers_reads_on_another_off_the_replica(
    pair: StreamingPair, served: Served, redis_url: str, http: httpx.AsyncClient, resumed: None
) -> None:
    """The fleet: the delete goes to one process, the next listing to another (as behind a
    balancer, or two Lambda environments); the mark they share in Redis is what keeps the
    second one off the stale replica."""
    settings = make_settings(
        pair.primary_url,
        redis_url,
        DATABASE_READ_URL=pair.replica_url,
        PHOTOVAULT_DB_READ_MAX_LAG_MS=GENEROUS_LAG_MS,
    )
    async with (
        open_app(settings) as other_app,
        running_grpc_server(other_app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        elsewhere = Served(other_app, pb_grpc.PhotoServiceStub(channel))
        owner = new_user()
        kept = await upload_photo(served.stub, http, owner, jpeg())
        doomed = await upload_photo(served.stub, http, owner, png(), content_type="image/png")
        await caught_up(pair)
        assert await elsewhere.router.check() == "ok"
        assert set(await listed(elsewhere, owner)) == {kept.id, doomed.id}
        assert elsewhere.reads("replica", "replica") == 1

        await on_replica(pair, "SELECT pg_wal_replay_pause()")
        await served.stub.DeletePhoto(pb.DeletePhotoRequest(id=doomed.id), metadata=owner.metadata)
        assert await listed(elsewhere, owner) == [kept.id]
        assert elsewhere.reads("primary", "read_your_writes") == 1


async def test_calls_succeed_on_the_primary_while_the_replica_is_down_and_it_serves_again(
    pair: StreamingPair, served: Served, http: httpx.AsyncClient, resumed: None
) -> None:
    user = new_user()
    photo = await upload_photo(served.stub, http, user, jpeg(), title="up")
    await caught_up(pair)
    await served.router.check()
    assert await listed(served, user) == [photo.id]

    pair.stop_replica()
    unavailable_before = served.reads("primary", "replica_unavailable")
    # The first read finds the replica gone mid-call and runs again on the primary; the next
    # ones go to the primary straight away.
    for _ in range(3):
        assert await listed(served, user) == [photo.id]
        got = await served.stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=user.metadata)
        assert got.photo.title == "up"
    assert served.reads("primary", "replica_unavailable") == unavailable_before + 6
    assert served.router.health == "down"
    assert await served.router.check() == "down"
    # Writes never needed it.
    second = await upload_photo(served.stub, http, user, png(), content_type="image/png")
    assert set(await listed(served, user)) == {photo.id, second.id}

    pair.start_replica()
    await caught_up(pair)
    assert await served.router.check() == "ok"
    on_replica_before = served.reads("replica", "replica")
    assert set(await listed(served, user)) == {photo.id, second.id}
    assert served.reads("replica", "replica") == on_replica_before + 1


@pytest.fixture
async def pools(pair: StreamingPair) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    async with (
        asyncpg.create_pool(pair.primary_url, min_size=0, max_size=2) as primary,
        asyncpg.create_pool(pair.replica_url, min_size=0, max_size=2) as replica,
    ):
        yield primary, replica


async def test_a_replica_lagging_past_the_bound_serves_nobody_until_it_catches_up(
    pair: StreamingPair, pools: tuple[asyncpg.Pool, asyncpg.Pool], resumed: None
) -> None:
    router = ReadRouter(*pools, max_lag=timedelta(milliseconds=500))
    await on_primary(pair, "CREATE TABLE IF NOT EXISTS lag_probe (n int)")
    await on_primary(pair, "INSERT INTO lag_probe VALUES (1)")
    await caught_up(pair)
    assert await router.check() == "ok"
    assert await router.route("anyone") == "replica"

    await on_replica(pair, "SELECT pg_wal_replay_pause()")
    # The last commit the replica replayed is now at least a second older than the primary's
    # clock, and the primary has a commit it has not: a lag of a second or more, by the
    # primary's own clock (no timing on our side).
    await on_primary(pair, "SELECT pg_sleep(1)")
    await on_primary(pair, "INSERT INTO lag_probe VALUES (2)")
    assert await router.check() == "lagging"
    assert await router.route("anyone") == "replica_lagging"
    lag = router.stats.lag_seconds
    assert lag is not None
    assert lag >= 1.0

    await on_replica(pair, "SELECT pg_wal_replay_resume()")
    await caught_up(pair)
    # Caught up with what the primary had when asked: no lag (the primary may have written a
    # little WAL of its own since, hence the wait rather than one check).
    deadline = time.monotonic() + CATCH_UP_DEADLINE
    while await router.check() != "ok":
        assert time.monotonic() < deadline, "the replica was never found caught up"
        await asyncio.sleep(0.05)
    assert await router.route("anyone") == "replica"


async def test_a_read_checks_the_mark_again_on_the_replica_it_reaches(
    pair: StreamingPair,
    served: Served,
    pools: tuple[asyncpg.Pool, asyncpg.Pool],
    http: httpx.AsyncClient,
    resumed: None,
) -> None:
    """Behind an endpoint balancing over several replicas, the router's last check may have
    reached one further ahead than the one a read reaches: the read checks the writer's mark
    on its own server, in its own transaction, and goes to the primary when it is missing."""
    owner, other = new_user(), new_user()
    photo = await upload_photo(served.stub, http, owner, jpeg())
    photo_id = UUID(photo.id)
    await caught_up(pair)
    router = ReadRouter(*pools, check_interval=timedelta(hours=1))
    repo = RoutedPhotoRepository(router)
    assert await router.check() == "ok"

    await on_replica(pair, "SELECT pg_wal_replay_pause()")
    assert await repo.delete_photo(owner.id, photo_id, upload_window=timedelta(minutes=15))
    # As if the last check had reached another replica, past the delete already.
    router._replayed = UNKNOWN_LSN - 1
    assert await router.route(owner.id) == "replica"
    assert await repo.get_photo(owner.id, photo_id) is None
    assert router.stats.reads["primary", "read_your_writes"] == 1
    assert await on_replica(pair, "SELECT count(*) FROM photos WHERE id = $1", photo_id) == 1

    # Users without a mark read the replica with no check at all.
    listing = PhotoQuery(owner.id, PhotoFilter(), PhotoOrder.NEWEST_FIRST, limit=10)
    assert await repo.list_photos(replace(listing, owner_id=other.id)) == []
    assert router.stats.reads["replica", "replica"] == 1

    # Replayed on the server the read reaches: served there.
    await on_replica(pair, "SELECT pg_wal_replay_resume()")
    await caught_up(pair)
    assert await repo.list_photos(listing) == []
    assert router.stats.reads["replica", "replica"] == 2


async def test_a_write_mark_is_seen_by_every_process_through_redis(
    pair: StreamingPair, pools: tuple[asyncpg.Pool, asyncpg.Pool], redis_url: str, resumed: None
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        writer = ReadRouter(*pools, marks=RedisWriteMarks(redis, timeout=timedelta(seconds=1)))
        reader = ReadRouter(*pools, marks=RedisWriteMarks(redis, timeout=timedelta(seconds=1)))
        await caught_up(pair)
        assert await reader.check() == "ok"
        user = new_user().id
        assert await reader.route(user) == "replica"

        await on_replica(pair, "SELECT pg_wal_replay_pause()")
        await on_primary(pair, "CREATE TABLE IF NOT EXISTS lag_probe (n int)")
        await on_primary(pair, "INSERT INTO lag_probe VALUES (2)")
        await writer.wrote([user])  # the write happened in another process
        await reader.check()
        assert await reader.route(user) == "read_your_writes"
        assert await reader.route(new_user().id) == "replica"

        await on_replica(pair, "SELECT pg_wal_replay_resume()")
        await caught_up(pair)
        await reader.check()
        assert await reader.route(user) == "replica"  # replayed past the mark
    finally:
        await redis.aclose()


async def test_unreadable_marks_send_the_read_to_the_primary(
    pair: StreamingPair, pools: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    nowhere = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        marks = RedisWriteMarks(nowhere)
        router = ReadRouter(*pools, marks=marks)
        await caught_up(pair)
        assert await router.check() == "ok"
        for _ in range(5):
            assert await router.route(new_user().id) == "marks_unreadable"
        # After three failures in a row Redis is not asked for a while: no timeout per read.
        assert marks.breaker.state == "open"
    finally:
        await nowhere.aclose()


async def test_a_replica_without_replay_serves_those_who_did_not_write(
    pair: StreamingPair, pools: tuple[asyncpg.Pool, asyncpg.Pool]
) -> None:
    # The primary as its own "replica": it reports no replay position, as an Aurora reader.
    primary, _ = pools
    router = ReadRouter(primary, primary)
    assert await router.check() == "ok"
    assert router.stats.lag_seconds is None
    writer, reader = new_user().id, new_user().id
    await router.wrote([writer])
    assert await router.route(writer) == "read_your_writes"
    assert await router.route(reader) == "replica"


async def test_a_mark_only_ever_rises_and_always_expires(redis_url: str) -> None:
    """Two writes' marks arriving out of order keep the later LSN; every mark expires."""
    redis = Redis.from_url(redis_url)
    try:
        marks = RedisWriteMarks(redis, timeout=timedelta(seconds=1))
        user = new_user().id
        assert await marks.get(user) is None
        await marks.put(user, 0x2_0000_0010, timedelta(seconds=30))
        await marks.put(user, 0x1_FFFF_FFFF, timedelta(seconds=60))
        assert await marks.get(user) == 0x2_0000_0010
        assert 30_000 < await redis.pttl(write_mark_key(user)) <= 60_000  # life renewed
        await marks.put(user, 0x2_0000_0011, timedelta(seconds=10))
        assert await marks.get(user) == 0x2_0000_0011
        assert 0 < await redis.pttl(write_mark_key(user)) <= 10_000  # a later mark: its own life
    finally:
        await redis.aclose()
