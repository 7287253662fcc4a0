"""`photovault serve --workers N`: throughput of 2 workers against 1, the same server command
in the same run, loaded by h2load (nghttp2-client, a C client in its own process) over native
gRPC: the health check (the server's ceiling), GetPhoto (one row, its URLs from the cache) and
ListPhotos of 20 and 100, on many connections (SO_REUSEPORT spreads connections, not calls).

Rounds alternate 1 and 2 workers so drift in the machine's load (other processes share these
cores) hits both alike; the figure is the median of the rounds, the spread their min..max.
h2load counts HTTP/2 answers, and a gRPC error is an HTTP 200 too: after each round the server's
own /metrics must count every call OK, or the round is refused."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.auth import mint_token

from .list_photos import DATABASE_URL, REDIS_URL, SECRET, USER, prepare_database

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
SECONDS = 8  # of load per round and call
CONNECTIONS = 32
STREAMS = 2  # concurrent calls per connection
ROUNDS = 3


@dataclass
class Rates:
    """Calls per second, by call and worker count, one entry per round."""

    by_call: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    h2load: str = ""
    cpus: int = 0
    # Calls answered other than OK or CANCELLED (shed under the machine's load), and all.
    failed: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    # Calls answered per CPU-second the server's processes used (parent and workers), by
    # call and worker count: whether the workers had the cores, or shared them with the rest.
    per_cpu_second: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def efficiency(self, call: str, workers: int) -> float:
        return statistics.median(self.per_cpu_second[call][workers])

    def median(self, call: str, workers: int) -> float:
        return statistics.median(self.by_call[call][workers])

    def ratio(self, call: str) -> float:
        return self.median(call, 2) / self.median(call, 1)

    def of_health(self, call: str, workers: int = 1) -> float:
        """A call's rate as a fraction of the health check's, same server, same run."""
        return self.median(call, workers) / self.median(HEALTH, workers)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _env(grpc_port: int, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    env.update(
        PHOTOVAULT_GRPC_ADDR=f"127.0.0.1:{grpc_port}",
        PHOTOVAULT_HTTP_ADDR=f"127.0.0.1:{_free_port()}",
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


def _metrics(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
    except OSError:
        return None
    return text


def _handled(text: str, method: str) -> tuple[float, float]:
    """Calls of `method` answered OK, and failed (CANCELLED aside: h2load resets the streams
    still in flight when its time is up)."""
    ok = other = 0.0
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line:
            value = float(line.rpartition(" ")[2])
            if 'grpc_code="OK"' in line:
                ok += value
            elif 'grpc_code="CANCELLED"' not in line:
                other += value
    return ok, other


@dataclass(frozen=True)
class Load:
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


def _h2load(port: int, path: str, body: Path, token: str, seconds: float) -> tuple[float, int]:
    """Calls per second and calls answered, over `seconds`."""
    out = subprocess.run(
        [
            "h2load",
            f"--duration={seconds}",
            "--warm-up-time=1",
            f"--clients={CONNECTIONS}",
            f"--max-concurrent-streams={STREAMS}",
            "--threads=1",
            f"--data={body}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"--header=authorization: Bearer {token}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    assert rate, out
    assert done, out
    assert done.group(1) == done.group(2), out
    return float(rate.group(1)), int(done.group(1))


def _frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def _cpu_seconds(server: psutil.Process) -> float:
    total = 0.0
    for process in (server, *server.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _round(workers: int, calls: list[Load], token: str, rates: Rates) -> None:
    grpc_port, metrics_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [PHOTOVAULT, "serve", "--workers", str(workers)],
        env=_env(grpc_port, metrics_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = psutil.Process(proc.pid)
    try:
        deadline = time.monotonic() + 60
        while _metrics(metrics_port) is None:  # up once every worker listens
            assert proc.poll() is None, f"serve --workers {workers} exited"
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        for load in calls:
            before = _handled(_metrics(metrics_port) or "", load.method)
            cpu_before = _cpu_seconds(server)
            rate, done = _h2load(grpc_port, load.path, load.body, token, SECONDS)
            cpu = _cpu_seconds(server) - cpu_before
            after = _handled(_metrics(metrics_port) or "", load.method)
            # Warm-up calls are answered too: at least `done`; ListPhotos of both sizes share
            # a method, so its counts are checked, not attributed.
            failed = after[1] - before[1]
            if load.counted:
                assert after[0] + failed - before[0] >= done, f"{load.label}: not answered"
            rates.by_call.setdefault(load.label, {}).setdefault(workers, []).append(rate)
            rates.failed[load.label] = rates.failed.get(load.label, 0) + int(failed)
            rates.answered[load.label] = rates.answered.get(load.label, 0) + done
            # h2load's warm-up second is answered too: its calls are in `after - before`.
            answered = after[0] + failed - before[0] if load.counted else done
            per_cpu = rates.per_cpu_second.setdefault(load.label, {})
            per_cpu.setdefault(workers, []).append(answered / cpu if cpu > 0 else 0.0)
            print(f"  {workers} worker(s) {load.label}: {rate:,.0f}/s", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _photo_id() -> str:
    await prepare_database()
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        photo_id: str = str(await conn.fetchval("SELECT id FROM photos LIMIT 1"))
    finally:
        await conn.close()
    return photo_id


def measure(rounds: int = ROUNDS) -> Rates | None:
    """None when h2load is not installed (Debian: nghttp2-client)."""
    if shutil.which("h2load") is None:
        print("workers: h2load is missing (apt-get install nghttp2-client)", file=sys.stderr)
        return None
    photo_id = asyncio.run(_photo_id())
    token = mint_token(SECRET, USER)
    version = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    rates = Rates(h2load=version.strip().splitlines()[0], cpus=os.cpu_count() or 0)
    with tempfile.TemporaryDirectory() as tmp:
        service = "/photovault.v1.PhotoService/"
        requests: list[tuple[str, str, Message]] = [
            (HEALTH, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest()),
            ("GetPhoto", service + "GetPhoto", pb.GetPhotoRequest(id=photo_id)),
            ("ListPhotos(20)", service + "ListPhotos", pb.ListPhotosRequest(page_size=20)),
            ("ListPhotos(100)", service + "ListPhotos", pb.ListPhotosRequest(page_size=100)),
        ]
        calls = []
        for i, (label, path, request) in enumerate(requests):
            body = Path(tmp) / f"{i}.bin"
            body.write_bytes(_frame(request.SerializeToString()))
            calls.append(Load(label, path, body))
        for _ in range(rounds):
            for workers in (1, 2):
                _round(workers, calls, token, rates)
    return rates


def markdown(rates: Rates) -> list[str]:
    lines = [
        "## Every core: `serve --workers 2` against 1 worker",
        "",
        f"h2load ({rates.h2load}, one thread, its own process) on native gRPC: {CONNECTIONS} "
        f"connections, {STREAMS} calls in flight on each, {SECONDS} s per call and round; "
        f"`photovault serve --workers N` with log level WARNING, real Postgres and Redis on the "
        f"same {rates.cpus} CPUs. Rounds alternate 1 and 2 workers; median (min..max) of "
        f"{len(next(iter(rates.by_call.values()))[1])} rounds. The server's own /metrics "
        "counts each call's code: failed calls (neither OK nor CANCELLED by h2load's stop) "
        "are in the last column.",
        "",
        "| call | 1 worker, calls/s | 2 workers, calls/s | 2 vs 1 | calls per server "
        "CPU-second, 1 / 2 workers | failed / answered |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for call, by_workers in rates.by_call.items():
        one, two = by_workers[1], by_workers[2]
        lines.append(
            f"| {call} | {statistics.median(one):,.0f} ({min(one):,.0f}..{max(one):,.0f}) "
            f"| {statistics.median(two):,.0f} ({min(two):,.0f}..{max(two):,.0f}) "
            f"| {rates.ratio(call):.2f}x "
            f"| {rates.efficiency(call, 1):,.0f} / {rates.efficiency(call, 2):,.0f} "
            f"| {rates.failed.get(call, 0)} / "
            f"{rates.answered.get(call, 0):,} |"
        )
    calls = list(rates.by_call)
    top = max(statistics.median(v[2]) for v in rates.by_call.values())
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        '    title "Calls per second, 1 worker (first bar) and 2 workers (second bar)"',
        "    x-axis [" + ", ".join(f'"{c}"' for c in calls) + "]",
        f'    y-axis "calls/s" 0 --> {top * 1.1:.0f}',
        "    bar ["
        + ", ".join(f"{statistics.median(rates.by_call[c][1]):.0f}" for c in calls)
        + "]",
        "    bar ["
        + ", ".join(f"{statistics.median(rates.by_call[c][2]):.0f}" for c in calls)
        + "]",
        "```",
    ]
    lines += [
        "",
        "The hot path per core: each call's rate as a fraction of the health check's (grpc's",
        "own servicer, no database: the server's ceiling), 1 worker, same run.",
        "",
        "| call | of the health-check rate |",
        "|---|---:|",
    ]
    lines += [
        f"| {call} | {rates.of_health(call):.2f} |" for call in rates.by_call if call != HEALTH
    ]
    lines.append("")
    return lines


def goal_rows(rates: Rates, mark: Callable[[bool], str]) -> list[str]:
    rows = [
        f"| 2 workers ≥ 1.5x 1 worker's throughput ({call}) | {rates.ratio(call):.2f}x "
        f"| {mark(rates.ratio(call) >= 1.5)} |"
        for call in rates.by_call
    ]
    for call, goal in (("ListPhotos(20)", 0.5), ("ListPhotos(100)", 0.25)):
        if call in rates.by_call:
            share = rates.of_health(call)
            rows.append(
                f"| {call} ≥ {goal} of the health-check rate (1 worker) | {share:.2f} "
                f"| {mark(share >= goal)} |"
            )
    return rows


if __name__ == "__main__":
    measured = measure()
    if measured is not None:
        print("\n".join(markdown(measured)))
        print("\n".join(goal_rows(measured, lambda ok: "met" if ok else "**not met**")))
