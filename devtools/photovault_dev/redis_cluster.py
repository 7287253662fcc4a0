"""Real Redis servers for the URL cache's topology tests: a Redis Cluster of six
`redis-server --cluster-enabled yes` nodes on loopback ports, joined by `redis-cli --cluster
create` as three masters with a replica each, or a single standalone server; either optionally
over TLS (a CA made by the tests) and with an ACL user that may touch only the cache's keys.
Nodes can be killed (SIGKILL) to force a failover."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port
from .tls import TlsFiles

_HOST = "127.0.0.1"
# What the service's ACL user needs: the cache's commands on its keys, and what redis-py sends
# on connecting (HELLO) and to discover a cluster (CLUSTER SLOTS, COMMAND). redis-py also sends
# CLIENT SETINFO, whose refusal it ignores (and Redis 7.0 has none).
SERVICE_COMMANDS = (
    "get",
    "mget",
    "set",
    "del",
    "ping",
    "hello",
    "cluster|slots",
    "cluster|shards",
    "command",
)


@dataclass(frozen=True)
class AclUser:
    name: str
    password: str


@dataclass
class RedisClusterNodes:
    workdir: Path
    ports: list[int]
    tls: TlsFiles | None = None
    user: AclUser | None = None
    cluster: bool = True
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """A URL naming one node, as REDIS_URL does (in cluster mode, any node)."""
        scheme = "rediss" if self.tls else "redis"
        auth = f"{self.user.name}:{self.user.password}@" if self.user else ""
        query = f"?ssl_ca_certs={self.tls.ca_file}" if self.tls else ""
        return f"{scheme}://{auth}{_HOST}:{self.ports[0]}{query}"

    def cli(self, port: int, *args: str, timeout: float = 10.0) -> str:
        """redis-cli against one node, as the admin (default user; it keeps its access)."""
        command = ["redis-cli", "-h", _HOST, "-p", str(port)]
        if self.tls:
            command += ["--tls", "--cacert", str(self.tls.ca_file)]
        if self.user:
            command += ["--user", "default", "--pass", "admin-" + self.user.password]
        command += ["--no-auth-warning", *args]
        done = subprocess.run(  # noqa: S603 - redis-cli with our own arguments
            command, capture_output=True, timeout=timeout, check=True
        )
        return done.stdout.decode()

    def start_node(self, port: int) -> None:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = ["redis-server", "--bind", _HOST]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                # Its own bus port: the default (port + 10000) may be taken, or beyond 65535.
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "1000",
                # The rest of the cluster keeps serving while a slot has no master: the cache
                # must then fail open for that slot's keys only.
                "--cluster-require-full-coverage",
                "no",
            ]
        args += [
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(node_dir),
        ]
        if self.tls:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--tls-cluster",
                "yes",
                "--tls-replication",
                "yes",
                "--tls-cert-file",
                str(self.tls.cert_file),
                "--tls-key-file",
                str(self.tls.key_file),
                "--tls-ca-cert-file",
                str(self.tls.ca_file),
                "--tls-auth-clients",
                "no",
            ]
        else:
            args += ["--port", str(port)]
        if self.user:
            # The default user is the admin (the cluster bus and redis-cli use it); the
            # service's user may only read and write the cache's keys.
            admin = "admin-" + self.user.password
            args += ["--masterauth", admin, "--user", "default", "on", f">{admin}", "~*", "&*"]
            args += ["+@all", "--user", self.user.name, "on", f">{self.user.password}", "~pv:*"]
            args += ["-@all", *(f"+{command}" for command in SERVICE_COMMANDS)]
        log = (node_dir / "redis.log").open("ab")
        self.procs[port] = subprocess.Popen(  # noqa: S603 - redis-server, our own arguments
            args, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 10
        while not _listening(port):
            if self.procs[port].poll() is not None or time.monotonic() > deadline:
                tail = (node_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {port}:\n{tail}")
            time.sleep(0.02)

    def create(self) -> None:
        nodes = [f"{_HOST}:{port}" for port in self.ports]
        self.cli(
            self.ports[0],
            "--cluster",
            "create",
            *nodes,
            "--cluster-replicas",
            "1",
            "--cluster-yes",
            timeout=60,
        )
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0, ports: list[int] | None = None) -> None:
        """Until every running node reports cluster_state:ok and sees all 16384 slots."""
        deadline = time.monotonic() + timeout
        for port in ports or self.running():
            while True:
                info = self.cli(port, "cluster", "info")
                if "cluster_state:ok" in info and "cluster_slots_ok:16384" in info:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cluster not ok on {port}:\n{info}")
                time.sleep(0.1)

    def running(self) -> list[int]:
        return [port for port, proc in self.procs.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the running masters that serve slots."""
        out = []
        for line in self.cli(self.running()[0], "cluster", "nodes").splitlines():
            parts = line.split()
            flags = parts[2].split(",")
            if "master" in flags and "fail" not in flags and len(parts) > 8:
                out.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(out)

    def master_of(self, key: str) -> int:
        slot = int(self.cli(self.running()[0], "cluster", "keyslot", key).strip())
        for line in self.cli(self.running()[0], "cluster", "nodes").splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2]:
                continue
            for assigned in parts[8:]:
                low, _, high = assigned.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(parts[1].split("@")[0].rsplit(":", 1)[1])
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def redis_cluster(
    *, tls: TlsFiles | None = None, user: AclUser | None = None
) -> Iterator[RedisClusterNodes]:
    with tempfile.TemporaryDirectory(prefix="pv-redis-cluster-") as workdir:
        nodes = RedisClusterNodes(Path(workdir), [free_port() for _ in range(6)], tls, user)
        try:
            for port in nodes.ports:
                nodes.start_node(port)
            nodes.create()
            yield nodes
        finally:
            nodes.stop()


@contextlib.contextmanager
def redis_standalone(
    *, tls: TlsFiles | None = None, user: AclUser | None = None
) -> Iterator[RedisClusterNodes]:
    """One plain redis-server with the same TLS and ACL options."""
    with tempfile.TemporaryDirectory(prefix="pv-redis-") as workdir:
        nodes = RedisClusterNodes(Path(workdir), [free_port()], tls, user, cluster=False)
        try:
            nodes.start_node(nodes.ports[0])
            yield nodes
        finally:
            nodes.stop()
