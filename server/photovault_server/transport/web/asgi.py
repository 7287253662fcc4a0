"""The gateway as an ASGI application, served by uvicorn beside the native gRPC server in the
same process and event loop (no extra network hop to reach the core)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .gateway import MAX_MESSAGE_BYTES, HttpRequest, HttpResponse, WebGateway

# grpc-web-text carries the message in base64: 4/3 of it, plus the frame header and slack.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES * 4 // 3 + 1024
MAX_HEADER_BYTES = 64 * 1024
# Slow clients: a request's header block must be complete this long after the connection opens
# (or after the keep-alive wait that follows an answer), and its body this long after the
# headers. Without them a client trickling bytes holds a connection and a task forever.
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 30
# At shutdown, a connection with no request yet may have one on its way (a client that just
# reconnected after a `Connection: close`): it gets this long to arrive and be answered.
SHUTDOWN_IDLE_GRACE_SECONDS = 0.5
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
            # For HTTP load balancers: 503 from SIGTERM on (the lame duck), so they stop
            # sending new connections before the listener closes.
            closing = self._gateway.closing
            await self._send(
                send,
                HttpResponse(
                    503 if closing else 200,
                    [("content-type", "text/plain"), ("cache-control", "no-store")],
                    b"NOT_SERVING\n" if closing else b"SERVING\n",
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
                        await self._send(send, self._gateway.too_large(request))
                        return
                    if not event.get("more_body", False):
                        break
        except TimeoutError:
            request = HttpRequest(scope["method"], scope["path"], headers, b"")
            response = self._gateway.too_slow(request)
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


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's header block, which
    uvicorn lacks: its keep-alive timer stops at the first byte of a request, so a client that
    sends nothing after connecting, or a byte now and then, would hold the connection forever.
    The deadline runs from the connection (or the end of the previous answer, plus the
    keep-alive wait) to the end of the headers; then the connection is closed."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    _header_timer: asyncio.TimerHandle | None = None
    _shutting_down = False

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(seconds, self._header_deadline_passed)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self._shutting_down and self.cycle is not None:
            self.cycle.keep_alive = False  # as uvicorn does for a request in progress

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.timeout_keep_alive + self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # uvicorn closes a connection with no request in progress at once, cutting off a
        # request already sent but not yet read (the client sees a reset). Give it a moment:
        # if its headers come, it is answered, then closed.
        self._shutting_down = True
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm(min(SHUTDOWN_IDLE_GRACE_SECONDS, self.header_timeout))
            return
        super().shutdown()


def _protocol_with(header_timeout: float) -> type[_HeaderDeadlineProtocol]:
    return type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `photovault serve` owns SIGTERM/SIGINT: it drains gRPC and the gateway together.
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Connections that the kernel completed but the event loop has not accepted yet would
        be reset when the listener closes, their requests perhaps already sent: accept them
        first (the listener closing right after, in the same step), so that they get the same
        shutdown grace as the others."""
        pending = []
        for listener in sockets or ():
            while True:
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # the listener is already closed
                pending.append(connection)
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        for connection in pending:
            connection.setblocking(False)
            await loop.connect_accepted_socket(self._new_protocol, connection)
        await super().shutdown(sockets)

    def _new_protocol(self) -> asyncio.Protocol:
        # As uvicorn's own protocol factory (Server.startup) makes them.
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol


@asynccontextmanager
async def running_web_gateway(
    gateway: WebGateway,
    address: str,
    *,
    grace_seconds: float | None = None,
    header_timeout: float = HEADER_TIMEOUT_SECONDS,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS,
) -> AsyncIterator[int]:
    """Serves the gateway on `address` (port 0 picks one) until exit; yields the bound port.
    On exit the listener closes at once and requests in progress get `grace_seconds` (None: no
    limit) to be answered."""
    host, _, port = address.rpartition(":")
    # proto=IPPROTO_TCP matters: accepted sockets inherit it, and asyncio enables TCP_NODELAY
    # only when it sees it; with 0, Nagle adds ~40 ms to every keep-alive request
    # (uvicorn issue #3149, measured here: 44 ms instead of 3 ms).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), int(port)))
    config = uvicorn.Config(
        GatewayAsgiApp(gateway, body_timeout=body_timeout),
        http=_protocol_with(header_timeout),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=keep_alive_seconds,
        # Bounded headers: h11's limit on an incomplete event (the header block).
        h11_max_incomplete_event_size=64 * 1024,
        timeout_graceful_shutdown=None if grace_seconds is None else max(1, round(grace_seconds)),
    )
    server = _Server(config)
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
