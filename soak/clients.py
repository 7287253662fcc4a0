"""The 50 clients: each its own user, native gRPC or gRPC-web (binary, over httpx), running the
mixed workload and recording every call (start, end, transport, RPC, status code)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc
import httpx
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_client import HEALTH_CHECKED_SERVICE_CONFIG
from photovault_server.auth import mint_token
from tests.support.images import jpeg

from .infra import HOST, JWT_SECRET

NATIVE = "native gRPC"
WEB = "gRPC-web (binary)"
CALL_TIMEOUT = 10.0
SERVICE = "/photovault.v1.PhotoService/"
Reply = TypeVar("Reply", bound=Message)


@dataclass(frozen=True, slots=True)
class Call:
    started: float  # time.monotonic()
    ended: float
    transport: str
    rpc: str
    code: str  # "OK", a gRPC status name, or a transport failure (CONNECT_REFUSED, ...)
    message: str = ""

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    puts: list[Call] = field(default_factory=list)


class RpcFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Transport(Protocol):
    name: str

    async def call(self, rpc: str, request: Message, reply: type[Reply]) -> Reply: ...

    async def close(self) -> None: ...


class NativeTransport:
    name = NATIVE

    def __init__(self, port: int, token: str) -> None:
        self._channel = grpc.aio.insecure_channel(
            # As PhotoVaultClient.grpc(health_checked=True): nothing is sent to a draining server.
            f"{HOST}:{port}",
            options=[("grpc.service_config", HEALTH_CHECKED_SERVICE_CONFIG)],
        )
        self._stub = pb_grpc.PhotoServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def call(self, rpc: str, request: Message, reply: type[Reply]) -> Reply:
        method: Callable[..., Awaitable[Reply]] = getattr(self._stub, rpc)
        try:
            return await method(request, metadata=self._metadata, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise RpcFailed(exc.code().name, exc.details() or "") from None

    async def close(self) -> None:
        await self._channel.close()


def _frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


class WebTransport:
    """gRPC-web binary through the gateway, one keep-alive HTTP/1.1 connection per client."""

    name = WEB

    def __init__(self, port: int, token: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}",
            timeout=CALL_TIMEOUT + 2,
            trust_env=False,
            limits=httpx.Limits(max_connections=1),
        )
        self._headers = {
            "authorization": f"Bearer {token}",
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "grpc-timeout": f"{int(CALL_TIMEOUT)}S",
        }

    async def call(self, rpc: str, request: Message, reply: type[Reply]) -> Reply:
        try:
            response = await self._http.post(
                SERVICE + rpc, content=_frame(request.SerializeToString()), headers=self._headers
            )
        except httpx.ConnectError as exc:
            raise RpcFailed("CONNECT_REFUSED", str(exc)) from None
        except httpx.TransportError as exc:
            raise RpcFailed(f"HTTP_{type(exc).__name__}", str(exc)) from None
        if response.status_code != 200:
            raise RpcFailed(f"HTTP_{response.status_code}", response.text[:200])
        status = response.headers.get("grpc-status")
        body = response.content
        message = b""
        offset = 0
        while offset + 5 <= len(body):
            flag = body[offset]
            length = int.from_bytes(body[offset + 1 : offset + 5], "big")
            chunk = body[offset + 5 : offset + 5 + length]
            offset += 5 + length
            if flag & 0x80:
                for line in chunk.decode(errors="replace").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "grpc-status":
                        status = value.strip()
            else:
                message = chunk
        if status is None:
            raise RpcFailed("NO_STATUS", "gateway reply without grpc-status")
        if status != "0":
            detail = response.headers.get("grpc-message", "")
            raise RpcFailed(_CODE_NAMES.get(int(status), f"CODE_{status}"), detail)
        return reply.FromString(message)

    async def close(self) -> None:
        await self._http.aclose()


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass
class Client:
    index: int
    transport: Transport
    http: httpx.AsyncClient
    recorder: Recorder
    user: str
    token: str
    photos: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    async def rpc(self, rpc: str, request: Message, reply: type[Reply]) -> Reply:
        started = time.monotonic()
        try:
            result = await self.transport.call(rpc, request, reply)
        except RpcFailed as exc:
            self.recorder.calls.append(
                Call(started, time.monotonic(), self.transport.name, rpc, exc.code, exc.message)
            )
            raise
        self.recorder.calls.append(Call(started, time.monotonic(), self.transport.name, rpc, "OK"))
        return result

    async def upload(self) -> None:
        data = jpeg((8 + self.rng.randrange(32), 8), (self.rng.randrange(256), 40, 90))
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        ticket = await self.rpc(
            "CreateUploadUrl",
            pb.CreateUploadUrlRequest(
                file_name=f"soak-{self.index}.jpg",
                content_type="image/jpeg",
                size_bytes=len(data),
                checksum_sha256=checksum,
            ),
            pb.CreateUploadUrlResponse,
        )
        started = time.monotonic()
        try:
            put = await self.http.request(
                ticket.method,
                ticket.upload_url,
                content=data,
                headers=dict(ticket.required_headers),
            )
            code = "OK" if put.status_code == 200 else f"HTTP_{put.status_code}"
        except httpx.TransportError as exc:
            code = f"HTTP_{type(exc).__name__}"
        self.recorder.puts.append(Call(started, time.monotonic(), "S3 PUT", "PUT", code))
        if code != "OK":
            return
        confirmed = await self.rpc(
            "ConfirmUpload",
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id, title="soak", tags=["soak"]),
            pb.ConfirmUploadResponse,
        )
        self.photos.append(confirmed.photo.id)

    async def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.70 or not self.photos:
            await self.rpc("ListPhotos", pb.ListPhotosRequest(page_size=50), pb.ListPhotosResponse)
        elif roll < 0.85:
            await self.rpc(
                "GetPhoto", pb.GetPhotoRequest(id=self.rng.choice(self.photos)), pb.GetPhotoResponse
            )
        elif roll < 0.95:
            await self.upload()
        elif roll < 0.975 or len(self.photos) <= 2:
            photo = pb.UpdatePhotoRequest(
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            )
            photo.photo.id = self.rng.choice(self.photos)
            photo.photo.title = f"soak {self.rng.randrange(1000)}"
            await self.rpc("UpdatePhoto", photo, pb.UpdatePhotoResponse)
        else:
            victim = self.photos.pop(self.rng.randrange(len(self.photos)))
            await self.rpc("DeletePhoto", pb.DeletePhotoRequest(id=victim), pb.DeletePhotoResponse)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except RpcFailed as exc:
                if exc.code in ("CONNECT_REFUSED", "UNAVAILABLE"):
                    await asyncio.sleep(0.05)  # no busy loop against a closed port


async def make_clients(
    count: int, grpc_port: int, http_port: int, recorder: Recorder, run_id: str
) -> list[Client]:
    clients = []
    for index in range(count):
        user = f"soak-{run_id}-{index}"
        token = mint_token(JWT_SECRET, user, ttl_seconds=3600)
        transport: Transport = (
            NativeTransport(grpc_port, token) if index % 2 == 0 else WebTransport(http_port, token)
        )
        http = httpx.AsyncClient(timeout=CALL_TIMEOUT, trust_env=False)
        rng = random.Random(index)  # noqa: S311 - a workload mix, not cryptography
        clients.append(Client(index, transport, http, recorder, user, token, rng=rng))
    return clients


async def seed(clients: list[Client], photos_each: int) -> None:
    async def one(client: Client) -> None:
        for _ in range(photos_each):
            await client.upload()

    await asyncio.gather(*(one(c) for c in clients))
