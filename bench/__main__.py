"""`make bench`: runs every benchmark, prints the ratios, writes docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import (
    cdn,
    cold_start,
    fleet_cache,
    gateway,
    list_photos,
    listing_scale,
    multipart,
    protocols,
    signing,
    tracing,
    variants,
    workers,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(
    rates: list[signing.Rate],
    listing: list_photos.ListResults,
    in_process: list[list_photos.Latency],
    cold: cold_start.ColdStart,
    fleet: fleet_cache.FleetResults,
    cdn_results: cdn.CdnResults,
    traced: tracing.TracingCost,
    uploads: list[multipart.Throughput],
    images: variants.VariantResults,
    at_scale: listing_scale.ScaleResults,
    scaling: workers.Rates | None = None,
    loaded: protocols.Protocols | None = None,
) -> str:
    base = rates[0].urls_per_second
    fast = next(r for r in rates if r.name.startswith("fast")).urls_per_second
    by_name = {lat.name: lat for lat in listing.latencies}
    seed = by_name[list_photos.SEED].p50
    floor = by_name[list_photos.FLOOR].p50
    warm = min(by_name[n].p50 for n in by_name if n.startswith("warm"))
    saved = 1 - listing.day_signatures_cached / listing.day_signatures_uncached
    web_ratio = in_process[1].p50 / in_process[0].p50
    fleet_ratio = fleet.signatures_fleet / fleet.signatures_one_process
    cdn_base = cdn_results.rates["botocore CloudFrontSigner (RSA 2048)"]
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench`), which rewrites this file. Every ratio is",
        "against a baseline measured in the same run: these machines are noisy, absolute",
        "numbers are not comparable between runs, ratios mostly are.",
        "",
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.machine()}.",
        "",
        "## Signing presigned GET URLs",
        "",
        "| signer | URLs/s | vs botocore |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.urls_per_second:,.0f} | {r.urls_per_second / base:.1f}x |" for r in rates
    ]
    lines += [
        "",
        "The fast signer's URLs are byte-identical to botocore's (tests/test_sigv4.py, property",
        "tests over keys, regions, endpoints, styles, operations and response headers).",
        "",
        f"## ListPhotos, a page of {list_photos.PAGE}, over gRPC on loopback",
        "",
        "Real Postgres and Redis; client and server in one process (one event loop), calls one",
        "after another. Latency in milliseconds.",
        "",
        "| variant | p50 ms | p95 ms | speed-up vs seed's way | cost vs floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for lat in listing.latencies:
        lines.append(
            f"| {lat.name} | {lat.p50:.2f} | {lat.p95:.2f} | {seed / lat.p50:.1f}x "
            f"| {lat.p50 / floor:.2f}x |"
        )
    labels = ", ".join(f'"{lat.name.split(" (")[0]}"' for lat in listing.latencies)
    values = ", ".join(f"{lat.p50:.2f}" for lat in listing.latencies)
    top = max(lat.p50 for lat in listing.latencies) * 1.1
    lines += [
        "",
        "```mermaid",
        "xychart-beta",
        f'    title "ListPhotos p50 latency, page of {list_photos.PAGE} (ms, lower is better)"',
        f"    x-axis [{labels}]",
        f'    y-axis "ms" 0 --> {top:.0f}',
        f"    bar [{values}]",
        "```",
        "",
        f"Redis round trips per page: **{listing.round_trips_cold}** on a cold cache (one MGET,",
        f"one pipelined SET), **{listing.round_trips_warm}** warm (one MGET); none when the",
        "in-process tier holds the page.",
        "",
        f"A simulated day ({listing.day_calls} listings of the page, one a minute, fake clock):",
        f"**{listing.day_signatures_cached:,}** signatures with the cache against",
        f"**{listing.day_signatures_uncached:,}** without, {saved:.1%} fewer.",
        "",
        *listing_scale.render(at_scale),
        "## The cache across a fleet and on a Redis Cluster",
        "",
        "A warm page of 100 (in-process tier off, so every call reads Redis), interleaved:",
        "",
        "| Redis | p50 ms | p95 ms | vs standalone |",
        "|---|---:|---:|---:|",
        *(
            f"| {lat.name} | {lat.p50:.2f} | {lat.p95:.2f} "
            f"| {lat.p50 / fleet.latencies[0].p50:.2f}x |"
            for lat in fleet.latencies
        ),
        "",
        f"Signatures for {fleet.listings:,} listings of the page over a simulated day (fake",
        "clock): one process did them all, then a fleet of "
        f"{fleet_cache.FLEET_SIZE} processes (round robin),",
        "each with credentials of its own, sharing one Redis:",
        "",
        "| who lists | signatures | vs one process |",
        "|---|---:|---:|",
        f"| one process | {fleet.signatures_one_process:,} | 1.00x |",
        f"| a fleet of {fleet_cache.FLEET_SIZE} | {fleet.signatures_fleet:,} "
        f"| {fleet.signatures_fleet / fleet.signatures_one_process:.2f}x |",
        "",
        "## CloudFront signed URLs",
        "",
        "Canned-policy URLs for the same object keys; the SigV4 signer for scale (an HMAC per",
        "URL against a public-key signature). RSA URLs are byte-identical to botocore's",
        "(tests/test_cloudfront_signer.py).",
        "",
        "| signer | URLs/s | vs botocore |",
        "|---|---:|---:|",
        *(
            f"| {name} | {rate:,.0f} | {rate / cdn_base:.1f}x |"
            for name, rate in cdn_results.rates.items()
        ),
        "",
        "A warm page of 100 (in-process tier off), interleaved: what a CloudFront URL costs on the",
        "hot path once the signing windows and the cache keep signatures off it.",
        "",
        "| URLs | p50 ms | p95 ms | vs S3 URLs |",
        "|---|---:|---:|---:|",
        *(
            f"| {lat.name} | {lat.p50:.2f} | {lat.p95:.2f} "
            f"| {lat.p50 / cdn_results.latencies[0].p50:.2f}x |"
            for lat in cdn_results.latencies
        ),
        "",
        "## Tracing",
        "",
        "The call pipeline run in process on a handler without I/O (JWT verification",
        "included), interleaved round by round (bench/tracing.py):",
        "",
        "| tracing | µs per call | vs off |",
        "|---|---:|---:|",
        f"| off (default: no OpenTelemetry import) | {traced.off_us:.1f} | 1.00x |",
        f"| on (SDK span per call, exporter dropping them) | {traced.on_us:.1f} "
        f"| {traced.on_us / traced.off_us:.2f}x |",
        "",
        f"Off, tracing adds one no-op context manager to a call: {traced.hook_off_us:.2f} µs,",
        f"{traced.hook_off_us / traced.off_us:.1%} of the pipeline's own cost.",
        "",
        "## One unary call per protocol (GetPhoto), client in process",
        "",
        "`photovault serve`'s two listeners in one process; calls interleaved round by round.",
        "The HTTP client is a minimal keep-alive HTTP/1.1 client and the gRPC client grpcio's",
        "aio client, both in the server's process and loop (bench/gateway.py): each call's",
        "figure includes its client's cost, which for grpcio's client is the larger; the",
        "next section loads the server from another process.",
        "",
        "| protocol | p50 ms | p95 ms | vs native gRPC |",
        "|---|---:|---:|---:|",
        *(
            f"| {lat.name} | {lat.p50:.3f} | {lat.p95:.3f} | {lat.p50 / in_process[0].p50:.2f}x |"
            for lat in in_process
        ),
        "",
        *(protocols.markdown(loaded) if loaded is not None else []),
        "## Large uploads through the Python client",
        "",
        f"One file of {multipart.SIZE / 1e6:.0f} MB uploaded by `PhotoVaultClient.upload` over",
        "native gRPC, the bytes to moto's S3 on loopback (bench/multipart.py); median of",
        f"{multipart.ROUNDS} rounds, the ways interleaved round by round.",
        "",
        "| way | MB/s | vs single PUT | RPC calls per GB |",
        "|---|---:|---:|---:|",
        *(
            f"| {u.name} | {u.mb_per_second:.1f} "
            f"| {u.mb_per_second / uploads[0].mb_per_second:.2f}x | {u.rpcs_per_gb:.1f} |"
            for u in uploads
        ),
        "",
        *variants.markdown(images),
        "## Lambda cold start",
        "",
        "A fresh process imports the handler and serves a ListPhotos of 100 (Connect JSON,",
        "Function URL event, real Postgres/Redis on loopback); bytecode precompiled as in the",
        "image. Medians of several processes.",
        "",
        "| phase | ms |",
        "|---|---:|",
        f"| bare interpreter (`python -c pass`) | {cold.bare_ms:.1f} |",
        f"| import the handler module | {cold.import_ms:.1f} |",
        f"| first invocation (builds the app, then serves) | {cold.first_invocation_ms:.1f} |",
        f"| **init = import + first invocation** | **{cold.init_ms:.1f}** "
        f"({cold.init_ms / cold.bare_ms:.1f}x bare) |",
        f"| warm invocation p50 / p95 | {cold.warm_p50_ms:.2f} / {cold.warm_p95_ms:.2f} |",
        f"| RSS after the first / after {cold_start.WARM_INVOCATIONS:,} warm invocations, MiB "
        f"| {cold.rss_first_mib:.1f} / {cold.rss_after_mib:.1f} ({cold.rss_growth:+.1%}) |",
        "",
        *cold_start.chart(cold),
        "Collections paused during the init (lambda_handler.py: until the first invocation has",
        "answered, then what exists is frozen out of later ones), against the same processes",
        "with collections running throughout, interleaved: init CPU time "
        f"**{cold.init_cpu_ms:.0f} ms** against {cold.init_cpu_ms_collecting:.0f} ms "
        f"({cold.gc_saving:.0%} less).",
        "",
        "Where the init's imports go (`python -X importtime` of the same first invocation, self",
        "times by top-level package; `photovault_server` is the service's own modules):",
        "",
        "| package | share of import time |",
        "|---|---:|",
        *(f"| {name} | {share:.1%} |" for name, share in cold.imports),
        "",
        *(workers.markdown(scaling) if scaling is not None else []),
        "## Goals",
        "",
        "Where a goal is not met, docs/performance.md has the profile that shows why and what",
        "would close it.",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| signing ≥ 20x botocore | {fast / base:.0f}x | {_mark(fast / base >= 20)} |",
        f"| warm page ≥ 5x the seed's way | {seed / warm:.1f}x | {_mark(seed / warm >= 5)} |",
        f"| URL work ≤ 30% over the floor (warm) | {warm / floor - 1:+.0%} "
        f"| {_mark(warm / floor <= 1.3)} |",
        f"| URL work ≤ 20% over the floor (warm; issue 18) | {warm / floor - 1:+.0%} "
        f"| {_mark(warm / floor <= 1.2)} |",
        f"| ≥ 95% fewer signatures over a day | {saved:.1%} | {_mark(saved >= 0.95)} |",
        f"| gRPC-web ≤ 1.3x native latency | {web_ratio:.2f}x | {_mark(web_ratio <= 1.3)} |",
        f"| Lambda init ≤ 150 ms | {cold.init_ms:.0f} ms | {_mark(cold.init_ms <= 150)} |",
        f"| Lambda init ≤ 12x the bare interpreter's start | {cold.init_ms / cold.bare_ms:.1f}x "
        f"| {_mark(cold.init_ms / cold.bare_ms <= 12)} |",
        f"| Lambda RSS after {cold_start.WARM_INVOCATIONS:,} warm invocations within 10% of "
        f"after the first | {cold.rss_growth:+.1%} | {_mark(abs(cold.rss_growth) <= 0.10)} |",
        f"| a fleet signs no more than one process | {fleet_ratio:.2f}x "
        f"| {_mark(fleet_ratio <= 1.05)} |",
        *variants.goal_rows(images, _mark),
        *(workers.goal_rows(scaling, _mark) if scaling is not None else []),
        *(protocols.goal_rows(loaded, _mark) if loaded is not None else []),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    print("signing ...", file=sys.stderr)
    rates = signing.measure()
    print("ListPhotos ...", file=sys.stderr)
    listing = asyncio.run(list_photos.measure())
    print("protocols, client in process ...", file=sys.stderr)
    in_process = asyncio.run(gateway.measure())
    print("fleet and cluster ...", file=sys.stderr)
    fleet = asyncio.run(fleet_cache.measure())
    print("CloudFront ...", file=sys.stderr)
    cdn_results = cdn.measure()
    print("tracing ...", file=sys.stderr)
    traced = tracing.measure()
    print("cold start ...", file=sys.stderr)
    cold = cold_start.measure()
    print("large uploads ...", file=sys.stderr)
    uploads = asyncio.run(multipart.measure())
    print("image variants ...", file=sys.stderr)
    images = variants.measure()
    print("ListPhotos at scale ...", file=sys.stderr)
    at_scale = asyncio.run(listing_scale.measure())
    print("serve --workers ...", file=sys.stderr)
    scaling = workers.measure()
    print("protocols under h2load ...", file=sys.stderr)
    loaded = protocols.measure()
    signing.report(rates)
    list_photos.report(listing)
    gateway.report(in_process)
    fleet_cache.report(fleet)
    cdn.report(cdn_results)
    tracing.report(traced)
    cold_start.report(cold)
    multipart.report(uploads)
    variants.report(images)
    listing_scale.report(at_scale)
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(
        render(
            rates,
            listing,
            in_process,
            cold,
            fleet,
            cdn_results,
            traced,
            uploads,
            images,
            at_scale,
            scaling,
            loaded,
        )
    )
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
