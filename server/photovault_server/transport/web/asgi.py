"""The gateway as an ASGI application, served by uvicorn beside the native gRPC server in the
same process and event loop (no extra network hop to reach the core)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from .gateway import BODY_TOO_LARGE, BODY_TOO_SLOW, MAX_MESSAGE_BYTES, WebGateway
from .http import HttpRequest, HttpResponse
from .uvicorn_server import HEADER_TIMEOUT_SECONDS, GatewayServer, protocol_with

# grpc-web-text carries the message in base64: 4/3 of it, plus the frame header and slack.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES * 4 // 3 + 1024
MAX_HEADER_BYTES = 64 * 1024
# Slow clients: a request's body must be complete this long after its headers (which have
# HEADER_TIMEOUT_SECONDS, see uvicorn_server.py). Without it a stalled body holds a task forever.
BODY_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 30
HEALTH_PATH = "/healthz"

Scope = dict[str, Any]


class GatewayAsgiApp:
    def __init__(
        self,
        gateway: WebGateway,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self._gateway = gateway
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == HEALTH_PATH and scope["method"] in ("GET", "HEAD"):
            # For HTTP load balancers: 503 while the database is down or not migrated, and
            # from SIGTERM on (the lame duck), so they stop sending new connections before the
            # listener closes.
            ready = self._gateway.ready
            await self._send(
                send,
                HttpResponse(
                    200 if ready else 503,
                    [("content-type", "text/plain"), ("cache-control", "no-store")],
                    b"SERVING\n" if ready else b"NOT_SERVING\n",
                ),
            )
            return
        if sum(len(n) + len(v) for n, v in scope["headers"]) > MAX_HEADER_BYTES:
            # uvicorn's httptools parser (unlike h11) sets no limit of its own.
            await self._send(
                send,
                HttpResponse(431, [("content-type", "text/plain")], b"headers too large\n"),
            )
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = bytearray()
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    event = await receive()
                    if event["type"] == "http.disconnect":
                        return
                    body += event.get("body", b"")
                    if len(body) > self._max_body_bytes:
                        request = HttpRequest(scope["method"], scope["path"], headers, b"")
                        await self._send(send, self._gateway.refuse(request, BODY_TOO_LARGE))
                        return
                    if not event.get("more_body", False):
                        break
        except TimeoutError:
            request = HttpRequest(scope["method"], scope["path"], headers, b"")
            response = self._gateway.refuse(request, BODY_TOO_SLOW)
            response.headers.append(("connection", "close"))  # the rest may still be coming
            await self._send(send, response)
            return
        request = HttpRequest(scope["method"], scope["path"], headers, bytes(body))
        response = await self._gateway.handle(request)
        if self._gateway.closing:
            response.headers.append(("connection", "close"))
        await self._send(send, response)

    @staticmethod
    async def _send(send: Any, response: HttpResponse) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


@asynccontextmanager
async def running_web_gateway(
    gateway: WebGateway,
    address: str,
    *,
    grace_seconds: float | None = None,
    header_timeout: float = HEADER_TIMEOUT_SECONDS,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS,
    reuse_port: bool = False,
) -> AsyncIterator[int]:
    """Serves the gateway on `address` (port 0 picks one) until exit; yields the bound port.
    On exit the listener closes at once and requests in progress get `grace_seconds` (None: no
    limit) to be answered. `reuse_port`: other processes may listen on the same port
    (SO_REUSEPORT: the kernel spreads new connections over them)."""
    host, _, port = address.rpartition(":")
    # proto=IPPROTO_TCP matters: accepted sockets inherit it, and asyncio enables TCP_NODELAY
    # only when it sees it; with 0, Nagle adds ~40 ms to every keep-alive request
    # (uvicorn issue #3149, measured here: 44 ms instead of 3 ms).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), int(port)))
    config = uvicorn.Config(
        GatewayAsgiApp(gateway, body_timeout=body_timeout),
        http=protocol_with(header_timeout),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=keep_alive_seconds,
        # Bounded headers: h11's limit on an incomplete event (the header block).
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=None if grace_seconds is None else max(1, round(grace_seconds)),
    )
    server = GatewayServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task  # re-raise why it stopped
                raise OSError(f"web gateway did not start on {address}")
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
