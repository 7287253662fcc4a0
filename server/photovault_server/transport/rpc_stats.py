"""Per-RPC counts and latencies, recorded by the call pipeline (transport/calls.py) for every
transport and read at export time by the observability table (observability.py): the
`grpc_server_handled_total` counter and the `grpc_server_handling_seconds` histogram, with the
label names of go-grpc-prometheus and a `transport` label. Plain dicts: the hot path pays two
dictionary updates and a bisect."""

from __future__ import annotations

import bisect

from msgspec import Struct, field

# Upper bounds in seconds (the last, +Inf, is implied): from a cached GetPhoto (sub-millisecond)
# to a ConfirmUpload waiting on S3.
BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Latencies(Struct):
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0


class RpcStats(Struct):
    # (method, code name, transport) -> calls
    handled: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (method, transport) -> latency histogram (non-cumulative counts per bucket)
    latencies: dict[tuple[str, str], Latencies] = field(default_factory=dict)

    def record(self, method: str, code: str, transport: str, seconds: float) -> None:
        key = (method, code, transport)
        self.handled[key] = self.handled.get(key, 0) + 1
        latencies = self.latencies.get((method, transport))
        if latencies is None:
            latencies = self.latencies[(method, transport)] = Latencies()
        latencies.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        latencies.total += seconds
