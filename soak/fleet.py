"""`make soak`'s fleet mode: three `photovault serve` processes, each signing with credentials
of its own (as role credentials give every Lambda environment, pod or task), share one Redis,
one Postgres and one bucket; clients are spread over them for SOAK_FLEET_SECONDS. Figures: the
fleet's URL cache hit ratio after the first listings, signatures made against photos listed,
and whether a photo's URL is byte-identical whichever process hands it out."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass

from photovault.v1 import photo_service_pb2 as pb

from .clients import NativeTransport, Recorder, make_clients, seed
from .infra import Service, phase_backends

PROCESSES = 3


@dataclass(frozen=True)
class FleetConfig:
    seconds: float = float(os.environ.get("SOAK_FLEET_SECONDS", "20"))
    # Users; each is served by a client on every process, so that the processes list the
    # same photos and any hit may be on another process's entry.
    users: int = int(os.environ.get("SOAK_FLEET_USERS", "10"))
    photos_each: int = int(os.environ.get("SOAK_SEED_PHOTOS", "3"))


@dataclass(frozen=True)
class FleetFigures:
    config: FleetConfig
    calls: int
    failed_calls: int
    hits: float
    misses: float
    signatures: float
    photos: int
    identical_pages: int
    compared_pages: int

    @property
    def all_met(self) -> bool:
        return self.failed_calls == 0 and self.identical_pages == self.compared_pages

    @property
    def hit_ratio(self) -> float:
        return self.hits / max(self.hits + self.misses, 1)

    def lines(self) -> list[str]:
        c = self.config
        return [
            "## Fleet mode: three processes, three sets of credentials, one cache",
            "",
            f"{PROCESSES} `photovault serve` processes, each with an access key and session "
            f"token of its own, one Redis (SOAK_FLEET_SECONDS={c.seconds:g}, "
            f"SOAK_FLEET_USERS={c.users}, each user calling through every process; "
            "the in-process tier on, as by default).",
            "",
            "| figure | value |",
            "|---|---:|",
            f"| calls (failed) | {self.calls:,} ({self.failed_calls}) |",
            f"| URL cache hit ratio across the fleet | {self.hit_ratio:.1%} |",
            f"| signatures / photos in the listings | {self.signatures:,.0f} / {self.photos} |",
            f"| pages byte-identical from every process | {self.identical_pages} of "
            f"{self.compared_pages} |",
            "",
        ]


async def fleet_soak(config: FleetConfig) -> FleetFigures:
    run_id = uuid.uuid4().hex[:8]
    async with phase_backends("pv-soak-fleet-") as backends:
        services: list[Service] = []
        try:
            for i in range(PROCESSES):
                services.append(
                    await asyncio.to_thread(
                        backends.service,
                        f"serve-{i}.log",
                        extra_env={
                            "AWS_ACCESS_KEY_ID": f"SOAKFLEET{i:011d}",
                            "AWS_SECRET_ACCESS_KEY": f"soak-fleet-secret-{i}",
                            "AWS_SESSION_TOKEN": f"soak-fleet-session-{i}",
                        },
                    )
                )
            return await _load(config, services, run_id)
        finally:
            for service in services:
                service.stop()


async def _load(config: FleetConfig, services: list[Service], run_id: str) -> FleetFigures:
    recorder = Recorder()
    groups = [
        await make_clients(config.users, s.grpc_port, s.http_port, recorder, run_id)
        for s in services
    ]
    clients = [client for group in groups for client in group]
    await seed(groups[0], config.photos_each)
    before = [await asyncio.to_thread(s.metrics) for s in services]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    await asyncio.sleep(config.seconds)
    stop.set()
    await asyncio.gather(*tasks)
    after = [await asyncio.to_thread(s.metrics) for s in services]

    def total(name: str) -> float:
        return sum(a.get(name, 0.0) - b.get(name, 0.0) for a, b in zip(after, before, strict=True))

    identical = compared = photos = 0
    for client in groups[0]:
        pages = []
        for service in services:
            transport = NativeTransport(service.grpc_port, client.token)
            try:
                reply = await transport.call(
                    "ListPhotos", pb.ListPhotosRequest(page_size=100), pb.ListPhotosResponse
                )
            finally:
                await transport.close()
            pages.append([p.url for p in reply.photos if p.url_expire_time.seconds])
        photos += len(pages[0])
        compared += 1
        identical += all(page == pages[0] for page in pages)
    for client in clients:
        await client.transport.close()
        await client.http.aclose()
    return FleetFigures(
        config=config,
        calls=len(recorder.calls),
        failed_calls=sum(1 for c in recorder.calls if c.code != "OK"),
        hits=total("photovault_url_cache_hits_total"),
        misses=total("photovault_url_cache_misses_total"),
        signatures=total("photovault_url_signatures_total"),
        photos=photos,
        identical_pages=identical,
        compared_pages=compared,
    )
