"""uvicorn, as the gateway needs it: a deadline on each request's header block, and a
shutdown that cuts off no request already on its way (see each class)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A request's header block must be complete this long after the connection opens (or after the
# keep-alive wait that follows an answer). Without it a client that sends nothing, or trickles
# bytes, holds a connection forever.
HEADER_TIMEOUT_SECONDS = 10.0
# At shutdown, a connection with no request yet may have one on its way (a client that just
# reconnected after a `Connection: close`): it gets this long to arrive and be answered.
SHUTDOWN_IDLE_GRACE_SECONDS = 0.5


class HeaderDeadlineProtocol(HttpToolsProtocol):
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


def protocol_with(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


class GatewayServer(uvicorn.Server):
    """uvicorn's server without its own signal handling, and with a shutdown that accepts the
    connections still queued in the kernel before it closes the listener."""

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
                except OSError:  # none waiting (EAGAIN), or the listener already closed
                    break
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


__all__ = ["HEADER_TIMEOUT_SECONDS", "GatewayServer", "HeaderDeadlineProtocol", "protocol_with"]
