"""One soak run: infrastructure up, clients seeded, load for SOAK_SECONDS with the fault phases
on a schedule, SIGTERM under load, then the integrity checks."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .clients import Recorder, make_clients, seed
from .infra import (
    BUCKET,
    MotoProcess,
    RedisServer,
    Service,
    admin_dsn,
    reset_database,
    s3_client,
    start_service,
)
from .probes import Integrity, Samples, check_integrity, sample, terminate_backends

DATABASE_URL = os.environ.get(
    "SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/photovault_soak"
)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Config:
    seconds: float = _env_float("SOAK_SECONDS", 60)
    clients: int = int(_env_float("SOAK_CLIENTS", 50))
    photos_each: int = int(_env_float("SOAK_SEED_PHOTOS", 3))
    faults: bool = os.environ.get("SOAK_FAULTS", "1") != "0"
    redis_at: float = _env_float("SOAK_REDIS_AT", 5)
    redis_outage: float = _env_float("SOAK_REDIS_OUTAGE", 10)
    s3_outage: float = _env_float("SOAK_S3_OUTAGE", 5)
    gap: float = _env_float("SOAK_FAULT_GAP", 5)
    pool_max: int = int(_env_float("SOAK_DB_POOL_MAX_SIZE", 10))
    local_cache: int = int(_env_float("SOAK_LOCAL_URL_CACHE_SIZE", 0))
    grace: float = _env_float("SOAK_SHUTDOWN_GRACE_SECONDS", 5)
    after_sigterm: float = _env_float("SOAK_AFTER_SIGTERM", 2)


@dataclass(frozen=True)
class Window:
    name: str
    start: float
    end: float  # the fault's end (restart), monotonic seconds


@dataclass
class Result:
    config: Config
    load_start: float = 0.0
    load_end: float = 0.0  # SIGTERM sent
    recorder: Recorder = field(default_factory=Recorder)
    seed_errors: int = 0
    samples: Samples = field(default_factory=Samples)
    windows: list[Window] = field(default_factory=list)
    redis_hits: dict[str, float] = field(default_factory=dict)
    redis_breaker_closed_at_end: bool | None = None
    pg_terminated: int = 0
    sigterm_at: float = 0.0
    exit_code: int | None = None
    exit_seconds: float | None = None
    integrity: Integrity | None = None
    s3_head_while_down: str = ""
    log_tail: str = ""


def _hits(service: Service) -> float:
    return service.metrics().get("photovault_url_cache_hits_total", float("nan"))


async def _faults(
    config: Config, result: Result, redis: RedisServer, moto: MotoProcess, service: Service
) -> None:
    loop = asyncio.get_running_loop()
    t0 = result.load_start

    async def until(offset: float) -> None:
        await asyncio.sleep(max(0.0, t0 + offset - loop.time()))

    # Redis: stopped, restarted on the same port (empty), hits must resume.
    await until(config.redis_at)
    result.redis_hits["before stop"] = await asyncio.to_thread(_hits, service)
    start = loop.time()
    await asyncio.to_thread(redis.stop)
    await asyncio.sleep(config.redis_outage)
    result.redis_hits["at restart"] = await asyncio.to_thread(_hits, service)
    await asyncio.to_thread(redis.start)
    result.windows.append(Window("redis", start, loop.time()))
    await asyncio.sleep(config.gap)
    result.redis_hits[f"{config.gap:g} s after restart"] = await asyncio.to_thread(_hits, service)

    # S3: moto stopped and restarted on the same port (objects kept: moto's state is in its
    # process, only its HTTP server stops).
    start = loop.time()
    await asyncio.to_thread(moto.stop)
    await asyncio.sleep(config.s3_outage)
    await asyncio.to_thread(moto.start)
    result.windows.append(Window("s3", start, loop.time()))
    await asyncio.sleep(config.gap)

    # Postgres: the server's backends terminated, as a restart of the cluster would.
    start = loop.time()
    result.pg_terminated = await terminate_backends(
        admin_dsn(DATABASE_URL), DATABASE_URL.rpartition("/")[2]
    )
    result.windows.append(Window("postgres", start, loop.time()))


async def soak(config: Config) -> Result:
    result = Result(config)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="pv-soak-") as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir)
        moto = MotoProcess()
        service: Service | None = None
        try:
            await asyncio.to_thread(redis.start)
            await asyncio.to_thread(moto.start)
            s3 = s3_client(moto.endpoint)
            s3.create_bucket(Bucket=BUCKET)
            await reset_database(DATABASE_URL)
            service = await asyncio.to_thread(
                start_service,
                database_url=DATABASE_URL,
                redis_url=redis.url,
                s3_endpoint=moto.endpoint,
                workdir=workdir,
                extra_env={
                    "PHOTOVAULT_DB_POOL_MAX_SIZE": str(config.pool_max),
                    "PHOTOVAULT_LOCAL_URL_CACHE_SIZE": str(config.local_cache),
                    "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS": str(config.grace),
                },
            )
            await _run(config, result, run_id, redis, moto, service)
            result.integrity = await check_integrity(DATABASE_URL, s3, BUCKET)
        finally:
            if service is not None:
                result.log_tail = service.log_path.read_text(errors="replace")[-4000:]
                service.stop()
            moto.close()
            redis.stop()
    return result


async def _run(
    config: Config,
    result: Result,
    run_id: str,
    redis: RedisServer,
    moto: MotoProcess,
    service: Service,
) -> None:
    loop = asyncio.get_running_loop()
    seeding = Recorder()
    clients = await make_clients(
        config.clients, service.grpc_port, service.http_port, seeding, run_id
    )
    await seed(clients, config.photos_each)
    result.seed_errors = sum(1 for c in seeding.calls + seeding.puts if c.code != "OK")
    for client in clients:
        client.recorder = result.recorder

    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(
        sample(
            service.pid,
            admin_dsn(DATABASE_URL),
            DATABASE_URL.rpartition("/")[2],
            result.samples,
            stop_sampling,
        )
    )
    stop_clients = asyncio.Event()
    result.load_start = loop.time()
    tasks = [asyncio.create_task(c.run(stop_clients)) for c in clients]
    faults = (
        asyncio.create_task(_faults(config, result, redis, moto, service))
        if config.faults
        else None
    )
    await asyncio.sleep(config.seconds)
    if faults is not None and not faults.done():
        print("soak: the fault schedule is longer than SOAK_SECONDS; waiting for it")
    if faults is not None:
        await faults
    metrics = await asyncio.to_thread(service.metrics)
    result.redis_breaker_closed_at_end = (
        metrics.get('photovault_redis_breaker_state{state="closed"}') == 1.0
    )

    # SIGTERM under load: in-flight calls finish, new ones are refused, exit 0.
    result.load_end = result.sigterm_at = loop.time()
    started = time.monotonic()
    service.sigterm()
    code = await asyncio.to_thread(service.proc.wait, config.grace + 30)
    result.exit_seconds = time.monotonic() - started
    result.exit_code = code
    await asyncio.sleep(config.after_sigterm)
    stop_clients.set()
    await asyncio.gather(*tasks)
    stop_sampling.set()
    await sampler
    for client in clients:
        await client.transport.close()
        await client.http.aclose()
