"""A fleet of `photovault serve` processes, each with credentials of its own (as role
credentials give every Lambda environment, pod or task), sharing one database, bucket and
Redis: started, waited for (health SERVING) and stopped; their /metrics read as numbers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .cli import health_serving, serve_env
from .loopback import closed_port

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    metrics_port: int
    access_key: str

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples of /metrics by name (`photovault_url_cache_hits_total`, ...)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                samples[name] = float(value)
        return samples


@contextlib.contextmanager
def serve_fleet(
    count: int,
    database_url: str,
    redis_url: str,
    s3_endpoint: str,
    **settings: str,
) -> Iterator[list[ServeProcess]]:
    """`count` serve processes; the i-th signs with access key `FLEETKEY{i}` and a session
    token of its own (moto accepts any credentials)."""
    fleet: list[ServeProcess] = []
    try:
        for i in range(count):
            port, metrics_port = closed_port(), closed_port()
            env = serve_env(database_url, redis_url, s3_endpoint, port, metrics_port)
            key = f"FLEETKEY{i:08d}"
            env.update(
                AWS_ACCESS_KEY_ID=key,
                AWS_SECRET_ACCESS_KEY=f"fleet-secret-{i}",
                AWS_SESSION_TOKEN=f"fleet-session-token-{i}",
                **settings,
            )
            proc = subprocess.Popen(
                [PHOTOVAULT, "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            fleet.append(ServeProcess(proc, port, metrics_port, key))
        deadline = time.monotonic() + 60
        for member in fleet:
            while not health_serving(member.grpc_port):
                if member.proc.poll() is not None:
                    raise RuntimeError(member.proc.communicate()[1].decode()[-2000:])
                if time.monotonic() > deadline:
                    raise TimeoutError("a serve process did not become SERVING")
                time.sleep(0.1)
        yield fleet
    finally:
        for member in fleet:
            if member.proc.poll() is None:
                member.proc.terminate()
        for member in fleet:
            try:
                member.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                member.proc.kill()
                member.proc.communicate()
