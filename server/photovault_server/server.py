"""`photovault serve`: the long-running native gRPC server, as one readable lifecycle."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from photovault.v1 import photo_service_pb2, photo_service_pb2_grpc
from photovault_server.app import App, open_app
from photovault_server.counters import snapshot
from photovault_server.metrics import registry_for
from photovault_server.settings import Settings
from photovault_server.transport.grpc_interceptors import interceptors
from photovault_server.transport.grpc_servicer import PhotoServicer
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

log = structlog.get_logger("photovault.server")
SERVICE_NAME = photo_service_pb2.DESCRIPTOR.services_by_name["PhotoService"].full_name


@dataclass(frozen=True, slots=True)
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    app: App


@asynccontextmanager
async def running_grpc_server(app: App, address: str) -> AsyncIterator[RunningServer]:
    """Builds, binds and starts the server; on exit marks it NOT_SERVING and drains in-flight
    calls for the grace period before stopping."""
    server = grpc.aio.server(interceptors=interceptors(app.verifier))
    photo_service_pb2_grpc.add_PhotoServiceServicer_to_server(PhotoServicer(app.service), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind the gRPC server to {address}")
    await server.start()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield RunningServer(server=server, health=health_servicer, port=port, app=app)
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(app.settings.shutdown_grace_seconds)


@contextmanager
def metrics_endpoint(app: App, address: str) -> Iterator[int | None]:
    """Prometheus /metrics on its own port (a thread of prometheus_client's); None when off."""
    if not address:
        yield None
        return
    host, _, port = address.rpartition(":")
    registry = registry_for(app.service.url_stats, app.redis_cache, app.local_cache)
    server, thread = start_http_server(int(port), addr=host, registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


async def _log_counters(app: App, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        log.info(
            "url_counters", **snapshot(app.service.url_stats, app.redis_cache, app.local_cache)
        )


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        open_app(settings) as app,
        running_grpc_server(app, settings.grpc_addr) as running,
        running_web_gateway(web_gateway(app), settings.http_addr) as http_port,
    ):
        with metrics_endpoint(app, settings.metrics_addr) as metrics_port:
            host = settings.grpc_addr.rsplit(":", 1)[0]
            web_host = settings.http_addr.rsplit(":", 1)[0]
            log.info(
                "serving",
                grpc=f"{host}:{running.port}",
                http=f"{web_host}:{http_port}",
                metrics_port=metrics_port,
            )
            counters = asyncio.create_task(_log_counters(app, 60.0))
            await stop.wait()
            counters.cancel()
            log.info("shutting_down", grace_seconds=settings.shutdown_grace_seconds)
            log.info(
                "url_counters", **snapshot(app.service.url_stats, app.redis_cache, app.local_cache)
            )
    log.info("stopped")


__all__ = ["RunningServer", "metrics_endpoint", "running_grpc_server", "serve", "web_gateway"]
