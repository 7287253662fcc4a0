"""Running the `photovault` command as a subprocess: its environment and the tools beside it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .loopback import closed_port
from .settings import BUCKET, JWT_SECRET, REGION

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


def serve_env(
    database_url: str, redis_url: str, s3_endpoint: str, port: int, metrics_port: int = 0
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTOVAULT_", "AWS_"))}
    env.update(
        PHOTOVAULT_GRPC_ADDR=f"127.0.0.1:{port}",
        PHOTOVAULT_HTTP_ADDR=f"127.0.0.1:{closed_port()}",
        PHOTOVAULT_BUCKET=BUCKET,
        PHOTOVAULT_JWT_SECRET=JWT_SECRET,
        PHOTOVAULT_S3_ADDRESSING_STYLE="path",
        PHOTOVAULT_SHUTDOWN_GRACE_SECONDS="5",
        PHOTOVAULT_METRICS_ADDR=f"127.0.0.1:{metrics_port}" if metrics_port else "",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_ENDPOINT_URL_S3=s3_endpoint,
    )
    return env


def health_serving(port: int) -> bool:
    """Whether the gRPC server on `port` answers health SERVING (a blocking check)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5
            )
        except grpc.RpcError:
            return False
    serving: bool = answer.status == health_pb2.HealthCheckResponse.SERVING
    return serving
