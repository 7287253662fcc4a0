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

from tests.support.abandon import Abandoner
from tests.support.sockets import descriptors_apart_from_backends

from .clients import Recorder, make_clients, seed
from .infra import (
    BUCKET,
    REGION,
    MotoProcess,
    PostgresServer,
    RedisServer,
    Service,
    admin_dsn,
    create_bucket,
    migrate,
    run_sweep,
    s3_client,
    service_env,
    start_service,
)
from .probes import Integrity, Samples, Sweep, check_integrity, check_sweep, sample


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
    pg_outage: float = _env_float("SOAK_PG_OUTAGE", 3)
    gap: float = _env_float("SOAK_FAULT_GAP", 5)
    pool_max: int = int(_env_float("SOAK_DB_POOL_MAX_SIZE", 10))
    local_cache: int = int(_env_float("SOAK_LOCAL_URL_CACHE_SIZE", 0))
    grace: float = _env_float("SOAK_SHUTDOWN_GRACE_SECONDS", 5)
    after_sigterm: float = _env_float("SOAK_AFTER_SIGTERM", 2)
    abandon_rounds: int = int(_env_float("SOAK_ABANDON_ROUNDS", 300))  # x 6 ways of giving up


@dataclass(frozen=True)
class Window:
    name: str
    start: float
    end: float  # the fault's end (restart), monotonic seconds


@dataclass(frozen=True)
class Runtime:
    """The server's own gauges (photovault_asyncio_tasks, its pool, process_open_fds), and
    its descriptors apart from its (pooled) connections to Postgres, Redis and S3."""

    tasks: float
    pool_open: float
    pool_idle: float
    fds: float
    other_fds: int

    @classmethod
    def of(cls, service: Service, backend_ports: set[int]) -> Runtime:
        m = service.metrics()
        return cls(
            tasks=m["photovault_asyncio_tasks"],
            pool_open=m['photovault_db_pool_connections{state="open"}'],
            pool_idle=m['photovault_db_pool_connections{state="idle"}'],
            fds=m["process_open_fds"],
            other_fds=descriptors_apart_from_backends(service.pid, backend_ports),
        )


@dataclass(frozen=True)
class Leaks:
    rounds: int
    outcomes: dict[str, int]
    before: Runtime  # after a warm-up batch, which grows the pools to their working size
    after: Runtime  # after the measured batch, settled


async def _leaks(config: Config, service: Service, token: str, backend_ports: set[int]) -> Leaks:
    """Callers giving up (tests/support/abandon.py) before the load: a warm-up batch, the
    server's gauges, a batch `config.abandon_rounds` large, the gauges again once settled."""
    await Abandoner(service.grpc_port, service.http_port, token).run(rounds=20)
    await asyncio.sleep(1)
    before = await asyncio.to_thread(Runtime.of, service, backend_ports)
    abandoner = Abandoner(service.grpc_port, service.http_port, token, seed=11)
    outcomes = await abandoner.run(rounds=config.abandon_rounds)
    after = before
    for _ in range(50):  # settled: tasks back, the pool idle, no descriptor more
        await asyncio.sleep(0.2)
        after = await asyncio.to_thread(Runtime.of, service, backend_ports)
        if (
            after.tasks <= before.tasks
            and after.pool_idle == after.pool_open
            and after.other_fds <= before.other_fds
        ):
            break
    return Leaks(config.abandon_rounds, dict(outcomes), before, after)


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
    sigterm_at: float = 0.0
    exit_code: int | None = None
    exit_seconds: float | None = None
    integrity: Integrity | None = None
    log_tail: str = ""
    leaks: Leaks | None = None
    sweep: Sweep | None = None


def _hits(service: Service) -> float:
    return service.metrics().get("photovault_url_cache_hits_total", float("nan"))


async def _faults(
    config: Config,
    result: Result,
    redis: RedisServer,
    moto: MotoProcess,
    postgres: PostgresServer,
    service: Service,
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

    # Postgres: the cluster stopped (fast shutdown ends every session) and started again on the
    # same port; the service is not restarted.
    start = loop.time()
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(config.pg_outage)
    await asyncio.to_thread(postgres.start)
    result.windows.append(Window("postgres", start, loop.time()))


async def soak(config: Config) -> Result:
    result = Result(config)
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="pv-soak-") as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir)
        moto = MotoProcess()
        postgres = PostgresServer(workdir)
        service: Service | None = None
        try:
            await asyncio.to_thread(redis.start)
            await asyncio.to_thread(moto.start)
            await asyncio.to_thread(postgres.start)
            create_bucket(moto.endpoint, BUCKET, REGION)
            s3 = s3_client(moto.endpoint)
            await migrate(postgres.url)
            service = await asyncio.to_thread(
                start_service,
                database_url=postgres.url,
                redis_url=redis.url,
                s3_endpoint=moto.endpoint,
                workdir=workdir,
                extra_env={
                    "PHOTOVAULT_DB_POOL_MAX_SIZE": str(config.pool_max),
                    "PHOTOVAULT_LOCAL_URL_CACHE_SIZE": str(config.local_cache),
                    "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS": str(config.grace),
                },
            )
            await _run(config, result, run_id, redis, moto, postgres, service)
            env = service_env(
                database_url=postgres.url,
                redis_url=redis.url,
                s3_endpoint=moto.endpoint,
                extra_env={},
            )
            result.sweep = await check_sweep(postgres.url, s3, BUCKET, lambda: run_sweep(env))
            result.integrity = await check_integrity(postgres.url, s3, BUCKET)
        finally:
            if service is not None:
                result.log_tail = service.log_path.read_text(errors="replace")[-4000:]
                service.stop()
            moto.close()
            redis.stop()
            postgres.stop()
    return result


async def _run(
    config: Config,
    result: Result,
    run_id: str,
    redis: RedisServer,
    moto: MotoProcess,
    postgres: PostgresServer,
    service: Service,
) -> None:
    loop = asyncio.get_running_loop()
    seeding = Recorder()
    clients = await make_clients(
        config.clients, service.grpc_port, service.http_port, seeding, run_id
    )
    await seed(clients, config.photos_each)
    result.seed_errors = sum(1 for c in seeding.calls + seeding.puts if c.code != "OK")
    backends = {postgres.port, redis.port, moto.port}
    result.leaks = await _leaks(config, service, clients[0].token, backends)
    for client in clients:
        client.recorder = result.recorder

    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(
        sample(
            service.pid,
            admin_dsn(postgres.url),
            postgres.url.rpartition("/")[2],
            result.samples,
            stop_sampling,
        )
    )
    stop_clients = asyncio.Event()
    result.load_start = loop.time()
    tasks = [asyncio.create_task(c.run(stop_clients)) for c in clients]
    faults = (
        asyncio.create_task(_faults(config, result, redis, moto, postgres, service))
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
