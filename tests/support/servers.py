"""A second app and gRPC server with settings of the test's own (dead backends, other limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import httpx

from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App, open_app
from photovault_server.server import running_grpc_server
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .callers import Caller, connect_json_caller, native_caller
from .settings import make_settings


@asynccontextmanager
async def server_with(
    **overrides: object,
) -> AsyncIterator[tuple[App, pb_grpc.PhotoServiceAsyncStub]]:
    database_url = str(overrides.pop("DATABASE_URL"))
    redis_url = str(overrides.pop("REDIS_URL"))
    async with (
        open_app(make_settings(database_url, redis_url, **overrides)) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield app, pb_grpc.PhotoServiceStub(channel)


@asynccontextmanager
async def transports_with(**overrides: object) -> AsyncIterator[tuple[App, dict[str, Caller]]]:
    """A second app served over native gRPC and the web gateway, with a caller per transport
    ("grpc", "connect"), for behaviour every transport must share."""
    database_url = str(overrides.pop("DATABASE_URL"))
    redis_url = str(overrides.pop("REDIS_URL"))
    async with (
        open_app(make_settings(database_url, redis_url, **overrides)) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        running_web_gateway(web_gateway(app), "127.0.0.1:0") as http_port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as web,
    ):
        yield (
            app,
            {
                "grpc": native_caller(pb_grpc.PhotoServiceStub(channel)),
                "connect": connect_json_caller(web),
            },
        )
