"""The URL cache serves the fleet: three `photovault serve` processes, each signing with
credentials of its own, sharing one Redis. Listings in any process hand out the URLs another
process signed, byte for byte, instead of signing their own."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from redis.asyncio import Redis

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.core.models import Visibility

from .support.fleet import serve_fleet
from .support.listing import seed
from .support.redis_server import RedisServer, redis_server
from .support.users import User, new_user

PHOTOS = 30


@pytest.fixture(scope="module")
def fleet_redis() -> Iterator[RedisServer]:
    """A Redis of this module's own: the fleet's entries are counted in it."""
    with redis_server() as server:
        yield server


async def list_urls(port: int, user: User) -> list[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = await pb_grpc.PhotoServiceStub(channel).ListPhotos(
            pb.ListPhotosRequest(page_size=PHOTOS), metadata=user.metadata, timeout=10
        )
    return [p.url for p in response.photos]


def signer(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Credential"][0].split("/")[0]


async def test_three_processes_with_their_own_credentials_share_every_url(
    app: App, database_url: str, s3_endpoint: str, aws_env: None, fleet_redis: RedisServer
) -> None:
    owner = new_user()
    await seed(app, owner, PHOTOS, visibility=Visibility.PRIVATE)
    with serve_fleet(3, database_url, fleet_redis.url, s3_endpoint) as fleet:
        first, *others = fleet
        signed = await list_urls(first.grpc_port, owner)
        assert {signer(u) for u in signed} == {first.access_key}
        pages = [await list_urls(member.grpc_port, owner) for member in others]
        assert pages == [signed, signed]  # identical across the fleet, signed by the first
        for _ in range(3):
            for member in fleet:
                assert await list_urls(member.grpc_port, owner) == signed
        metrics = [member.metrics() for member in fleet]
    redis = Redis.from_url(fleet_redis.url)
    try:
        assert len([k async for k in redis.scan_iter(match="pv:url:*")]) == PHOTOS
    finally:
        await redis.aclose()
    signatures = sum(m["photovault_url_signatures_total"] for m in metrics)
    assert signatures == PHOTOS  # the first listing's, and no other process signed any
    hits = sum(m["photovault_url_cache_hits_total"] for m in metrics)
    misses = sum(m["photovault_url_cache_misses_total"] for m in metrics)
    later = hits + misses - PHOTOS  # every listing after the first
    assert hits / later >= 0.95
    for member, sample in zip(others, metrics[1:], strict=True):
        assert sample["photovault_url_signatures_total"] == 0, member.access_key
