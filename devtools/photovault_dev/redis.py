"""Redis for development: a probe for a real server, and fakeredis's TCP server as a stand-in
where none answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from photovault_dev.ports import connect

__all__ = ["embedded_redis", "redis_answers"]


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING at the URL (a NOAUTH error still counts: it is up)."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            host, port = parts.path, 0
        else:
            host, port = parts.hostname or "localhost", parts.port or 6379
        with connect(host, port, timeout) as sock:
            if parts.scheme == "rediss":
                return True  # TLS: speaking RESP would need a handshake; the connect must do.
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except (OSError, ValueError):
        return False


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Runs fakeredis's TCP server (Redis 8 semantics, RESP2 and RESP3) in a background thread
    on a free loopback port; yields its REDIS_URL. Data lives in memory, for this process only."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    # A short poll interval only makes shutdown quicker (the default 0.5 s is paid on exit).
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="embedded-redis",
        daemon=True,
    )
    thread.start()
    try:
        port: int = server.socket.getsockname()[1]
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        # shutdown() also tells each connection's thread to stop; server_close() joins them.
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
