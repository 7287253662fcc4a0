"""Open descriptors of a process, apart from its connections to the backends (Postgres, Redis,
S3), whose pools may still grow to their bounds: what is left would grow with a leak."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

import psutil


def port_of(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"no port in {url}")
    return port


def descriptors_apart_from_backends(pid: int, backend_ports: Collection[int]) -> int:
    process = psutil.Process(pid)
    backends = sum(
        1
        for c in process.net_connections(kind="tcp")
        if (c.raddr and c.raddr.port in backend_ports) or c.laddr.port in backend_ports
    )
    return process.num_fds() - backends
