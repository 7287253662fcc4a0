"""The Lambda entry point: `handler(event, context)` (the Dockerfile's CMD).

One event loop, one App (asyncpg pool, Redis client, S3 client) and one WebGateway per
execution environment, created on the first invocation and reused by warm ones; imports are
kept light so the init phase stays short. Requests are Function URL / HTTP API (payload 2.0)
or REST API (1.0) events carrying gRPC-web or Connect; the gateway's codec answers them exactly
as `photovault serve` does, CORS included (so the Function URL must not add its own).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from photovault_server.lambda_events import BadEvent, http_response, parse_event

if TYPE_CHECKING:
    from photovault_server.app import App
    from photovault_server.transport.web import WebGateway

# Lambda's response payload limit; asserted on every response.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# The bound on a reply's protobuf: ListPhotos pages are cut to fit. A third of the response
# limit, less room for headers: Connect's JSON is ASCII, at most three times the protobuf
# (a 2-byte character becomes \uXXXX, a 4-byte one two of them), and base64 of a binary body
# (gRPC-web, Lambda's binary bodies) is 4/3 of it.
MAX_REPLY_BYTES = (MAX_RESPONSE_BYTES - 64 * 1024) // 3
# Time kept back from the invocation's remaining time, to answer before Lambda kills us.
DEADLINE_MARGIN_SECONDS = 0.5
# A scheduled sweep stops starting new batches this long before the invocation's timeout.
SWEEP_MARGIN_SECONDS = 5.0
# After this long without an invocation the environment was probably frozen: its pooled
# database connections may be dead, so they are replaced before use.
IDLE_RECONNECT_SECONDS = 30.0

_loop = asyncio.new_event_loop()

# The init (this import, then the first invocation's imports and app) allocates what the
# environment keeps for its whole life: modules, classes, the app. Each collection during it
# traverses all of that again and finds next to no garbage: measured, a fifth of the init's CPU
# time (bench/cold_start.py, docs/benchmarks.md). So in a Lambda environment collections wait
# until the first invocation has answered, and what exists then is frozen out of later ones.
_collect_after_first_invocation = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and gc.isenabled()
if _collect_after_first_invocation:
    gc.disable()


def _end_of_init() -> None:
    global _collect_after_first_invocation
    if _collect_after_first_invocation:
        _collect_after_first_invocation = False
        gc.freeze()
        gc.enable()


class _Runtime:
    """What one execution environment keeps between invocations."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.app: App | None = None
        self.gateway: WebGateway | None = None
        self.trust_authorizer = False
        self.last_invocation = 0.0
        self.counters: dict[str, int] = {}
        self.rpc_calls: dict[tuple[str, str, str], int] = {}
        self.rpc_seconds: dict[tuple[str, str], float] = {}

    async def ensure_started(self) -> tuple[App, WebGateway]:
        if self.app is None or self.gateway is None:
            _import_redis_without_its_metrics_sdk()
            import structlog

            from photovault_server.app import open_app
            from photovault_server.logs import configure_logging
            from photovault_server.settings import load_settings
            from photovault_server.transport.web import web_gateway

            started = time.perf_counter()
            settings = load_settings()
            configure_logging(settings.log_level, settings.log_format)
            self.app = await self.stack.enter_async_context(open_app(settings))
            self.gateway = web_gateway(self.app, max_reply_bytes=MAX_REPLY_BYTES)
            self.trust_authorizer = settings.trust_api_gateway_authorizer
            structlog.get_logger("photovault.lambda").info(
                "app_started", ms=round((time.perf_counter() - started) * 1000, 1)
            )
        return self.app, self.gateway


_runtime = _Runtime()

# redis-py (8.x) imports the OpenTelemetry metrics SDK with itself whenever it is installed (it
# is here, for tracing), for an opt-in instrumentation this service never turns on: measured
# ~20 ms of the init (bench/cold_start.py, docs/benchmarks.md). Hidden while redis is imported,
# redis takes its "SDK not installed" branch; nothing else imports the metrics SDK.
_REDIS_OPTIONAL = "opentelemetry.sdk.metrics"


def _import_redis_without_its_metrics_sdk() -> None:
    if "redis" in sys.modules or _REDIS_OPTIONAL in sys.modules:
        return
    sys.modules[_REDIS_OPTIONAL] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import redis.asyncio  # noqa: F401
    finally:
        del sys.modules[_REDIS_OPTIONAL]


def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        return _loop.run_until_complete(_handle(event, context))
    finally:
        _end_of_init()


async def _handle(event: Any, context: Any) -> dict[str, Any]:
    import structlog

    from photovault_server.transport.web import HttpRequest

    if _is_scheduled(event):
        from datetime import timedelta

        app, _ = await _runtime.ensure_started()
        remaining = context.get_remaining_time_in_millis() / 1000 if context else None
        budget = (
            None
            if remaining is None
            else timedelta(seconds=max(remaining - SWEEP_MARGIN_SECONDS, 0.0))
        )
        report = await app.service.sweep(time_budget=budget)
        structlog.get_logger("photovault.lambda").info(
            "swept",
            uploads=report.expired_uploads,
            deleted_objects=report.deleted_objects,
            aborted_incomplete_multipart=report.aborted_incomplete_multipart,
            deleted_trashed_photos=report.deleted_trashed_photos,
            finished=report.finished,
        )
        return {
            "swept": report.expired_uploads,
            "deleted_objects": report.deleted_objects,
            "aborted_incomplete_multipart": report.aborted_incomplete_multipart,
            "deleted_trashed_photos": report.deleted_trashed_photos,
            "finished": report.finished,
        }
    try:
        request = parse_event(event)
    except BadEvent as exc:
        return http_response("2.0", 400, [("content-type", "text/plain")], f"{exc}\n".encode())
    version = request.version
    app, gateway = await _runtime.ensure_started()
    now = time.monotonic()
    if _runtime.last_invocation and now - _runtime.last_invocation > IDLE_RECONNECT_SECONDS:
        await app.pool.expire_connections()
        if app.read_router is not None:  # the replica's connections were frozen alike
            await app.read_router.replica.expire_connections()
    _runtime.last_invocation = now

    remaining = context.get_remaining_time_in_millis() / 1000 if context else None
    cap = max(remaining - DEADLINE_MARGIN_SECONDS, 0.001) if remaining is not None else None
    request_id = getattr(context, "aws_request_id", "")
    with structlog.contextvars.bound_contextvars(lambda_request_id=request_id):
        response = await gateway.handle(
            HttpRequest(request.method, request.path, request.headers, request.body),
            deadline_cap=cap,
            verified_claims=request.jwt_claims if _runtime.trust_authorizer else None,
        )
    _emit_metrics(app)
    result = http_response(version, response.status, response.headers, response.body)
    # Cannot happen with MAX_REPLY_BYTES; if it ever did, Lambda would drop the reply whole.
    assert len(result["body"]) <= MAX_RESPONSE_BYTES, "response over Lambda's 6 MB limit"
    return result


def _is_scheduled(event: Any) -> bool:
    """The template's hourly sweep (EventBridge Scheduler with that input, or a classic
    EventBridge rule's scheduled event), not an HTTP request."""
    return isinstance(event, dict) and (
        event.get("photovault") == "sweep" or event.get("detail-type") == "Scheduled Event"
    )


def _emit_metrics(app: App) -> None:
    """The URL counters as a CloudWatch EMF line (deltas since the last invocation), and one
    line per RPC outcome with its method, code and transport as dimensions: stdout lines, no
    client library, nothing on the cold-start path."""
    from photovault_server.observability import Sources, counter_fields, write_emf

    current = counter_fields(Sources.of(app))
    delta = {k: v - _runtime.counters.get(k, 0) for k, v in current.items()}
    _runtime.counters = current
    if any(delta.values()):
        write_emf(
            ["Service"], {"Service": "photovault"}, {n: (v, "Count") for n, v in delta.items()}
        )
    for (method, code, transport), count in app.rpc_stats.handled.items():
        calls = count - _runtime.rpc_calls.get((method, code, transport), 0)
        if calls <= 0:
            continue
        _runtime.rpc_calls[(method, code, transport)] = count
        latencies = app.rpc_stats.latencies[(method, transport)]
        seen = _runtime.rpc_seconds.get((method, transport), 0.0)
        _runtime.rpc_seconds[(method, transport)] = latencies.total
        write_emf(
            ["Service", "Method", "Code", "Transport"],
            {"Service": "photovault", "Method": method, "Code": code, "Transport": transport},
            {
                "grpc_server_handled": (calls, "Count"),
                # One call per invocation: its own time (else the mean of those just counted).
                "grpc_server_handling_ms": (
                    (latencies.total - seen) * 1000 / calls,
                    "Milliseconds",
                ),
            },
        )
