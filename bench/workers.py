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
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from photovault_server.auth import mint_token

from . import h2load
from .h2load import HEALTH
from .list_photos import SECRET, USER

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


def _round(workers: int, calls: list[h2load.Request], token: str, rates: Rates) -> None:
    with h2load.serving([h2load.PHOTOVAULT, "serve", "--workers", str(workers)]) as server:
        for call in calls:
            before = server.handled(call.method)
            cpu_before = server.cpu_seconds()
            load = h2load.run(
                f"http://127.0.0.1:{server.grpc_port}{call.path}",
                call.body,
                content_type="application/grpc",
                token=token,
                seconds=SECONDS,
                connections=CONNECTIONS,
                streams=STREAMS,
            )
            cpu = server.cpu_seconds() - cpu_before
            after = server.handled(call.method)
            # Warm-up calls are answered too: at least `done`; ListPhotos of both sizes share
            # a method, so its counts are checked, not attributed.
            failed = after[1] - before[1]
            if call.counted:
                assert after[0] + failed - before[0] >= load.done, f"{call.label}: not answered"
            rates.by_call.setdefault(call.label, {}).setdefault(workers, []).append(load.rate)
            rates.failed[call.label] = rates.failed.get(call.label, 0) + int(failed)
            rates.answered[call.label] = rates.answered.get(call.label, 0) + load.done
            # h2load's warm-up second is answered too: its calls are in `after - before`.
            answered = after[0] + failed - before[0] if call.counted else load.done
            per_cpu = rates.per_cpu_second.setdefault(call.label, {})
            per_cpu.setdefault(workers, []).append(answered / cpu if cpu > 0 else 0.0)
            print(f"  {workers} worker(s) {call.label}: {load.rate:,.0f}/s", file=sys.stderr)


def measure(rounds: int = ROUNDS) -> Rates | None:
    """None when h2load is not installed (Debian: nghttp2-client)."""
    if not h2load.available():
        print(f"workers: {h2load.MISSING}", file=sys.stderr)
        return None
    photo_id = asyncio.run(h2load.photo_id())
    token = mint_token(SECRET, USER)
    rates = Rates(h2load=h2load.version(), cpus=os.cpu_count() or 0)
    with tempfile.TemporaryDirectory() as tmp:
        calls = h2load.requests(Path(tmp), photo_id)
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
    shown = [call for call in rates.by_call if call != HEALTH]
    lines += [f"| {call} | {rates.of_health(call):.2f} |" for call in shown]
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        '    title "Rate as a fraction of the health check\'s, 1 worker (goals: 0.5 and 0.25)"',
        "    x-axis [" + ", ".join(f'"{c}"' for c in shown) + "]",
        '    y-axis "of the health-check rate" 0 --> 1',
        "    bar [" + ", ".join(f"{rates.of_health(c):.2f}" for c in shown) + "]",
        "```",
        "",
    ]
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
