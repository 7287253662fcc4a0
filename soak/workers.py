"""`make soak`'s workers phase: the same client mix against `photovault serve --workers 2` and,
beside it in the same run, `--workers 1`, each for SOAK_WORKERS_SECONDS. Figures: calls and
failures of each, calls per second, and the resident memory of each serving process after its
load (the goal: at most 150 MiB a worker). The clients run in this one process, so on a small
machine they, not the server, may bound the calls per second: the ratio is a floor."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .clients import Recorder, make_clients, seed
from .infra import Service, phase_backends

RSS_GOAL_MIB = 150


@dataclass(frozen=True)
class WorkersConfig:
    seconds: float = float(os.environ.get("SOAK_WORKERS_SECONDS", "15"))
    clients: int = int(os.environ.get("SOAK_WORKERS_CLIENTS", "20"))
    photos_each: int = int(os.environ.get("SOAK_SEED_PHOTOS", "3"))


@dataclass(frozen=True)
class WorkersRun:
    workers: int
    calls: int
    failed_calls: int
    seconds: float
    rss_mib: list[float]  # each serving process (the workers; the server itself with one)

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds


@dataclass(frozen=True)
class WorkersFigures:
    config: WorkersConfig
    runs: list[WorkersRun]  # 2 workers, then 1

    @property
    def all_met(self) -> bool:
        return all(r.failed_calls == 0 and max(r.rss_mib) <= RSS_GOAL_MIB for r in self.runs)

    def lines(self) -> list[str]:
        two, one = self.runs
        return [
            "## Workers: `serve --workers 2` and, beside it, `--workers 1`",
            "",
            f"The same mix from {self.config.clients} clients in this process for "
            f"SOAK_WORKERS_SECONDS={self.config.seconds:g} each; resident memory of every "
            f"serving process after its load (goal ≤ {RSS_GOAL_MIB} MiB a worker).",
            "",
            "| workers | calls (failed) | calls/s | RSS per serving process, MiB |",
            "|---:|---:|---:|---|",
            *(
                f"| {r.workers} | {r.calls:,} ({r.failed_calls}) | {r.per_second:,.0f} "
                f"| {', '.join(f'{m:.0f}' for m in r.rss_mib)} |"
                for r in self.runs
            ),
            "",
            f"2 workers served {two.per_second / max(one.per_second, 1e-9):.2f}x the calls per "
            "second of 1 (a floor: the clients share this machine's cores with the server).",
            "",
        ]


def _workers_of(pid: int) -> list[int]:
    """The worker processes of a `serve --workers N` parent: its children started by
    multiprocessing's spawn, not its resource tracker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
        if int(stat.rpartition(")")[2].split()[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _run(config: WorkersConfig, service: Service, workers: int, run_id: str) -> WorkersRun:
    recorder = Recorder()
    clients = await make_clients(
        config.clients, service.grpc_port, service.http_port, recorder, run_id
    )
    await seed(clients, config.photos_each)
    recorder.calls.clear()
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    await asyncio.sleep(config.seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for client in clients:
        await client.transport.close()
        await client.http.aclose()
    serving = _workers_of(service.pid) if workers > 1 else [service.pid]
    if len(serving) != workers:
        raise RuntimeError(f"expected {workers} serving processes, found {serving}")
    return WorkersRun(
        workers=workers,
        calls=len(recorder.calls),
        failed_calls=sum(1 for c in recorder.calls if c.code != "OK"),
        seconds=elapsed,
        rss_mib=sorted(_rss_mib(pid) for pid in serving),
    )


async def workers_soak(config: WorkersConfig) -> WorkersFigures:
    runs: list[WorkersRun] = []
    async with phase_backends("pv-soak-workers-") as backends:
        for workers in (2, 1):
            service = await asyncio.to_thread(
                backends.service,
                f"serve-workers-{workers}.log",
                serve_args=["--workers", str(workers)],
            )
            try:
                runs.append(await _run(config, service, workers, uuid.uuid4().hex[:8]))
            finally:
                service.stop()
    return WorkersFigures(config, runs)


if __name__ == "__main__":
    # This phase alone: `python -m soak.workers`.
    figures = asyncio.run(workers_soak(WorkersConfig()))
    print("\n".join(figures.lines()))
    raise SystemExit(0 if figures.all_met else 1)
