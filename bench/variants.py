"""Image variants, in one run: the worker's pipeline (server/photovault_server/imaging) against
a plain Pillow baseline (open, `thumbnail`, save, once per size), interleaved round by round on
12-megapixel JPEGs, with the pipeline's WebP `method` varied (speed against bytes and PSNR);
the peak RSS of one 50-megapixel JPEG processed in a grandchild process; and the time from
ConfirmUpload's answer to READY with a worker in process on an otherwise idle service.

Times are CPU seconds of this (single-threaded) process, so the figures are per core and hold
up on a shared machine better than wall time would."""

from __future__ import annotations

import asyncio
import io
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import msgspec
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

from photovault_client import PhotoVaultClient, ProcessingState
from photovault_client._source import UploadSource
from photovault_client._upload import put_object
from photovault_dev.s3 import create_bucket, moto_server
from photovault_server.adapters.migrations import ensure_database, migrate
from photovault_server.app import open_app
from photovault_server.auth import mint_token
from photovault_server.imaging import ImagePipeline
from photovault_server.server import running_grpc_server
from photovault_server.settings import parse_variants
from photovault_server.worker import build_processing, run_until_stopped

from .list_photos import DATABASE_URL, SECRET, bench_settings

SPECS = parse_variants("thumb:320,preview:1600")  # PHOTOVAULT_VARIANTS' default
TWELVE_MP = (4000, 3000)
FIFTY_MP = (8192, 6144)
ROUNDS = int(os.environ.get("PHOTOVAULT_BENCH_VARIANT_ROUNDS", "5"))
READY_ROUNDS = int(os.environ.get("PHOTOVAULT_BENCH_READY_ROUNDS", "5"))
LANCZOS, BICUBIC, BILINEAR = (
    Image.Resampling.LANCZOS,
    Image.Resampling.BICUBIC,
    Image.Resampling.BILINEAR,
)
# (name, WebP method, resampling filter); method 4 is libwebp's and Pillow's default.
PIPELINE_WAYS = (
    ("pipeline, first version (method 4, Lanczos)", 4, LANCZOS),
    ("pipeline, method 2, bicubic", 2, BICUBIC),
    ("pipeline, method 1, bicubic (the default)", 1, BICUBIC),
    ("pipeline, method 0, bicubic", 0, BICUBIC),
    ("pipeline, method 1, bilinear", 1, BILINEAR),
)
BASELINE = "plain Pillow (open, thumbnail, save per size)"
BUCKET = "photovault-bench"
REGION = "us-east-1"
POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Way:
    name: str
    variants_per_cpu_second: float  # median over the rounds
    bytes_per_image: int  # all variants of one photo
    preview_psnr_db: float  # the largest variant against a full decode resized alike
    sharp_psnr_db: float  # the same on an image of lines and text (blur shows there)


@dataclass(frozen=True)
class PeakMemory:
    megapixels: float
    jpeg_bytes: int
    idle_rss_bytes: int  # the child with everything imported and the file read
    peak_rss_bytes: int
    largest_variant: tuple[int, int]

    @property
    def decoded_bytes(self) -> int:
        """The largest variant's pixels, 8-bit RGB."""
        return self.largest_variant[0] * self.largest_variant[1] * 3

    @property
    def added_bytes(self) -> int:
        return self.peak_rss_bytes - self.idle_rss_bytes


@dataclass(frozen=True)
class VariantResults:
    ways: list[Way]  # BASELINE first
    memory: PeakMemory
    confirm_to_ready_s: list[float]


def photo_like(size: tuple[int, int], seed: int) -> bytes:
    """A JPEG (quality 90) that compresses like a photo: smooth colour fields and gradients
    with some sensor-like noise (pure noise would make every codec slow and every size huge)."""
    rnd = random.Random(seed)  # noqa: S311 - test pixels, not secrets
    cells = Image.new("RGB", (8, 6))
    cells.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(48)])
    smooth = cells.resize(size, Image.Resampling.BICUBIC)
    noise = Image.effect_noise(size, 48).convert("RGB")
    img = Image.blend(smooth, noise, 0.12)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def sharp_like(size: tuple[int, int]) -> bytes:
    """A photo-like JPEG with thin lines and small text over it: smooth photos hide a blurry
    resampler (bilinear scores like bicubic on them, ~8 dB worse here)."""
    with Image.open(io.BytesIO(photo_like(size, 3))) as img:
        img.load()
        draw = ImageDraw.Draw(img)
        for x in range(0, size[0], 37):
            draw.line([(x, 0), (size[0] - x, size[1])], fill=(255, 255, 255), width=3)
        for y in range(0, size[1], 50):
            draw.text((10, y), "PhotoVault sharpness " * 30, fill=(0, 0, 0))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
    return out.getvalue()


def baseline(data: bytes) -> list[bytes]:
    """What a first version would write: Pillow's defaults (WebP quality 80, method 4)."""
    out = []
    for spec in SPECS:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((spec.max_side, spec.max_side))
            buffer = io.BytesIO()
            img.save(buffer, "WEBP")
            out.append(buffer.getvalue())
    return out


def pipeline_with(method: int, resample: Image.Resampling) -> Callable[[bytes], list[bytes]]:
    pipeline = ImagePipeline(SPECS, resample=resample)
    options = dict(pipeline.format.options) | {"method": method}
    pipeline.format = msgspec.structs.replace(pipeline.format, options=tuple(options.items()))

    def run(data: bytes) -> list[bytes]:
        return [v.data for v in pipeline.process(data).variants]

    return run


def psnr(reference: Image.Image, encoded: bytes) -> float:
    with Image.open(io.BytesIO(encoded)) as img:
        decoded = img.convert("RGB")
    if decoded.size != reference.size:
        decoded = decoded.resize(reference.size, Image.Resampling.LANCZOS)
    rms = ImageStat.Stat(ImageChops.difference(reference, decoded)).rms
    mse = statistics.fmean(r * r for r in rms)
    return 99.0 if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def reference_preview(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The largest variant from a full decode, resized once (what an ideal encoder keeps)."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    return upright.resize(size, Image.Resampling.LANCZOS)


def measure_throughput() -> list[Way]:
    images = [photo_like(TWELVE_MP, seed) for seed in range(2)]
    ways: list[tuple[str, Callable[[bytes], list[bytes]]]] = [(BASELINE, baseline)]
    ways += [(name, pipeline_with(m, resample)) for name, m, resample in PIPELINE_WAYS]
    for _, run in ways:  # warm-up: codecs loaded, first allocations made
        run(images[0])
    seconds: dict[str, list[float]] = {name: [] for name, _ in ways}
    outputs: dict[str, list[bytes]] = {}
    for round_ in range(ROUNDS):  # round by round: drift hits every way alike
        data = images[round_ % len(images)]
        for name, run in ways:
            started = time.process_time()
            outputs[name] = run(data)
            seconds[name].append(time.process_time() - started)
    last = images[(ROUNDS - 1) % len(images)]
    with Image.open(io.BytesIO(outputs[BASELINE][-1])) as largest:
        reference = reference_preview(last, largest.size)
    sharp = sharp_like(TWELVE_MP)
    sharp_reference = reference_preview(sharp, reference.size)
    return [
        Way(
            name,
            len(SPECS) / statistics.median(seconds[name]),
            sum(len(d) for d in outputs[name]),
            psnr(reference, outputs[name][0 if name != BASELINE else -1]),
            psnr(sharp_reference, run(sharp)[0 if name != BASELINE else -1]),
        )
        for name, run in ways
    ]


# Both children load Pillow's plugins (Image.init(), what the first Image.open does: ~3 MB),
# so the difference is the image's own memory.
_PROCESS = """
import sys
from PIL import Image
from photovault_server.imaging import ImagePipeline
from photovault_server.settings import parse_variants
Image.init()
data = open(sys.argv[1], "rb").read()
if sys.argv[2] == "process":
    ImagePipeline(parse_variants("thumb:320,preview:1600")).process(data)
"""
# A small launcher between this (large) process and the measured one: a child's ru_maxrss
# counts the pages it had before exec, so one forked from here would report this process.
_LAUNCH = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", *sys.argv[1:]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _child_peak_rss(path: Path, mode: str) -> int:
    """Peak RSS in bytes of one process reading (and, for "process", processing) the file:
    getrusage(RUSAGE_CHILDREN) in the launcher, whose only child it is."""
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCH, _PROCESS, str(path), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(launched.stdout.split()[-1]) * 1024  # kilobytes on Linux


def measure_memory() -> PeakMemory:
    data = photo_like(FIFTY_MP, 7)
    with tempfile.TemporaryDirectory(prefix="photovault-bench-") as tmp:
        path = Path(tmp) / "fifty.jpg"
        path.write_bytes(data)
        idle = min(_child_peak_rss(path, "read") for _ in range(2))
        peak = min(_child_peak_rss(path, "process") for _ in range(2))
    scale = SPECS[-1].max_side / max(FIFTY_MP)
    largest = (round(FIFTY_MP[0] * scale), round(FIFTY_MP[1] * scale))
    return PeakMemory(
        megapixels=FIFTY_MP[0] * FIFTY_MP[1] / 1e6,
        jpeg_bytes=len(data),
        idle_rss_bytes=idle,
        peak_rss_bytes=peak,
        largest_variant=largest,
    )


async def _bench_database() -> None:
    await ensure_database(DATABASE_URL)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await migrate(conn)
        # Jobs left by other sections (their photos deleted or never images) are not ours.
        await conn.execute("DELETE FROM photo_jobs")
    finally:
        await conn.close()


async def _settled(pv: PhotoVaultClient, photo_id: str) -> ProcessingState:
    """Polls GetPhoto (the way a client learns it) until the photo is no longer PENDING."""
    while True:
        state = (await pv.get_photo(photo_id)).processing_state
        if state not in (ProcessingState.PENDING, ProcessingState.UNSPECIFIED):
            return state
        await asyncio.sleep(POLL_SECONDS)


async def measure_confirm_to_ready() -> list[float]:
    """Seconds from ConfirmUpload's answer until GetPhoto says READY, a 12 MP JPEG each time,
    the worker idle before each (it polls for due jobs every second when it has none)."""
    await _bench_database()
    photo = photo_like(TWELVE_MP, 11)
    seconds: list[float] = []
    with moto_server() as s3:
        create_bucket(s3, BUCKET, REGION)
        settings = bench_settings(
            AWS_ENDPOINT_URL_S3=s3,
            AWS_REGION=REGION,
            PHOTOVAULT_BUCKET=BUCKET,
            PHOTOVAULT_S3_ADDRESSING_STYLE="path",
            PHOTOVAULT_QUOTA_BYTES=100 * len(photo),
        )
        token = mint_token(SECRET, f"bench-variants-{os.getpid()}")
        async with (
            open_app(settings) as app,
            running_grpc_server(app, "127.0.0.1:0") as srv,
            PhotoVaultClient.grpc(f"127.0.0.1:{srv.port}", token=token, timeout=60) as pv,
            httpx.AsyncClient(timeout=60) as http,
        ):
            stop = asyncio.Event()
            worker = asyncio.create_task(run_until_stopped(build_processing(app), stop))
            try:
                for round_ in range(READY_ROUNDS):
                    # A pause off the worker's one-second poll: each confirm lands at another
                    # point of the idle worker's wait.
                    await asyncio.sleep(1.0 + round_ / READY_ROUNDS)
                    source = await UploadSource.open(photo)
                    ticket = await pv.create_upload_url(
                        "bench.jpg",
                        "image/jpeg",
                        len(photo),
                        checksum_sha256=await source.sha256_base64(),
                    )
                    await put_object(http, ticket, source)
                    started = time.perf_counter()
                    confirmed = await pv.confirm_upload(ticket.upload_id)
                    state = await _settled(pv, confirmed.id)
                    seconds.append(time.perf_counter() - started)
                    if state != ProcessingState.READY:
                        raise RuntimeError(f"the bench photo ended {state.name}")
                    await pv.delete_photo(confirmed.id)
            finally:
                stop.set()
                await worker
    return seconds


def measure() -> VariantResults:
    ways = measure_throughput()
    memory = measure_memory()
    ready = asyncio.run(measure_confirm_to_ready())
    return VariantResults(ways, memory, ready)


def markdown(images: VariantResults) -> list[str]:
    """The section of docs/benchmarks.md."""
    pillow = images.ways[0].variants_per_cpu_second
    memory = images.memory
    memory_ratio = memory.added_bytes / memory.decoded_bytes
    ready_median = statistics.median(images.confirm_to_ready_s)
    return [
        "## Image variants (the worker)",
        "",
        "12-megapixel JPEGs (photo-like: smooth colour fields, gradients and noise), the",
        "default variants (thumb 320, preview 1600, WebP quality 80); CPU time of one core,",
        f"median of {ROUNDS} rounds, the ways interleaved round by round",
        "(bench/variants.py). PSNR: the preview against a full decode resized with Lanczos, on",
        "the photo and on the same photo with thin lines and text drawn over it (sharp).",
        "",
        "| way | variants/s per core | vs plain Pillow | KiB per photo | preview PSNR dB "
        "| sharp PSNR dB |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {w.name} | {w.variants_per_cpu_second:.1f} "
            f"| {w.variants_per_cpu_second / pillow:.2f}x | {w.bytes_per_image / 1024:.1f} "
            f"| {w.preview_psnr_db:.2f} | {w.sharp_psnr_db:.2f} |"
            for w in images.ways
        ),
        "",
        f"A {memory.megapixels:.0f}-megapixel JPEG ({memory.jpeg_bytes / 1e6:.1f} MB) processed",
        f"in a process of its own: peak RSS **{memory.peak_rss_bytes / 1e6:.1f} MB**, of which",
        f"{memory.idle_rss_bytes / 1e6:.1f} MB is the interpreter, Pillow and the file's bytes",
        "(the same process without processing); processing adds",
        f"**{memory.added_bytes / 1e6:.1f} MB**, {memory_ratio:.1f}x the largest variant's",
        f"pixels ({memory.largest_variant[0]}x{memory.largest_variant[1]} RGB,",
        f"{memory.decoded_bytes / 1e6:.1f} MB). JPEG draft decodes at libjpeg's 1/4 scale;",
        "the resize to the largest variant runs in bands of 64 rows.",
        "",
        "From ConfirmUpload's answer to READY (GetPhoto polled every",
        f"{POLL_SECONDS * 1000:.0f} ms), a 12 MP JPEG, the worker in process and idle",
        "before each photo (an idle worker asks for due jobs once a second): median",
        f"**{ready_median:.2f} s** (min {min(images.confirm_to_ready_s):.2f}, max",
        f"{max(images.confirm_to_ready_s):.2f}, {len(images.confirm_to_ready_s)} photos).",
        "",
    ]


def goal_rows(images: VariantResults, mark: Callable[[bool], str]) -> list[str]:
    """Rows of the goals table: the issue's speed and memory goals."""
    pillow = images.ways[0].variants_per_cpu_second
    chosen = next(w for w in images.ways if "(the default)" in w.name)
    variant_ratio = chosen.variants_per_cpu_second / pillow
    memory_ratio = images.memory.added_bytes / images.memory.decoded_bytes
    return [
        f"| variants ≥ 3x plain Pillow per core | {variant_ratio:.2f}x "
        f"| {mark(variant_ratio >= 3)} |",
        f"| 50 MP peak ≤ 4x the largest variant's pixels | {memory_ratio:.1f}x (added RSS) "
        f"| {mark(memory_ratio <= 4)} |",
    ]


def report(results: VariantResults) -> None:
    base = results.ways[0]
    for w in results.ways:
        print(
            f"{w.name:>46}: {w.variants_per_cpu_second:6.2f} variants/s per core "
            f"({w.variants_per_cpu_second / base.variants_per_cpu_second:.2f}x), "
            f"{w.bytes_per_image / 1024:7.1f} KiB per photo, preview PSNR "
            f"{w.preview_psnr_db:.2f} dB, sharp {w.sharp_psnr_db:.2f} dB"
        )
    m = results.memory
    print(
        f"{m.megapixels:.0f} MP JPEG ({m.jpeg_bytes / 1e6:.1f} MB): peak RSS "
        f"{m.peak_rss_bytes / 1e6:.1f} MB, {m.added_bytes / 1e6:.1f} MB over the idle child "
        f"({m.idle_rss_bytes / 1e6:.1f} MB); largest variant decoded "
        f"{m.decoded_bytes / 1e6:.1f} MB: {m.added_bytes / m.decoded_bytes:.1f}x "
        f"({m.peak_rss_bytes / m.decoded_bytes:.1f}x counting the whole process)"
    )
    r = results.confirm_to_ready_s
    print(
        f"confirm -> READY (12 MP JPEG, worker in process): median {statistics.median(r):.2f} s, "
        f"min {min(r):.2f} s, max {max(r):.2f} s over {len(r)}"
    )


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


if __name__ == "__main__":
    # This section alone (`python -m bench.variants`): the figures, then its markdown.
    results = measure()
    report(results)
    print("\n".join([*markdown(results), *goal_rows(results, _mark)]))
