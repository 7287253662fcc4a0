"""One unary call (GetPhoto) native gRPC vs gRPC-web (binary, text) vs Connect JSON, against
`photovault serve`'s two listeners in one process, real Postgres and Redis.

The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio streams: httpx alone costs
more per request than the gateway does, and the point is the server's cost per protocol
(grpcio's client is C-core, as light on the other side)."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass

import grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import open_app
from photovault_server.auth import mint_token
from photovault_server.logs import configure_logging
from photovault_server.server import running_grpc_server
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .list_photos import SECRET, USER, Latency, bench_settings, prepare_database


@dataclass
class _Http:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def post(self, path: str, content_type: str, body: bytes, token: str) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: {content_type}\r\n"
            f"authorization: Bearer {token}\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        assert b" 200 " in status_line, status_line
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return await self.reader.readexactly(length)


def _frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


async def measure(iterations: int = 1000) -> list[Latency]:
    configure_logging("WARNING", "json")
    await prepare_database()
    token = mint_token(SECRET, USER)
    async with open_app(bench_settings()) as app:
        page = await app.service.list_photos(USER, page_size=1)
        request = pb.GetPhotoRequest(id=str(page.photos[0].photo.id))
        raw = request.SerializeToString()
        path = "/photovault.v1.PhotoService/GetPhoto"
        async with (
            running_grpc_server(app, "127.0.0.1:0") as grpc_server,
            running_web_gateway(web_gateway(app), "127.0.0.1:0") as http_port,
            grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel,
        ):
            stub = pb_grpc.PhotoServiceStub(channel)
            metadata = (("authorization", f"Bearer {token}"),)
            reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
            http = _Http(reader, writer)

            async def native() -> None:
                await stub.GetPhoto(request, metadata=metadata)

            async def grpc_web_binary() -> None:
                await http.post(path, "application/grpc-web+proto", _frame(raw), token)

            async def grpc_web_text() -> None:
                body = base64.b64encode(_frame(raw))
                await http.post(path, "application/grpc-web-text", body, token)

            async def connect_json() -> None:
                body = f'{{"id": "{request.id}"}}'.encode()
                await http.post(path, "application/json", body, token)

            calls = [
                ("native gRPC", native),
                ("gRPC-web binary", grpc_web_binary),
                ("gRPC-web text", grpc_web_text),
                ("Connect JSON", connect_json),
            ]
            samples: dict[str, list[float]] = {name: [] for name, _ in calls}
            for _, call in calls:  # warm-up
                for _ in range(50):
                    await call()
            # Interleaved rounds, so drift in machine load hits every protocol alike.
            for _ in range(iterations):
                for name, call in calls:
                    started = time.perf_counter()
                    await call()
                    samples[name].append((time.perf_counter() - started) * 1000)
            writer.close()
    return [Latency(name, values) for name, values in samples.items()]


def report(latencies: list[Latency]) -> None:
    native = latencies[0].p50
    for lat in latencies:
        print(
            f"{lat.name:20s} p50 {lat.p50:6.3f} ms  p95 {lat.p95:6.3f} ms  "
            f"{lat.p50 / native:5.2f}x native"
        )


if __name__ == "__main__":
    report(asyncio.run(measure()))
