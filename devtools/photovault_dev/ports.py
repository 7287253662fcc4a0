"""Ports and sockets on this machine: a free port to hand to a server, a connection to probe one."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"  # test and dev servers never listen beyond this machine


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now, for a server that takes its port up front (on its command
    line or in its environment); the window until that server binds it is accepted."""
    # Bound without SO_REUSEADDR, so the kernel skips ports that still have TIME_WAIT
    # connections: a server binding there afterwards would fail on Linux.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected socket to host:port, or to the Unix socket at `host` when it is a path."""
    if host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(host)
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock
