"""What tracing costs a call: the call pipeline (transport/calls.py) run in process on a
GetAccount-shaped handler that does no I/O, with tracing off (the default: a no-op context
manager) and on (OpenTelemetry's SDK, a span per call handed to an exporter that drops it),
interleaved round by round. The pipeline's own cost without any tracing code is not separately
measurable any more: "off" is the baseline a call pays."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.auth import AuthConfig, TokenVerifier, mint_token
from photovault_server.tracing import NO_TRACING, Tracing, start_tracing
from photovault_server.transport.calls import Call, CallPipeline
from photovault_server.transport.handlers import Method

SECRET = "bench-tracing-" + "x" * 32


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(frozen=True)
class TracingCost:
    off_us: float
    on_us: float
    hook_off_us: float  # what the tracing hook itself costs a call when off


def _hook_off_us(n: int = 200_000) -> float:
    """The one thing tracing adds to a call when off: entering and leaving its no-op span."""
    started = time.perf_counter()
    for _ in range(n):
        with NO_TRACING.rpc("GetAccount", "grpc", {}) as span:
            span.finished("OK")
    return (time.perf_counter() - started) / n * 1e6


async def _account(user: str, request: Any) -> pb.GetAccountResponse:
    return pb.GetAccountResponse(account={"user_id": user})


async def _per_call_us(pipeline: CallPipeline, headers: dict[str, str], n: int) -> float:
    method = Method("GetAccount", pb.GetAccountRequest, pb.GetAccountResponse, _account)
    started = time.perf_counter()
    for _ in range(n):
        await pipeline.run(Call(method, "grpc", headers, decode=pb.GetAccountRequest))
    return (time.perf_counter() - started) / n * 1e6


async def _measure(rounds: int, n: int) -> TracingCost:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    verifier = TokenVerifier(AuthConfig(secret=SECRET))
    headers = {"authorization": f"Bearer {mint_token(SECRET, 'bench')}"}
    on: Tracing = start_tracing("", "bench", exporter=_Drop())
    pipelines = {
        "off": CallPipeline(verifier, tracing=NO_TRACING),
        "on": CallPipeline(verifier, tracing=on),
    }
    samples: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _ in range(rounds):
            for name, pipeline in pipelines.items():
                samples[name].append(await _per_call_us(pipeline, headers, n))
    finally:
        on.shutdown()
    return TracingCost(
        statistics.median(samples["off"]), statistics.median(samples["on"]), _hook_off_us()
    )


def measure(rounds: int = 15, n: int = 400) -> TracingCost:
    return asyncio.run(_measure(rounds, n))


def report(cost: TracingCost) -> None:
    print(
        f"call pipeline per call: tracing off {cost.off_us:.1f} µs, on {cost.on_us:.1f} µs "
        f"({cost.on_us / cost.off_us:.2f}x); the hook when off {cost.hook_off_us:.2f} µs "
        f"({cost.hook_off_us / cost.off_us:.1%} of a call)"
    )


if __name__ == "__main__":
    report(measure())
