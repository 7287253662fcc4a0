"""CloudFront URLs, measured in one run:

- signing rate of CloudFront canned-policy URLs: ours (RSA 2048, and ECDSA P-256) against
  botocore's CloudFrontSigner with the same RSA key, and against the SigV4 fast signer (the
  HMAC the S3 URLs cost), for the same object keys;
- a warm ListPhotos of 100 with CloudFront URLs against the same page with S3 URLs (in-process
  tier off, so each call reads Redis), interleaved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from photovault_server.adapters.cloudfront import CloudFrontSigner
from photovault_server.app import open_app

from .list_photos import (
    Latency,
    Variant,
    bench_settings,
    prepare_database,
    stub_for,
    time_interleaved,
)
from .signing import CREDS, keys

BASE = "https://d111111abcdef8.cloudfront.net"
S3_PAGE = "warm page, S3 presigned URLs"
CDN_PAGE = "warm page, CloudFront signed URLs (RSA)"


@dataclass(frozen=True)
class CdnResults:
    rates: dict[str, float]  # URLs per second
    latencies: list[Latency]


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _rate(n: int, fn: Callable[[], object], runs: int = 3) -> float:
    best = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - started))
    return best


def signing_rates(n: int = 300) -> dict[str, float]:
    from photovault_server.adapters.sigv4 import PresignedUrlBatch, S3Endpoint

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    urls = [f"{BASE}/{quote(k, safe='/~')}" for k in keys(n)]
    expires = int(time.time()) + 7200
    botocore = BotocoreCloudFrontSigner(
        "K2JCJMDEHXQW5F",
        lambda m: rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA1()),  # noqa: S303 (CloudFront)
    )
    until = datetime.fromtimestamp(expires, UTC)
    ours_rsa = CloudFrontSigner("K2JCJMDEHXQW5F", _pem(rsa_key))
    ours_ec = CloudFrontSigner("K2JCJMDEHXQW5F", _pem(ec_key))
    ours_rsa.check()
    ours_ec.check()
    endpoint = S3Endpoint(
        "https://photovault-bench.s3.eu-west-1.amazonaws.com", "/", "x", "eu-west-1"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "botocore CloudFrontSigner (RSA 2048)": _rate(
            n, lambda: [botocore.generate_presigned_url(u, date_less_than=until) for u in urls]
        ),
        "ours, RSA 2048": _rate(n, lambda: [ours_rsa.signed_url(u, expires) for u in urls]),
        "ours, ECDSA P-256": _rate(n, lambda: [ours_ec.signed_url(u, expires) for u in urls]),
        "SigV4 fast signer (S3 URLs, for scale)": _rate(
            n,
            lambda: [
                PresignedUrlBatch(
                    endpoint, CREDS, method="GET", signed_at=now, expires_in=7200
                ).url(k)
                for k in keys(n)
            ],
        ),
    }


async def warm_pages(iterations: int) -> list[Latency]:
    await prepare_database()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with (
        open_app(bench_settings(PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0)) as s3_app,
        open_app(
            bench_settings(
                PHOTOVAULT_LOCAL_URL_CACHE_SIZE=0,
                PHOTOVAULT_CDN_BASE_URL=BASE,
                PHOTOVAULT_CDN_KEY_PAIR_ID="K2JCJMDEHXQW5F",
                PHOTOVAULT_CDN_PRIVATE_KEY=_pem(rsa_key).decode(),
            )
        ) as cdn_app,
        AsyncExitStack() as stubs,
    ):
        variants: list[Variant] = [
            (S3_PAGE, await stubs.enter_async_context(stub_for(s3_app)), None),
            (CDN_PAGE, await stubs.enter_async_context(stub_for(cdn_app)), None),
        ]
        return await time_interleaved(variants, iterations)


def measure(iterations: int = 300) -> CdnResults:
    return CdnResults(signing_rates(), asyncio.run(warm_pages(iterations)))


def report(results: CdnResults) -> None:
    base = results.rates["botocore CloudFrontSigner (RSA 2048)"]
    for name, rate in results.rates.items():
        print(f"{name:42s} {rate:10,.0f} URLs/s  {rate / base:6.1f}x botocore")
    by_name = {lat.name: lat for lat in results.latencies}
    s3 = by_name[S3_PAGE].p50
    for lat in results.latencies:
        print(f"{lat.name:46s} p50 {lat.p50:7.2f} ms  {lat.p50 / s3:5.2f}x S3 URLs")


__all__ = ["CdnResults", "measure", "report"]
