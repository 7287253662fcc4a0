"""ListPhotos at scale: a page of 50 for an owner of 1,000,000 photos among 5,000,000, per
filter and order (photovault_dev/photo_load.py loads the table with SQL generate_series into a
database of its own, dropped after; migration 0006's indexes are built on the loaded table).

Each query goes through the repository adapter (adapters/postgres.py) on one pooled connection,
as the service sends it: a prepared statement, so after a few calls Postgres may settle on a
generic plan, which this figure then includes. p50 of ROUNDS calls, one run.

PHOTOVAULT_BENCH_SCALE_OWNER_PHOTOS / PHOTOVAULT_BENCH_SCALE_TOTAL_PHOTOS change the sizes."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from photovault_dev.photo_load import PAGE, load_scale_database, scale_queries
from photovault_server.adapters.migrations import ensure_database
from photovault_server.adapters.postgres import PostgresPhotoRepository

DATABASE_URL = os.environ.get(
    "PHOTOVAULT_BENCH_SCALE_DATABASE_URL",
    "postgresql://postgres@127.0.0.1:5432/photovault_bench_scale",
)
OWNER_PHOTOS = int(os.environ.get("PHOTOVAULT_BENCH_SCALE_OWNER_PHOTOS", "1000000"))
TOTAL_PHOTOS = int(os.environ.get("PHOTOVAULT_BENCH_SCALE_TOTAL_PHOTOS", "5000000"))
ROUNDS = 21


@dataclass(frozen=True, slots=True)
class ScaleFigure:
    name: str
    p50_ms: float
    rows: int


@dataclass(frozen=True, slots=True)
class ScaleResults:
    owner_photos: int
    total_photos: int
    load_seconds: float
    figures: list[ScaleFigure]


async def _drop(url: str) -> None:
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        name = parts.path.lstrip("/").replace('"', '""')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def measure() -> ScaleResults:
    await _drop(DATABASE_URL)  # a run interrupted before its own clean-up
    await ensure_database(DATABASE_URL)
    try:
        started = time.perf_counter()
        await load_scale_database(DATABASE_URL, OWNER_PHOTOS, TOTAL_PHOTOS)
        load_seconds = time.perf_counter() - started
        pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=1)
        try:
            repository = PostgresPhotoRepository(pool)
            figures = []
            for case in scale_queries(OWNER_PHOTOS):
                times, rows = [], 0
                for _ in range(ROUNDS):
                    began = time.perf_counter()
                    rows = len(await repository.list_photos(case.query))
                    times.append((time.perf_counter() - began) * 1000)
                figures.append(ScaleFigure(case.name, statistics.median(times), rows))
        finally:
            await pool.close()
    finally:
        await _drop(DATABASE_URL)
    return ScaleResults(OWNER_PHOTOS, TOTAL_PHOTOS, load_seconds, figures)


def report(results: ScaleResults) -> None:
    print(
        f"ListPhotos at scale: {results.owner_photos:,} photos of one owner, "
        f"{results.total_photos:,} in all (loaded and indexed in {results.load_seconds:.0f} s)"
    )
    for figure in results.figures:
        print(f"  {figure.name:28} p50 {figure.p50_ms:7.2f} ms  ({figure.rows} rows)")


def render(results: ScaleResults) -> list[str]:
    """docs/benchmarks.md's section."""
    return [
        "## ListPhotos at scale",
        "",
        f"A page of {PAGE} (and the row that says there is more) for an owner of",
        f"{results.owner_photos:,} photos among {results.total_photos:,}, through the Postgres",
        "repository on one pooled connection (prepared statements, as the service sends them);",
        f"p50 of {ROUNDS} calls per filter, one run (bench/listing_scale.py). Loaded with SQL",
        f"generate_series and indexed in {results.load_seconds:.0f} s.",
        "",
        "| filter or order | p50 ms | rows |",
        "|---|---:|---:|",
        *(f"| {f.name} | {f.p50_ms:.2f} | {f.rows} |" for f in results.figures),
        "",
    ]


if __name__ == "__main__":
    print("ListPhotos at scale ...", file=sys.stderr)
    report(asyncio.run(measure()))
