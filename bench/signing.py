"""Signing rate: the fast SigV4 signer vs botocore's and aiobotocore's generate_presigned_url,
for the same URLs (the fast one is proven byte-identical in tests/test_sigv4.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aioboto3
import boto3
from botocore.config import Config

from photovault_server.adapters.sigv4 import Credentials, PresignedUrlBatch, S3Endpoint

BUCKET = "photovault-bench"
REGION = "eu-west-1"
CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
)
CREDS = Credentials("AKIDEXAMPLE12345678", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@dataclass(frozen=True)
class Rate:
    name: str
    urls_per_second: float


def keys(n: int) -> list[str]:
    return [f"users/user-{i % 97}/photos/{i:08d}-5f0e-4c2b-9a7e-0123456789ab.jpg" for i in range(n)]


def _best_of(runs: int, fn: Callable[[], int]) -> float:
    """URLs per second of the fastest run (the least disturbed by a noisy machine)."""
    best = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        count = fn()
        best = max(best, count / (time.perf_counter() - started))
    return best


def measure(n: int = 2000, runs: int = 5) -> list[Rate]:
    names = keys(n)
    client = boto3.session.Session().client(
        "s3",
        region_name=REGION,
        aws_access_key_id=CREDS.access_key,
        aws_secret_access_key=CREDS.secret_key,
        config=CONFIG,
    )

    def with_botocore() -> int:
        for key in names:
            client.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=7200
            )
        return n

    probe = client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "probe"}, ExpiresIn=60
    )
    endpoint = S3Endpoint.from_presigned_url(probe, "probe", REGION)

    def with_fast_signer() -> int:
        # As the service does: one batch per page of 100.
        now = datetime.now(UTC).replace(microsecond=0)
        for start in range(0, n, 100):
            batch = PresignedUrlBatch(endpoint, CREDS, method="GET", signed_at=now, expires_in=7200)
            for key in names[start : start + 100]:
                batch.url(key)
        return n

    async def with_aiobotocore() -> float:
        session = aioboto3.Session(
            aws_access_key_id=CREDS.access_key, aws_secret_access_key=CREDS.secret_key
        )
        async with session.client("s3", region_name=REGION, config=CONFIG) as aio:
            best = 0.0
            for _ in range(runs):
                started = time.perf_counter()
                for key in names:
                    await aio.generate_presigned_url(
                        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=7200
                    )
                best = max(best, n / (time.perf_counter() - started))
            return best

    return [
        Rate("botocore generate_presigned_url", _best_of(runs, with_botocore)),
        Rate("aiobotocore generate_presigned_url", asyncio.run(with_aiobotocore())),
        Rate("fast signer (batch of 100)", _best_of(runs, with_fast_signer)),
    ]


def report(rates: list[Rate]) -> None:
    base = rates[0].urls_per_second
    for rate in rates:
        print(
            f"{rate.name:40s} {rate.urls_per_second:12,.0f} URLs/s  "
            f"{rate.urls_per_second / base:6.1f}x"
        )


if __name__ == "__main__":
    report(measure())
