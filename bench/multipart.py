"""Uploads of one large file through the Python client, in one run on loopback: a single
presigned PUT against uploads in parts with 1, 4 and 8 parts in flight (moto's S3 in a thread,
the service in process: the figures compare the client's ways, not S3), and the RPC calls each
way makes per GB."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photovault_client import PhotoVaultClient
from photovault_client._rpcs import Req, Resp, Rpc
from photovault_dev.s3 import create_bucket, moto_server
from photovault_server.app import open_app
from photovault_server.auth import mint_token
from photovault_server.server import running_grpc_server

from .list_photos import SECRET, bench_settings, prepare_database

SIZE = int(os.environ.get("PHOTOVAULT_BENCH_UPLOAD_BYTES", str(200 * 1000 * 1000)))
ROUNDS = int(os.environ.get("PHOTOVAULT_BENCH_UPLOAD_ROUNDS", "2"))
BUCKET = "photovault-bench"
REGION = "us-east-1"
WAYS: list[tuple[str, int | None]] = [
    ("single PUT", None),
    ("parts, 1 in flight", 1),
    ("parts, 4 in flight", 4),
    ("parts, 8 in flight", 8),
]
GB = 1000**3


@dataclass(frozen=True)
class Throughput:
    name: str
    mb_per_second: float  # median over the rounds
    rpcs_per_gb: float


class CountingClient(PhotoVaultClient):
    """Counts the RPCs the upload makes (retries included)."""

    calls = 0

    async def _call(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        timeout: float | None,  # noqa: ASYNC109 (the client's own signature)
    ) -> Resp:
        CountingClient.calls += 1
        return await super()._call(rpc, request, timeout)


async def measure() -> list[Throughput]:
    await prepare_database()
    with tempfile.TemporaryDirectory(prefix="photovault-bench-") as tmp, moto_server() as s3:
        create_bucket(s3, BUCKET, REGION)
        source = Path(tmp) / "large.jpg"
        head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
        source.write_bytes(head + os.urandom(SIZE - len(head)))
        settings = bench_settings(
            AWS_ENDPOINT_URL_S3=s3,
            AWS_REGION=REGION,
            PHOTOVAULT_BUCKET=BUCKET,
            PHOTOVAULT_S3_ADDRESSING_STYLE="path",
            PHOTOVAULT_MAX_UPLOAD_BYTES=SIZE,
            PHOTOVAULT_QUOTA_BYTES=4 * SIZE,
            PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0,
        )
        token = mint_token(SECRET, "bench-uploader")
        seconds: dict[str, list[float]] = {name: [] for name, _ in WAYS}
        calls: dict[str, int] = {}
        async with open_app(settings) as app, running_grpc_server(app, "127.0.0.1:0") as srv:
            target = f"127.0.0.1:{srv.port}"
            async with CountingClient.grpc(target, token=token, timeout=120) as pv:
                for _ in range(ROUNDS):  # round by round: drift hits every way alike
                    for name, in_flight in WAYS:
                        kwargs: dict[str, Any] = (
                            {"multipart_threshold": SIZE}
                            if in_flight is None
                            else {"multipart_threshold": 1, "parts_in_flight": in_flight}
                        )
                        CountingClient.calls = 0
                        started = time.perf_counter()
                        photo = await pv.upload(source, **kwargs)
                        seconds[name].append(time.perf_counter() - started)
                        calls[name] = CountingClient.calls
                        await pv.delete_photo(photo.id)
    return [
        Throughput(
            name,
            SIZE / 1e6 / statistics.median(seconds[name]),
            calls[name] * GB / SIZE,
        )
        for name, _ in WAYS
    ]


def report(results: list[Throughput]) -> None:
    for r in results:
        print(f"{r.name:>22}: {r.mb_per_second:8.1f} MB/s, {r.rpcs_per_gb:6.1f} RPCs per GB")


if __name__ == "__main__":
    report(asyncio.run(measure()))
