"""`make soak`'s overload phase (SOAK_OVERLOAD=0 skips it): one `photovault serve` with a small
pool, a short acquire timeout and a low cap on concurrent calls; SOAK_OVERLOAD_CLIENTS clients
for SOAK_OVERLOAD_CALM_SECONDS, then four times as many for SOAK_OVERLOAD_SECONDS, then the
first number again. Every call must succeed or be shed (UNAVAILABLE: the cap or the pool;
RESOURCE_EXHAUSTED) within the acquire timeout; the successful ones' p99 stays bounded; nothing
is lost (the integrity checks); and once the load drops, nothing is shed any more.

Runs alone too: `python -m soak.overload` prints its figures."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field

from .clients import Call, Client, Recorder, RpcFailed, make_clients
from .infra import BUCKET, phase_backends, s3_client
from .probes import Integrity, check_integrity

SHED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
LOAD_FACTOR = 4
# A shed call is answered within the acquire timeout, plus this for the round trip.
SHED_SLACK_SECONDS = 0.5
# Calls that start this long after the load drops must not be shed any more.
RECOVERY_SECONDS = 1.0


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class OverloadConfig:
    clients: int = int(_env("SOAK_OVERLOAD_CLIENTS", 10))
    seconds: float = _env("SOAK_OVERLOAD_SECONDS", 20)
    calm_seconds: float = _env("SOAK_OVERLOAD_CALM_SECONDS", 5)
    pool_max: int = int(_env("SOAK_OVERLOAD_POOL_MAX_SIZE", 4))
    acquire_timeout_ms: int = int(_env("SOAK_OVERLOAD_ACQUIRE_TIMEOUT_MS", 500))
    max_concurrent_calls: int = int(_env("SOAK_OVERLOAD_MAX_CONCURRENT_CALLS", 16))
    # The bound on the successful calls' p99 under overload: waiting for a connection (each
    # database step of a call may wait up to the acquire timeout) and the work itself.
    p99_limit_ms: float = _env("SOAK_OVERLOAD_P99_MS", 3000)
    photos_each: int = int(_env("SOAK_SEED_PHOTOS", 3))


@dataclass(frozen=True)
class Phase:
    name: str
    clients: int
    start: float
    end: float
    calls: list[Call]

    def ok(self) -> list[Call]:
        return [c for c in self.calls if c.code == "OK"]

    def shed(self) -> list[Call]:
        return [c for c in self.calls if c.code in SHED]

    def other(self) -> list[Call]:
        return [c for c in self.calls if c.code != "OK" and c.code not in SHED]


def _cause(message: str) -> str:
    """Which limit shed a call, from its message (transport/admission.py, postgres.py)."""
    text = message.lower()
    if "overloaded" in text:
        return "the call cap"
    if "busy" in text:
        return "no pool connection in time"
    if "too many calls" in text:
        return "the rate limit"
    return message[:60] or "no message"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class OverloadFigures:
    config: OverloadConfig
    phases: list[Phase] = field(default_factory=list)
    integrity: Integrity | None = None
    recovered_after: float = float("nan")  # seconds from the drop to the last shed call's end
    shed_codes: dict[str, int] = field(default_factory=dict)

    @property
    def checks(self) -> list[tuple[str, bool, str]]:
        c = self.config
        calls = [call for phase in self.phases for call in phase.calls]
        other = [call for phase in self.phases for call in phase.other()]
        shed = [call for phase in self.phases for call in phase.shed()]
        overload = next((p for p in self.phases if p.name == "overload"), None)
        after = next((p for p in self.phases if p.name == "after"), None)
        p99 = _pct([x.ms for x in overload.ok()], 0.99) if overload else float("nan")
        slowest_shed = max((x.ms for x in shed), default=0.0)
        shed_limit = c.acquire_timeout_ms + SHED_SLACK_SECONDS * 1000
        late = (
            [x for x in after.shed() if x.started >= after.start + RECOVERY_SECONDS]
            if after
            else []
        )
        i = self.integrity
        intact = i is not None and not (
            i.users_mismatched or i.photos_without_object or i.orphan_objects
        )
        others = ", ".join(sorted({f"{x.code} ({x.rpc})" for x in other})[:5])
        return [
            ("every call succeeds or is shed", bool(calls) and not other, others or "all"),
            (
                f"shed calls answered within the acquire timeout (+{SHED_SLACK_SECONDS:g} s)",
                slowest_shed <= shed_limit,
                f"slowest {slowest_shed:.0f} ms",
            ),
            (
                f"p99 of successful calls under overload <= {c.p99_limit_ms:.0f} ms",
                p99 <= c.p99_limit_ms,
                f"{p99:.0f} ms",
            ),
            (
                "the overload is shed at all (the limits are reached)",
                bool(overload and overload.shed()),
                f"{len(overload.shed()) if overload else 0:,} shed",
            ),
            (
                f"nothing shed {RECOVERY_SECONDS:g} s after the load drops",
                after is not None and not late,
                f"{len(late)} shed",
            ),
            (
                "nothing lost (usage = photos, every photo's object, no orphan)",
                intact,
                "intact" if intact else str(i),
            ),
        ]

    @property
    def all_met(self) -> bool:
        return all(met for _, met, _ in self.checks)

    def lines(self) -> list[str]:
        c = self.config
        rows = []
        for p in self.phases:
            ok = p.ok()
            rows.append(
                f"| {p.name} | {p.clients} | {p.end - p.start:.0f} s | {len(p.calls):,} | "
                f"{len(ok) / max(p.end - p.start, 1e-9):.0f}/s | {len(p.shed()):,} | "
                f"{len(p.other())} | {_pct([x.ms for x in ok], 0.5):.0f} / "
                f"{_pct([x.ms for x in ok], 0.99):.0f} | "
                f"{max((x.ms for x in p.shed()), default=0):.0f} |"
            )
        codes = ", ".join(f"{code} {n:,}" for code, n in sorted(self.shed_codes.items()))
        return [
            "## Overload: four times the clients",
            "",
            f"One `photovault serve` with PHOTOVAULT_DB_POOL_MAX_SIZE={c.pool_max}, "
            f"PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS={c.acquire_timeout_ms}, "
            f"PHOTOVAULT_MAX_CONCURRENT_CALLS={c.max_concurrent_calls}; "
            f"SOAK_OVERLOAD_CLIENTS={c.clients} clients (half native gRPC, half gRPC-web), "
            f"then {LOAD_FACTOR}x for SOAK_OVERLOAD_SECONDS={c.seconds:g}, then "
            f"{c.clients} again. Clients retry after 50 ms when shed.",
            "",
            "| phase | clients | length | calls | OK rate | shed | other failures | "
            "OK p50 / p99 ms | slowest shed ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Shed by code: {codes or 'none'}; the last shed call ended "
            f"{self.recovered_after:.2f} s after the load dropped.",
            "",
            "| expectation | result | measured |",
            "|---|---|---|",
            *(
                f"| {text} | {'met' if met else '**NOT met**'} | {measured} |"
                for text, met, measured in self.checks
            ),
            "",
        ]


async def _seed(clients: list[Client], photos_each: int) -> None:
    """Photos to list and get; the service sheds at start too (its pool connecting) and a
    client here does what any client would: retry after a shed call."""

    async def one(client: Client) -> None:
        for _ in range(photos_each * 20):
            if len(client.photos) >= photos_each:
                return
            try:
                await client.upload()
            except RpcFailed as exc:
                if exc.code not in SHED:
                    raise
                await asyncio.sleep(0.1)

    await asyncio.gather(*(one(c) for c in clients))


async def _phase(name: str, clients: list[Client], seconds: float, recorder: Recorder) -> Phase:
    first = len(recorder.calls)
    stop = asyncio.Event()
    start = time.monotonic()  # the clock of the calls' records
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)  # every call in flight answered: none is left behind
    return Phase(name, len(clients), start, time.monotonic(), recorder.calls[first:])


async def overload_soak(config: OverloadConfig) -> OverloadFigures:
    figures = OverloadFigures(config)
    run_id = uuid.uuid4().hex[:8]
    async with phase_backends("pv-soak-overload-") as backends:
        service = await asyncio.to_thread(
            backends.service,
            "serve-overload.log",
            extra_env={
                "PHOTOVAULT_DB_POOL_MAX_SIZE": str(config.pool_max),
                "PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS": str(config.acquire_timeout_ms),
                "PHOTOVAULT_MAX_CONCURRENT_CALLS": str(config.max_concurrent_calls),
            },
        )
        try:
            recorder = Recorder()
            clients = await make_clients(
                config.clients * LOAD_FACTOR,
                service.grpc_port,
                service.http_port,
                recorder,
                run_id,
            )
            calm = clients[: config.clients]
            await _seed(calm, config.photos_each)
            recorder.calls.clear()
            recorder.puts.clear()
            figures.phases.append(await _phase("before", calm, config.calm_seconds, recorder))
            figures.phases.append(await _phase("overload", clients, config.seconds, recorder))
            drop = time.monotonic()
            figures.phases.append(await _phase("after", calm, config.calm_seconds, recorder))
            shed = [c for p in figures.phases for c in p.shed()]
            figures.recovered_after = max(
                (c.ended - drop for c in shed if c.ended >= drop), default=0.0
            )
            for call in shed:
                why = f"{call.code} ({_cause(call.message)})"
                figures.shed_codes[why] = figures.shed_codes.get(why, 0) + 1
            for client in clients:
                await client.transport.close()
                await client.http.aclose()
            figures.integrity = await check_integrity(
                backends.postgres.url, s3_client(backends.moto.endpoint), BUCKET
            )
        finally:
            service.stop()
    return figures


def main() -> int:
    figures = asyncio.run(overload_soak(OverloadConfig()))
    print("\n".join(figures.lines()))
    return 0 if figures.all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
