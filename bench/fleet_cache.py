"""The URL cache as a fleet uses it, measured in one run:

- a warm page of 100 through a real Redis Cluster (six nodes on loopback, started here) against
  the same page through a standalone Redis, the in-process tier off in both, calls interleaved;
- signatures per 1,000 listings spread over a simulated day (fake clock) by a fleet of three
  processes, each signing with credentials of its own and sharing one Redis, against one
  process doing all 1,000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from photovault_dev.redis_cluster import redis_cluster
from photovault_server.app import App, open_app

from .list_photos import (
    PAGE,
    REDIS_URL,
    USER,
    Latency,
    Variant,
    bench_settings,
    prepare_database,
    stub_for,
    time_interleaved,
)

STANDALONE = "warm Redis, standalone"
CLUSTER = "warm Redis Cluster (3 masters, 3 replicas)"
FLEET_SIZE = 3


@dataclass(frozen=True)
class FleetResults:
    latencies: list[Latency]
    listings: int
    signatures_one_process: int
    signatures_fleet: int


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def signatures_per_day(apps: Sequence[App], listings: int) -> int:
    """Signatures made by `apps` (round robin) for `listings` listings of the page over 24 h."""
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    clock = _Clock(datetime.now(UTC))
    step = timedelta(days=1) / listings
    services = [app.build_service(clock=clock) for app in apps]
    for n in range(listings):
        await services[n % len(services)].list_photos(USER, page_size=PAGE)
        clock.now += step
    return sum(service.url_stats.signatures for service in services)


async def measure(iterations: int = 300, listings: int = 1000) -> FleetResults:
    await prepare_database()
    with redis_cluster() as cluster:
        async with (
            open_app(bench_settings(PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0)) as standalone,
            open_app(
                bench_settings(
                    PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0,
                    PHOTOVAULT_REDIS_MODE="cluster",
                    REDIS_URL=cluster.url,
                )
            ) as clustered,
            AsyncExitStack() as stubs,
        ):
            variants: list[Variant] = [
                (STANDALONE, await stubs.enter_async_context(stub_for(standalone)), None),
                (CLUSTER, await stubs.enter_async_context(stub_for(clustered)), None),
            ]
            latencies = await time_interleaved(variants, iterations)
    async with AsyncExitStack() as stack:
        fleet = [
            await stack.enter_async_context(
                open_app(
                    bench_settings(
                        # The simulated day runs on a fake clock; the in-process tier evicts by
                        # the wall clock, so it would hand the core entries from past windows.
                        PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0,
                        AWS_ACCESS_KEY_ID=f"AKIDFLEET{i:011d}",
                        AWS_SECRET_ACCESS_KEY=f"fleet-secret-{i}",
                        AWS_SESSION_TOKEN=f"fleet-session-{i}",
                    )
                )
            )
            for i in range(FLEET_SIZE)
        ]
        one = await signatures_per_day(fleet[:1], listings)
        many = await signatures_per_day(fleet, listings)
    return FleetResults(latencies, listings, one, many)


def report(results: FleetResults) -> None:
    by_name = {lat.name: lat for lat in results.latencies}
    base = by_name[STANDALONE].p50
    for lat in results.latencies:
        print(
            f"{lat.name:46s} p50 {lat.p50:7.2f} ms  p95 {lat.p95:7.2f} ms  "
            f"{lat.p50 / base:5.2f}x standalone"
        )
    print(
        f"signatures for {results.listings} listings of {PAGE} over a simulated day: "
        f"one process {results.signatures_one_process}, a fleet of {FLEET_SIZE} "
        f"{results.signatures_fleet} "
        f"({results.signatures_fleet / results.signatures_one_process:.2f}x)"
    )


if __name__ == "__main__":
    report(asyncio.run(measure()))
