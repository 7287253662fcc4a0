"""Native gRPC against the gRPC-web gateway, both listeners of one `photovault serve`, loaded by
h2load from its own process (so the figures are the server's, not a Python client's):
GetPhoto and ListPhotos of 20 and 100, one call at a time on one connection (latency) and 64
calls in flight (throughput: 32 HTTP/2 connections with 2 streams each for gRPC; 64 HTTP/1.1
connections for gRPC-web, one call each, as browsers send them).

The same server on asyncio's event loop is measured beside it (`serve` runs on uvloop's:
server.py, `run_serving`), the loads interleaved round by round, so that the choice of loop
has its figures in the same run."""

from __future__ import annotations

import asyncio
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

SECONDS = 4  # of load per figure and round
ROUNDS = 2
CALLS = ("GetPhoto", "ListPhotos(20)", "ListPhotos(100)")
# Each listener's floor: grpc's own health servicer, and the gateway's GET /healthz (a flag
# the readiness loop keeps): no pipeline, no database.
FLOOR = HEALTH
ONE = "1 call at a time"
MANY = "64 in flight"
NATIVE = "native gRPC"
WEB = "gRPC-web binary"
UVLOOP = "uvloop (serve's)"
ASYNCIO = "asyncio"

# `photovault serve` as it was before uvloop: the same server on asyncio's own loop.
_SERVE_ON_ASYNCIO = """
import asyncio
from photovault_server.logs import configure_logging
from photovault_server.server import serve
from photovault_server.settings import load_settings
settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
asyncio.run(serve(settings))
"""
SERVERS = {
    UVLOOP: [h2load.PHOTOVAULT, "serve"],
    ASYNCIO: [sys.executable, "-c", _SERVE_ON_ASYNCIO],
}


@dataclass
class Protocols:
    client: str = ""  # h2load's version
    # (loop, call, load, protocol) -> one figure per round
    loads: dict[tuple[str, str, str, str], list[h2load.Load]] = field(default_factory=dict)
    failed: int = 0
    answered: int = 0

    def rate(self, call: str, load: str, protocol: str, loop: str = UVLOOP) -> float:
        return statistics.median(x.rate for x in self.loads[loop, call, load, protocol])

    def p50_ms(self, call: str, protocol: str, loop: str = UVLOOP) -> float:
        return statistics.median(x.p50_ms for x in self.loads[loop, call, ONE, protocol])

    def native_vs_web(self, call: str, load: str) -> float:
        """Native calls/s over gRPC-web's: ≥ 1 when native is at least as fast."""
        return self.rate(call, load, NATIVE) / self.rate(call, load, WEB)


def _round(loop: str, calls: list[h2load.Request], token: str, results: Protocols) -> None:
    with h2load.serving(SERVERS[loop]) as server:
        for call in calls:
            for load, connections, streams in ((ONE, 1, 1), (MANY, 32, 2)):
                for protocol in (NATIVE, WEB):
                    web = protocol == WEB
                    port = server.http_port if web else server.grpc_port
                    floor = call.label == FLOOR
                    path = "/healthz" if floor and web else call.path
                    before = server.handled(call.method)
                    figure = h2load.run(
                        f"http://127.0.0.1:{port}{path}",
                        None if floor and web else call.body,
                        content_type="application/grpc-web+proto" if web else "application/grpc",
                        token=token,
                        seconds=SECONDS,
                        connections=connections * streams if web else connections,
                        streams=1 if web else streams,
                        http1=web,
                    )
                    after = server.handled(call.method)
                    ok, failed = after[0] - before[0], after[1] - before[1]
                    if call.counted:  # the health checks are not the pipeline's calls
                        assert ok + failed >= figure.done, f"{call.label} {protocol}: unanswered"
                    results.failed += int(failed)
                    results.answered += figure.done
                    results.loads.setdefault((loop, call.label, load, protocol), []).append(figure)
                    print(
                        f"  {loop} {call.label} {load} {protocol}: {figure.rate:,.0f}/s "
                        f"p50 {figure.p50_ms:.2f} ms",
                        file=sys.stderr,
                    )


def measure(rounds: int = ROUNDS) -> Protocols | None:
    """None when h2load is not installed (Debian: nghttp2-client)."""
    if not h2load.available():
        print(f"protocols: {h2load.MISSING}", file=sys.stderr)
        return None
    photo_id = asyncio.run(h2load.photo_id())
    token = mint_token(SECRET, USER)
    results = Protocols(client=h2load.version())
    with tempfile.TemporaryDirectory() as tmp:
        calls = h2load.requests(Path(tmp), photo_id)
        for _ in range(rounds):
            for loop in SERVERS:
                _round(loop, calls, token, results)
    return results


def markdown(results: Protocols) -> list[str]:
    lines = [
        "## Native gRPC against the gateway, loaded from another process",
        "",
        f"h2load ({results.client}, one thread, its own process) against one `photovault "
        f"serve` (1 worker, log level WARNING): {ONE} on one connection, and {MANY} (32 HTTP/2 "
        "connections x 2 streams for gRPC; 64 HTTP/1.1 connections for gRPC-web, as "
        f"browsers send them); {SECONDS} s per figure, median of {ROUNDS} rounds, the servers "
        "and loads interleaved round by round (bench/protocols.py). The server's /metrics "
        f"counted {results.failed} failed calls of {results.answered:,}.",
        "",
        f"The {FLOOR} rows are each listener's floor: grpc's own health servicer, and the",
        "gateway's GET /healthz (a flag the readiness loop keeps): no pipeline, no database.",
        "",
        "| call | load | native gRPC calls/s | gRPC-web calls/s | native vs gRPC-web "
        "| native p50 ms | gRPC-web p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for call in (FLOOR, *CALLS):
        for load in (ONE, MANY):
            p50 = (
                f"| {results.p50_ms(call, NATIVE):.2f} | {results.p50_ms(call, WEB):.2f} |"
                if load == ONE
                else "| | |"
            )
            lines.append(
                f"| {call} | {load} | {results.rate(call, load, NATIVE):,.0f} "
                f"| {results.rate(call, load, WEB):,.0f} "
                f"| {results.native_vs_web(call, load):.2f}x {p50}"
            )
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "Calls per second, {MANY}: native gRPC (first bar), gRPC-web (second)"',
        "    x-axis [" + ", ".join(f'"{c}"' for c in CALLS) + "]",
        f'    y-axis "calls/s" 0 --> {max(results.rate(c, MANY, p) for c in CALLS for p in (NATIVE, WEB)) * 1.1:.0f}',  # noqa: E501
        "    bar [" + ", ".join(f"{results.rate(c, MANY, NATIVE):.0f}" for c in CALLS) + "]",
        "    bar [" + ", ".join(f"{results.rate(c, MANY, WEB):.0f}" for c in CALLS) + "]",
        "```",
        "",
        f"The event loop: the same server on asyncio's loop, {MANY}, calls/s.",
        "",
        "| call | protocol | asyncio | uvloop (serve's) | uvloop vs asyncio |",
        "|---|---|---:|---:|---:|",
    ]
    for call in CALLS:
        for protocol in (NATIVE, WEB):
            slow = results.rate(call, MANY, protocol, ASYNCIO)
            fast = results.rate(call, MANY, protocol, UVLOOP)
            lines.append(
                f"| {call} | {protocol} | {slow:,.0f} | {fast:,.0f} | {fast / slow:.2f}x |"
            )
    lines.append("")
    return lines


def goal_rows(results: Protocols, mark: Callable[[bool], str]) -> list[str]:
    rows = []
    for call in ("GetPhoto", "ListPhotos(20)"):
        latency = results.p50_ms(call, WEB) / results.p50_ms(call, NATIVE)
        throughput = results.native_vs_web(call, MANY)
        rows += [
            f"| native gRPC p50 ≤ gRPC-web's ({call}, {ONE}) | native "
            f"{results.p50_ms(call, NATIVE):.2f} ms, gRPC-web {results.p50_ms(call, WEB):.2f} ms "
            f"| {mark(latency >= 1)} |",
            f"| native gRPC calls/s ≥ gRPC-web's ({call}, {MANY}) | {throughput:.2f}x "
            f"| {mark(throughput >= 1)} |",
        ]
    return rows


if __name__ == "__main__":
    measured = measure()
    if measured is not None:
        print("\n".join(markdown(measured)))
        print("\n".join(goal_rows(measured, lambda ok: "met" if ok else "**not met**")))
