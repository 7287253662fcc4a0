"""`photovault serve`: the long-running native gRPC server, as one readable lifecycle."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from msgspec import Struct
from prometheus_client import start_http_server

from photovault.v1 import photo_service_pb2
from photovault_server.app import App, open_app
from photovault_server.core.processing import WorkerStats
from photovault_server.job_backlog import keep_reading
from photovault_server.observability import Sources, log_fields, registry_for
from photovault_server.readiness import CHECK_EVERY_SECONDS, Listener, watching_readiness
from photovault_server.settings import ServerSettings, Settings
from photovault_server.transport.calls import CallPipeline
from photovault_server.transport.grpc_service import add_photo_service
from photovault_server.transport.handlers import PhotoHandlers, method_table
from photovault_server.transport.web import WebGateway, web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

log = structlog.get_logger("photovault.server")
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_NAME = photo_service_pb2.DESCRIPTOR.services_by_name["PhotoService"].full_name


class RunningServer(Struct, frozen=True):
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    app: App


def grpc_options(settings: ServerSettings) -> list[tuple[str, int]]:
    """Connections older than the max age get GOAWAY (gRPC adds +-10% jitter so they do not
    all reconnect at once) and their calls in flight the shutdown grace: clients reconnect,
    and balancers that pick a backend per connection (NLB, kube-proxy) reach new processes."""
    if not settings.grpc_max_connection_age_seconds:
        return []
    return [
        ("grpc.max_connection_age_ms", round(settings.grpc_max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", round(settings.shutdown_grace_seconds * 1000)),
    ]


async def _nothing(ready: bool) -> None:
    return None


@asynccontextmanager
async def running_grpc_server(
    app: App,
    address: str,
    *,
    on_readiness: Listener = _nothing,
    readiness_every: float = CHECK_EVERY_SECONDS,
    reuse_port: bool = False,
) -> AsyncIterator[RunningServer]:
    """Builds, binds and starts the server; health says SERVING only while the database
    answers with its schema current (readiness.py, re-checked every `readiness_every`
    seconds and told to `on_readiness` too); on exit marks it NOT_SERVING and drains in-flight
    calls for the grace period before stopping. `reuse_port`: other processes may listen on
    the same port (SO_REUSEPORT, the workers of `serve --workers`)."""
    options: list[tuple[str, int]] = grpc_options(app.settings)
    if reuse_port:
        options.append(("grpc.so_reuseport", 1))
    server = grpc.aio.server(options=options)
    add_photo_service(
        server,
        CallPipeline(app.verifier, app.rpc_stats, app.tracing, app.admission),
        method_table(PhotoHandlers(app.service)),
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if app.settings.grpc_reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind the gRPC server to {address}")
    await server.start()

    async def report(ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else _NOT_SERVING
        await health_servicer.set(SERVICE_NAME, status)
        await health_servicer.set("", status)
        await on_readiness(ready)

    try:
        async with watching_readiness(app.pool, report, every=readiness_every):
            yield RunningServer(server=server, health=health_servicer, port=port, app=app)
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(app.settings.shutdown_grace_seconds)


@contextmanager
def metrics_endpoint(
    app: App, address: str, *, worker: WorkerStats | None = None
) -> Iterator[int | None]:
    """Prometheus /metrics on its own port (a thread of prometheus_client's); None when off.
    `worker`: the counters of a worker running in this process."""
    if not address:
        yield None
        return
    host, _, port = address.rpartition(":")
    sources = Sources.of(app, loop=asyncio.get_running_loop(), worker=worker)
    registry = registry_for(sources, process=True)
    server, thread = start_http_server(int(port), addr=host, registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


async def _log_counters(app: App, every: float, worker: WorkerStats | None) -> None:
    while True:
        await asyncio.sleep(every)
        log.info("url_counters", **log_fields(Sources.of(app, worker=worker)))


async def lame_duck(health: health.aio.HealthServicer, gateway: WebGateway, seconds: float) -> None:
    """The first step of a shutdown: health answers NOT_SERVING (load balancers and health-
    checking clients move away) and the gateway closes each connection after its response,
    while every call is still served. Refusing calls here instead would fail calls that were
    already queued in the server when the signal came."""
    await health.enter_graceful_shutdown()
    gateway.begin_closing()
    await asyncio.sleep(seconds)


def run_serving(main: Coroutine[object, object, None]) -> None:
    """Runs a long-running server's `main` (`serve`) to completion on uvloop's event loop,
    asyncio's where uvloop is not installed (Windows). grpc.aio and the gateway both run on
    it; measured under load, native gRPC answers more calls per second on it, the gateway
    about as many (docs/benchmarks.md, "Native gRPC against the gateway"). The Lambda handler
    keeps asyncio's loop: one call at a time, where importing uvloop would only add to the
    cold start."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it installs
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(
    settings: Settings,
    *,
    with_worker: bool = False,
    reuse_port: bool = False,
    on_serving: Callable[[int | None], None] | None = None,
) -> None:
    """Serves until SIGTERM/SIGINT. `with_worker`: a photo processing worker runs in the same
    process (`photovault dev`), stopped and drained with the listeners. `reuse_port`: the
    listeners share their ports with other processes (workers.py); `on_serving` is told the
    metrics port once every listener is up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_app(settings) as app:
        gateway = web_gateway(app)
        async with (
            running_grpc_server(
                app, settings.grpc_addr, on_readiness=gateway.set_ready, reuse_port=reuse_port
            ) as running,
            running_web_gateway(
                gateway,
                settings.http_addr,
                grace_seconds=settings.shutdown_grace_seconds,
                reuse_port=reuse_port,
            ) as http_port,
        ):
            stats = WorkerStats() if with_worker else None
            with metrics_endpoint(app, settings.metrics_addr, worker=stats) as metrics_port:
                host = settings.grpc_addr.rsplit(":", 1)[0]
                web_host = settings.http_addr.rsplit(":", 1)[0]
                log.info(
                    "serving",
                    grpc=f"{host}:{running.port}",
                    http=f"{web_host}:{http_port}",
                    metrics_port=metrics_port,
                )
                if on_serving is not None:
                    on_serving(metrics_port)
                counters = asyncio.create_task(_log_counters(app, 60.0, stats))
                backlog = asyncio.create_task(
                    keep_reading(app.job_backlog, app.backends.repository, app.clock)
                )
                worker = asyncio.create_task(_worker(app, stop, stats)) if stats else None
                await stop.wait()
                counters.cancel()
                backlog.cancel()
                if worker is not None:
                    await worker  # the job in hand finishes
                log.info(
                    "shutting_down",
                    lame_duck_seconds=settings.shutdown_lame_duck_seconds,
                    grace_seconds=settings.shutdown_grace_seconds,
                )
                await lame_duck(running.health, gateway, settings.shutdown_lame_duck_seconds)
                log.info("url_counters", **log_fields(Sources.of(app, worker=stats)))
        # Leaving the block closed the listeners: the gateway once its requests in progress
        # were answered, then gRPC (GOAWAY) once its calls finished, within the grace period.
    log.info("stopped")


async def _worker(app: App, stop: asyncio.Event, stats: WorkerStats) -> None:
    from photovault_server.worker import build_processing, run_until_stopped

    await run_until_stopped(build_processing(app), stop, stats)


__all__ = [
    "RunningServer",
    "grpc_options",
    "lame_duck",
    "metrics_endpoint",
    "run_serving",
    "running_grpc_server",
    "serve",
    "web_gateway",
]
