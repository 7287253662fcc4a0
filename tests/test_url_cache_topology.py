"""The URL cache on the topologies it runs on in production, all real servers started here: a
Redis Cluster of six nodes (3 masters, 3 replicas), a master killed under load, a slot that no
master covers, TLS with a CA made by the test and an ACL user in both modes, and a Redis that
restarts empty while the in-process tier holds every entry."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev.redis_cluster import AclUser, RedisClusterNodes, redis_cluster, redis_standalone
from photovault_dev.tls import TlsFiles, make_tls_files
from photovault_server.app import App, open_app
from photovault_server.core.models import Visibility
from photovault_server.core.urls import cache_key
from photovault_server.server import running_grpc_server

from .support.listing import seed
from .support.redis_server import redis_server
from .support.settings import make_settings
from .support.users import User, new_user

PAGE = 20


@asynccontextmanager
async def serve(
    database_url: str, redis_url: str, **overrides: object
) -> AsyncIterator[tuple[App, pb_grpc.PhotoServiceAsyncStub]]:
    settings = make_settings(database_url, redis_url, **overrides)
    async with (
        open_app(settings) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield app, pb_grpc.PhotoServiceStub(channel)


async def list_urls(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> list[str]:
    response = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=PAGE), metadata=user.metadata, timeout=10
    )
    return [p.url for p in response.photos]


async def private_user(app: App) -> User:
    user = new_user()
    await seed(app, user, PAGE, visibility=Visibility.PRIVATE)
    return user


def counters(app: App) -> tuple[int, int]:
    stats = app.service.url_stats
    return stats.hits, stats.misses


@asynccontextmanager
async def own_cluster(
    database_url: str,
) -> AsyncIterator[tuple[RedisClusterNodes, App, pb_grpc.PhotoServiceAsyncStub]]:
    """A cluster of the test's own (it kills or breaks nodes) and a server on it."""
    with redis_cluster() as nodes:
        async with serve(database_url, nodes.url, PHOTOVAULT_REDIS_MODE="cluster") as (
            app,
            stub,
        ):
            yield nodes, app, stub


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterNodes]:
    with redis_cluster() as nodes:
        yield nodes


@pytest.fixture(scope="module")
def tls_files() -> Iterator[TlsFiles]:
    with tempfile.TemporaryDirectory(prefix="pv-tls-") as directory:
        yield make_tls_files(Path(directory))


async def test_a_cluster_page_is_one_read_and_one_write(
    database_url: str, aws_env: None, cluster: RedisClusterNodes
) -> None:
    async with serve(database_url, cluster.url, PHOTOVAULT_REDIS_MODE="cluster") as (app, stub):
        user = await private_user(app)
        cache = app.redis_cache
        assert cache is not None
        trips = cache.stats.round_trips
        first = await list_urls(stub, user)
        assert cache.stats.round_trips - trips == 2  # MGET, then one pipelined SET NX GET
        hits = counters(app)[0]
        trips = cache.stats.round_trips
        assert await list_urls(stub, user) == first
        assert cache.stats.round_trips - trips == 1
        assert counters(app)[0] - hits == PAGE
        assert cache.stats.errors == 0
        # Every key of the page on one master: the hash tag.
        scope = await app.backends.store.url_scope()
        page = await app.service.list_photos(user.id, page_size=PAGE)
        keys = {cache_key(scope, served.photo) for served in page.photos}
    assert len(keys) == PAGE
    assert len({cluster.master_of(key) for key in keys}) == 1


async def test_a_master_killed_under_load_fails_no_call_and_hits_resume(
    database_url: str, aws_env: None
) -> None:
    async with own_cluster(database_url) as (nodes, app, stub):
        users = [await private_user(app) for _ in range(6)]
        expected = {u.id: await list_urls(stub, u) for u in users}
        scope = await app.backends.store.url_scope()
        page = await app.service.list_photos(users[0].id, page_size=PAGE)
        victim = nodes.master_of(cache_key(scope, page.photos[0].photo))
        failures: list[BaseException] = []
        stop = asyncio.Event()

        async def load(user: User) -> None:
            while not stop.is_set():
                try:
                    assert await list_urls(stub, user) == expected[user.id]
                except Exception as exc:  # counted, and shown below
                    failures.append(exc)
                await asyncio.sleep(0.005)

        workers = [asyncio.create_task(load(u)) for u in users]
        await asyncio.sleep(0.3)
        nodes.kill(victim)
        survivors = [p for p in nodes.ports if p != victim]
        await asyncio.to_thread(nodes.wait_ok, 30.0, survivors)
        # Hits resume for the victim's keys once the replica serves them.
        hits_before, _ = counters(app)
        for _ in range(200):
            await asyncio.sleep(0.05)
            before = counters(app)[0]
            await list_urls(stub, users[0])
            if counters(app)[0] - before == PAGE:
                break
        else:
            pytest.fail(f"no hits after the failover: {app.redis_cache}")
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert counters(app)[0] > hits_before


async def test_a_slot_no_master_covers_fails_open_for_its_keys_only(
    database_url: str, aws_env: None
) -> None:
    async with own_cluster(database_url) as (nodes, app, stub):
        scope = await app.backends.store.url_scope()
        lost, kept = await private_user(app), await private_user(app)
        lost_page = await app.service.list_photos(lost.id, page_size=PAGE)
        kept_page = await app.service.list_photos(kept.id, page_size=PAGE)
        lost_key = cache_key(scope, lost_page.photos[0].photo)
        kept_key = cache_key(scope, kept_page.photos[0].photo)
        slot = int(nodes.cli(nodes.ports[0], "cluster", "keyslot", lost_key))
        assert slot != int(nodes.cli(nodes.ports[0], "cluster", "keyslot", kept_key))
        cache = app.redis_cache
        assert cache is not None
        old_owner = cache.topology.shard_of(lost_key)
        for port in nodes.running():
            nodes.cli(port, "cluster", "delslots", str(slot))
        expected_lost = await list_urls(stub, lost)
        # Until the slot map is refreshed (in the background) and the kept keys are back.
        for _ in range(50):
            assert await list_urls(stub, lost) == expected_lost
            hits = counters(app)[0]
            await list_urls(stub, kept)
            if counters(app)[0] - hits == PAGE:
                break
            await asyncio.sleep(0.1)
        for _ in range(5):
            hits = counters(app)[0]
            assert await list_urls(stub, lost) == expected_lost  # signed afresh, same bytes
            assert counters(app)[0] == hits  # no hit: its slot has no master
            await list_urls(stub, kept)
            assert counters(app)[0] - hits == PAGE  # the other keys still hit
        # Until the map is refreshed, the slot's old master answers CLUSTERDOWN, which redis-py
        # meets with a 250 ms sleep that the cache's bound cuts: that master's breaker may open
        # too (and stays half-open until one of its other keys is asked for). Nothing else may.
        open_shards = set(cache.breaker.open_shards())
        assert open_shards <= {f"slot {slot}", old_owner}
        assert cache.topology.shard_of(kept_key) not in open_shards


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
async def test_tls_and_an_acl_user_in_both_modes(
    database_url: str, aws_env: None, tls_files: TlsFiles, mode: str
) -> None:
    user = AclUser("photovault", "cache-user-password")
    servers = redis_cluster if mode == "cluster" else redis_standalone
    with servers(tls=tls_files, user=user) as nodes:
        assert nodes.url.startswith("rediss://photovault:")
        # TLS handshakes to six nodes on a loaded machine: a bound above the default 50 ms.
        async with serve(
            database_url, nodes.url, PHOTOVAULT_REDIS_MODE=mode, PHOTOVAULT_REDIS_TIMEOUT_MS=500
        ) as (app, stub):
            owner = await private_user(app)
            first = await list_urls(stub, owner)
            # Under load the cluster's slot map may still be coming (over TLS, from six nodes):
            # calls meanwhile are answered as misses. Hits must come, and stay.
            for _ in range(100):
                hits = counters(app)[0]
                assert await list_urls(stub, owner) == first
                if counters(app)[0] - hits == PAGE:
                    break
                await asyncio.sleep(0.1)
            hits = counters(app)[0]
            assert await list_urls(stub, owner) == first
            assert counters(app)[0] - hits == PAGE
        # The ACL holds: the service's user reaches the cache's keys and nothing else.
        client = Redis(
            host="127.0.0.1",
            port=nodes.ports[0],
            username=user.name,
            password=user.password,
            ssl=True,
            ssl_ca_certs=str(tls_files.ca_file),
        )
        try:
            with pytest.raises(NoPermissionError):
                await client.set("{other}:key", "x")
        finally:
            await client.aclose()


async def test_a_redis_restarted_empty_is_repopulated_by_traffic(
    database_url: str, aws_env: None
) -> None:
    """The in-process tier holds every entry, yet Redis gets them back: the tier asks Redis
    again after PHOTOVAULT_LOCAL_URL_CACHE_SECONDS, Redis misses, and the entry is written
    back (signed again in the same window: the same bytes)."""
    with redis_server() as server:
        async with serve(
            database_url,
            server.url,
            PHOTOVAULT_LOCAL_URL_CACHE_SIZE=10_000,
            PHOTOVAULT_LOCAL_URL_CACHE_SECONDS=1,
        ) as (app, stub):
            owner = await private_user(app)
            expected = await list_urls(stub, owner)
            server.stop()
            server.start()  # empty: no persistence
            redis = Redis.from_url(server.url)
            try:
                assert await redis.dbsize() == 0
                await asyncio.sleep(1.2)  # the tier's entries are past their local lifetime
                for _ in range(30):  # the breaker may hold Redis off for its cool-down
                    assert await list_urls(stub, owner) == expected
                    if await redis.dbsize() >= PAGE:
                        break
                    await asyncio.sleep(0.2)
                assert await redis.dbsize() >= PAGE
            finally:
                await redis.aclose()
