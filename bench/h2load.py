"""Load from h2load (nghttp2-client: a C client in its own process, so the figures are the
server's) against a `photovault serve` started for the measurement, and what the server's own
/metrics says it answered.

h2load counts HTTP answers, and a gRPC error is an HTTP 200 too: callers check the server's
per-code counts (`handled`) around each load."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from .list_photos import DATABASE_URL, REDIS_URL, SECRET

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
MISSING = "h2load is missing (apt-get install nghttp2-client; make bench installs it)"


def available() -> bool:
    return shutil.which("h2load") is not None


def version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def frame(message: bytes) -> bytes:
    """One gRPC (and gRPC-web binary) length-prefixed message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


@dataclass(frozen=True)
class Server:
    grpc_port: int
    http_port: int
    metrics_port: int
    process: psutil.Process

    def metrics(self) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                text: str = answer.read().decode()
        except OSError:
            return None
        return text

    def handled(self, method: str) -> tuple[float, float]:
        """Calls of `method` answered OK, and failed (CANCELLED aside: h2load resets the
        streams still in flight when its time is up)."""
        ok = other = 0.0
        for line in (self.metrics() or "").splitlines():
            if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line:
                value = float(line.rpartition(" ")[2])
                if 'grpc_code="OK"' in line:
                    ok += value
                elif 'grpc_code="CANCELLED"' not in line:
                    other += value
        return ok, other

    def cpu_seconds(self) -> float:
        """CPU time of the server's processes (the parent and any workers)."""
        total = 0.0
        for process in (self.process, *self.process.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total


def server_env(grpc_port: int, http_port: int, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    env.update(
        PHOTOVAULT_GRPC_ADDR=f"127.0.0.1:{grpc_port}",
        PHOTOVAULT_HTTP_ADDR=f"127.0.0.1:{http_port}",
        PHOTOVAULT_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        PHOTOVAULT_BUCKET="photovault-bench",
        PHOTOVAULT_JWT_SECRET=SECRET,
        PHOTOVAULT_LOG_LEVEL="WARNING",  # a log line per call would be measured too
        PHOTOVAULT_DB_POOL_MAX_SIZE="32",  # the whole server's: each of 2 workers gets 16
        PHOTOVAULT_SHUTDOWN_LAME_DUCK_SECONDS="0",
        # Throughput, not shedding: a call waits for a pool connection rather than failing.
        PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS="10000",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK0000000"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "bench-secret-key"),
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
    )
    return env


@contextlib.contextmanager
def serving(command: Sequence[str]) -> Iterator[Server]:
    """`command` (a `photovault serve ...`) on free ports, up once /metrics answers (after
    every worker listens); SIGTERM on the way out."""
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        list(command),
        env=server_env(grpc_port, http_port, metrics_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(grpc_port, http_port, metrics_port, psutil.Process(proc.pid))
    try:
        deadline = time.monotonic() + 60
        while server.metrics() is None:
            assert proc.poll() is None, f"{' '.join(command)} exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Load:
    """h2load's figures for one load: calls per second, calls answered, and the median time
    from a call's start to the end of its answer."""

    rate: float
    done: int
    p50_ms: float


def run(
    url: str,
    body: Path | None,
    *,
    content_type: str,
    token: str,
    seconds: float,
    connections: int,
    streams: int = 1,
    http1: bool = False,
) -> Load:
    """`connections` clients, each with `streams` calls in flight (HTTP/1.1: one), for
    `seconds` after a warm-up second, on one h2load thread; POSTs of `body`, or GETs."""
    with tempfile.NamedTemporaryFile(suffix=".tsv") as log:
        args = [
            "h2load",
            f"--duration={seconds}",
            "--warm-up-time=1",
            f"--clients={connections}",
            f"--max-concurrent-streams={streams}",
            "--threads=1",
            f"--header=content-type: {content_type}",
            f"--header=authorization: Bearer {token}",
            f"--log-file={log.name}",
        ]
        args += [f"--data={body}"] if body is not None else []
        args += ["--h1"] if http1 else ["--header=te: trailers"]
        out = subprocess.run(
            [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
        # Columns: start (µs since the epoch), HTTP status, µs to the end of the answer.
        times = [int(row.split("\t")[2]) for row in Path(log.name).read_text().splitlines()]
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    assert rate, out
    assert done, out
    assert done.group(1) == done.group(2), out
    assert times, out
    return Load(float(rate.group(1)), int(done.group(1)), statistics.median(times) / 1000)


@dataclass(frozen=True)
class Request:
    """One call h2load repeats: its label, its path, and the framed request in a file."""

    label: str
    path: str
    body: Path

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def counted(self) -> bool:
        """The health service is not counted by the call pipeline's metrics."""
        return self.path.startswith("/photovault.")


HEALTH = "health check"


def requests(folder: Path, photo_id: str) -> list[Request]:
    """The calls measured: the health check (grpc's own servicer, no database: the server's
    ceiling), GetPhoto (one row, its URLs from the cache) and ListPhotos of 20 and 100."""
    from grpc_health.v1 import health_pb2

    from photovault.v1 import photo_service_pb2 as pb

    service = "/photovault.v1.PhotoService/"
    messages = [
        (HEALTH, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest()),
        ("GetPhoto", service + "GetPhoto", pb.GetPhotoRequest(id=photo_id)),
        ("ListPhotos(20)", service + "ListPhotos", pb.ListPhotosRequest(page_size=20)),
        ("ListPhotos(100)", service + "ListPhotos", pb.ListPhotosRequest(page_size=100)),
    ]
    out = []
    for i, (label, path, message) in enumerate(messages):
        body = folder / f"{i}.bin"
        body.write_bytes(frame(message.SerializeToString()))
        out.append(Request(label, path, body))
    return out


async def photo_id() -> str:
    """A photo of the benchmark's user (the database prepared as bench/list_photos.py does)."""
    import asyncpg

    from .list_photos import prepare_database

    await prepare_database()
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        found: str = str(await conn.fetchval("SELECT id FROM photos LIMIT 1"))
    finally:
        await conn.close()
    return found
