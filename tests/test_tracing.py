"""OpenTelemetry tracing: a SERVER span per RPC on every transport, continuing the caller's
`traceparent`, with child spans for Postgres and Redis (the instrumentations) and S3 (the
store); with an in-memory exporter in process, and with a real OTLP/HTTP receiver (an HTTP
server of the test's own decoding the protobuf export requests) fed by `photovault serve`."""

from __future__ import annotations

import asyncio
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App, open_app
from photovault_server.server import running_grpc_server
from photovault_server.tracing import start_tracing
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.cli import serve_env
from .support.images import jpeg
from .support.loopback import closed_port
from .support.settings import make_settings
from .support.users import new_user, upload_photo

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
PHOTOVAULT = str(Path(sys.executable).parent / "photovault")


@pytest.fixture
async def traced(
    database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[tuple[App, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    settings = make_settings(database_url, redis_url)
    async with open_app(
        settings, tracing=start_tracing("", "photovault", exporter=exporter)
    ) as app:
        yield app, exporter


def rpc_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def children_of(exporter: InMemorySpanExporter, span: ReadableSpan) -> list[ReadableSpan]:
    assert span.context is not None
    return [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == span.context.span_id
    ]


async def test_a_native_call_continues_the_callers_trace_with_backend_children(
    traced: tuple[App, InMemorySpanExporter], http: httpx.AsyncClient
) -> None:
    app, exporter = traced
    user = new_user()
    async with (
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = pb_grpc.PhotoServiceStub(channel)
        await upload_photo(stub, http, user, jpeg())
        exporter.clear()
        await stub.ListPhotos(
            pb.ListPhotosRequest(), metadata=(*user.metadata, ("traceparent", TRACEPARENT))
        )
    (span,) = rpc_spans(exporter)
    assert span.name == "photovault.v1.PhotoService/ListPhotos"
    assert span.context is not None
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["photovault.transport"] == "grpc"
    assert span.attributes["rpc.grpc.status_code_name"] == "OK"
    systems = {(c.attributes or {}).get("db.system") for c in children_of(exporter, span)}
    assert {"postgresql", "redis"} <= systems


async def test_web_calls_are_traced_too_and_s3_calls_get_their_span(
    traced: tuple[App, InMemorySpanExporter], http: httpx.AsyncClient
) -> None:
    app, exporter = traced
    user = new_user()
    async with (
        running_web_gateway(web_gateway(app), "127.0.0.1:0") as port,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        photo = await upload_photo(pb_grpc.PhotoServiceStub(channel), http, user, jpeg())
        (confirm,) = [s for s in rpc_spans(exporter) if s.name.endswith("/ConfirmUpload")]
        s3_calls = {c.name for c in children_of(exporter, confirm) if c.name.startswith("S3 ")}
        exporter.clear()
        await http.post(
            f"http://127.0.0.1:{port}/photovault.v1.PhotoService/GetPhoto",
            json={"id": photo.id},
            headers={"authorization": f"Bearer {user.token}", "traceparent": TRACEPARENT},
        )
    (span,) = rpc_spans(exporter)
    assert span.context is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert (span.attributes or {})["photovault.transport"] == "connect"
    # ConfirmUpload checks the object: HeadObject and a ranged GET, each a span of its own.
    assert {"S3 read an object's metadata", "S3 read an object"} <= s3_calls


def test_no_endpoint_means_no_tracing_and_no_import() -> None:
    script = (
        "import sys, asyncio\n"
        "from photovault_server.tracing import start_tracing, NO_TRACING\n"
        "assert start_tracing('', 'x') is NO_TRACING\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), "
        "[m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        if self.path == "/v1/traces":
            self.received.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        thread.join(timeout=5)


async def test_serve_exports_spans_to_a_real_otlp_http_receiver(
    database_url: str,
    redis_url: str,
    s3_endpoint: str,
    aws_env: None,
    otlp_receiver: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    endpoint, received = otlp_receiver
    port = closed_port()
    env = serve_env(database_url, redis_url, s3_endpoint, port)
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="photovault-under-test",
    )
    proc = await asyncio.create_subprocess_exec(
        PHOTOVAULT, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    user = new_user()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.PhotoServiceStub(channel)
            await channel.channel_ready()
            await stub.GetAccount(
                pb.GetAccountRequest(),
                metadata=(*user.metadata, ("traceparent", TRACEPARENT)),
                timeout=30,
            )
        deadline = time.monotonic() + 30
        spans: list[tuple[Any, Any]] = []
        while time.monotonic() < deadline and not spans:
            await asyncio.sleep(0.1)
            spans = [
                (resource, span)
                for request in list(received)
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
                if span.name == "photovault.v1.PhotoService/GetAccount"
            ]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), timeout=30)
    assert spans, "no span reached the receiver"
    resource, span = spans[0]
    assert span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == PARENT_ID
    names = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert names["service.name"] == "photovault-under-test"
