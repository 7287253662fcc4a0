"""Callers that give up: native calls whose deadline expires or that are cancelled, channels
closed under a call, gRPC-web calls with a 1 ms deadline, and HTTP clients that hang up before
the answer or half-way through the body. Shared by the leak test (make test) and make soak."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

HOST = "127.0.0.1"
SERVICE = "/photovault.v1.PhotoService/"
LIST_50 = pb.ListPhotosRequest(page_size=50).SerializeToString()


def grpc_web_request(
    token: str, timeout: str | None, rpc: str = "ListPhotos", message: bytes = LIST_50
) -> bytes:
    """The raw bytes of one gRPC-web (binary) call over HTTP/1.1; `timeout` as grpc-timeout."""
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    headers = [
        f"POST {SERVICE}{rpc} HTTP/1.1",
        f"host: {HOST}",
        "content-type: application/grpc-web+proto",
        f"authorization: Bearer {token}",
        f"content-length: {len(body)}",
    ]
    if timeout is not None:
        headers.append(f"grpc-timeout: {timeout}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class Abandoner:
    def __init__(self, grpc_port: int, http_port: int, token: str, seed: int = 7) -> None:
        self._grpc_target = f"{HOST}:{grpc_port}"
        self._http_port = http_port
        self._token = token
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._rng = random.Random(seed)
        self.outcomes: Counter[str] = Counter()

    def patterns(self) -> list[Callable[[grpc.aio.Channel], Awaitable[str]]]:
        return [
            self.native_deadline,
            self.native_cancelled,
            self.native_channel_closed,
            self.web_deadline,
            self.web_hang_up_before_answer,
            self.web_hang_up_mid_body,
        ]

    async def native_deadline(self, channel: grpc.aio.Channel) -> str:
        stub = pb_grpc.PhotoServiceStub(channel)
        try:
            await stub.ListPhotos(
                pb.ListPhotosRequest(page_size=50),
                metadata=self._metadata,
                timeout=self._rng.uniform(0.0005, 0.02),
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return "OK"

    async def native_cancelled(self, channel: grpc.aio.Channel) -> str:
        call = pb_grpc.PhotoServiceStub(channel).ListPhotos(
            pb.ListPhotosRequest(page_size=50), metadata=self._metadata, timeout=10
        )
        await asyncio.sleep(self._rng.uniform(0, 0.01))
        return "cancelled" if call.cancel() else "finished first"

    async def native_channel_closed(self, _: grpc.aio.Channel) -> str:
        channel = grpc.aio.insecure_channel(self._grpc_target)
        call = pb_grpc.PhotoServiceStub(channel).ListPhotos(
            pb.ListPhotosRequest(page_size=50), metadata=self._metadata, timeout=10
        )
        await asyncio.sleep(self._rng.uniform(0, 0.005))
        await channel.close(grace=None)
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except asyncio.CancelledError:
            if not call.cancelled():
                raise  # this task's own cancellation
            return "cancelled by the close"
        return "OK"

    async def web_deadline(self, _: grpc.aio.Channel) -> str:
        reader, writer = await asyncio.open_connection(HOST, self._http_port)
        try:
            writer.write(grpc_web_request(self._token, "1m"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("grpc-status:"):
                return "grpc-status " + line.split(":", 1)[1].strip()
        return "answered"

    async def web_hang_up_before_answer(self, _: grpc.aio.Channel) -> str:
        _reader, writer = await asyncio.open_connection(HOST, self._http_port)
        writer.write(grpc_web_request(self._token, None))
        await writer.drain()
        await asyncio.sleep(self._rng.uniform(0, 0.005))
        writer.transport.abort()  # RST, no goodbye
        return "hung up"

    async def web_hang_up_mid_body(self, _: grpc.aio.Channel) -> str:
        _reader, writer = await asyncio.open_connection(HOST, self._http_port)
        request = grpc_web_request(self._token, None)
        writer.write(request[: len(request) - 10])
        await writer.drain()
        await asyncio.sleep(self._rng.uniform(0, 0.005))
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return "hung up"

    async def run(self, rounds: int, concurrency: int = 20) -> Counter[str]:
        """`rounds` of every pattern, `concurrency` at a time; tallies what each caller saw."""
        gate = asyncio.Semaphore(concurrency)
        async with grpc.aio.insecure_channel(self._grpc_target) as channel:

            async def one(pattern: Callable[[grpc.aio.Channel], Awaitable[str]]) -> None:
                async with gate:
                    outcome = await pattern(channel)
                self.outcomes[f"{pattern.__name__}: {outcome}"] += 1

            await asyncio.gather(*(one(p) for _ in range(rounds) for p in self.patterns()))
        return self.outcomes
