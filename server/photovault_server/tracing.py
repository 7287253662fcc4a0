"""OpenTelemetry tracing, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `_TRACES_ENDPOINT`) is set:
a SERVER span per RPC on every transport (transport/calls.py), continuing an incoming W3C
`traceparent` (gRPC metadata or HTTP header), with child spans for Postgres and Redis from the
OpenTelemetry instrumentations and for S3 from the object store (aiobotocore is not botocore,
whose instrumentation does not reach it). Spans leave over OTLP/HTTP, configured by the
standard OTEL_* variables, read by the exporter itself.

Off (the default), nothing of OpenTelemetry is imported and each call pays one no-op context
manager (measured in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE = "photovault.v1.PhotoService"


class RpcSpan(Protocol):
    def finished(self, code: str) -> None:
        """The call's status code (its name), recorded on the span."""
        ...


class Tracing(Protocol):
    def rpc(
        self, method: str, transport: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[RpcSpan]:
        """The span of one call, current while it runs."""
        ...

    def span(self, name: str, **attributes: str) -> AbstractContextManager[object]:
        """A child span of whatever is current (a backend call)."""
        ...

    def shutdown(self) -> None:
        """Exports what is left and stops."""
        ...


class _NoSpan:
    def finished(self, code: str) -> None:
        return None


_NO_SPAN = _NoSpan()


class NoTracing:
    def rpc(
        self, method: str, transport: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[RpcSpan]:
        return nullcontext(_NO_SPAN)

    def span(self, name: str, **attributes: str) -> AbstractContextManager[object]:
        return nullcontext()

    def shutdown(self) -> None:
        return None


NO_TRACING = NoTracing()


class _RpcSpan:
    def __init__(self, span: Any) -> None:
        self._span = span

    def finished(self, code: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("rpc.grpc.status_code_name", code)
        if code in ("INTERNAL", "UNKNOWN", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED"):
            self._span.set_status(Status(StatusCode.ERROR, code))


class OpenTelemetryTracing:
    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("photovault")
        self._propagator = TraceContextTextMapPropagator()
        self._instrumentors: list[Any] = [
            AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
            RedisInstrumentor(),
        ]
        for instrumentor in self._instrumentors:
            instrumentor.instrument(tracer_provider=provider)

    @contextmanager
    def _rpc(self, method: str, transport: str, headers: Mapping[str, str]) -> Iterator[RpcSpan]:
        from opentelemetry.trace import SpanKind

        parent = self._propagator.extract(headers)
        with self._tracer.start_as_current_span(
            f"{SERVICE}/{method}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": SERVICE,
                "rpc.method": method,
                "photovault.transport": transport,
            },
            record_exception=False,  # the exception's text may hold URLs; the code is enough
        ) as span:
            yield _RpcSpan(span)

    def rpc(
        self, method: str, transport: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[RpcSpan]:
        return self._rpc(method, transport, headers)

    def span(self, name: str, **attributes: str) -> AbstractContextManager[object]:
        from opentelemetry.trace import SpanKind

        return self._tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False
        )

    def shutdown(self) -> None:
        for instrumentor in self._instrumentors:
            instrumentor.uninstrument()
        self._provider.shutdown()


def start_tracing(
    endpoint: str, service_name: str, *, exporter: SpanExporter | None = None
) -> Tracing:
    """Tracing to `endpoint` over OTLP/HTTP (or to `exporter`, for tests); NO_TRACING when
    neither is given."""
    if not endpoint and exporter is None:
        return NO_TRACING
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, headers, timeout itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return OpenTelemetryTracing(provider)
