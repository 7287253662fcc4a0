"""A private redis-server for tests that stop, pause or restart Redis under a running service,
which the shared Redis (REDIS_URL) must never be subjected to. Loopback only, no persistence."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from photovault_dev.ports import free_port

_HOST = "127.0.0.1"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process at a time on a fixed port: start, stop (SIGTERM), pause
    (SIGSTOP: the kernel still accepts connections, nothing answers) and resume (SIGCONT)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port(_HOST)  # redis-server takes it on its command line
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "redis-server is not running"
        return self._proc.pid

    def start(self, timeout: float = 10.0) -> None:
        assert self._proc is None, "redis-server is already running"
        log = (self._workdir / "redis.log").open("ab")
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                _HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = (self._workdir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._paused:
            self.resume_process(proc)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        assert self._proc is not None
        self.resume_process(self._proc)

    def resume_process(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        self._paused = False


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="pv-redis-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            yield server
        finally:
            server.stop()
