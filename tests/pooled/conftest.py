"""The suites in this folder run twice: on the database directly, then through PgBouncer
(transaction mode, two server connections, statement cache off), as behind RDS Proxy: the
session's `app` and the server, channel and stub built on it are replaced, for these modules,
by module-scoped ones on tests/conftest.py's parametrized `app_direct_and_pooled`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.server import RunningServer, running_grpc_server


@pytest.fixture(scope="module")
def app(app_direct_and_pooled: App) -> App:
    return app_direct_and_pooled


@pytest.fixture(scope="module")
async def grpc_server(app: App) -> AsyncIterator[RunningServer]:
    async with running_grpc_server(app, "127.0.0.1:0") as running:
        yield running


@pytest.fixture(scope="module")
async def channel(grpc_server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> pb_grpc.PhotoServiceAsyncStub:
    return pb_grpc.PhotoServiceStub(channel)
