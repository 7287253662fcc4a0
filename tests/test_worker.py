"""The real `photovault worker` process against Postgres, Redis and moto S3: a confirmed photo
becomes READY with variants whose bytes carry no metadata and the right orientation, hostile
images end FAILED without stopping it, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.cli import serve_env
from .support.images import camera_exif, encode, halves, jpeg, png_declaring
from .support.users import User, put_bytes

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
RED, BLUE = (220, 20, 20), (20, 20, 220)
# Rounds of GetPhoto, a quarter second apart, before a photo counts as never processed.
MAX_POLLS = 480


@pytest.fixture
def worker_log(tmp_path: Path) -> Path:
    # A file, not a pipe: the worker may log about every photo of the session's database.
    return tmp_path / "worker.log"


@pytest.fixture
async def worker(
    database_url: str, redis_url: str, s3_endpoint: str, grpc_server: object, worker_log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **serve_env(database_url, redis_url, s3_endpoint, 0),
        "PATH": os.environ.get("PATH", ""),
        "PHOTOVAULT_VARIANTS": "thumb:64,preview:160",
    }
    with worker_log.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            PHOTOVAULT, "worker", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    yield process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def _confirmed(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    user: User,
    data: bytes,
    content_type: str = "image/jpeg",
) -> str:
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="camera.jpg", content_type=content_type, size_bytes=len(data)
        ),
        metadata=user.metadata,
    )
    assert (await put_bytes(http, ticket, data)).status_code == 200
    reply = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=user.metadata
    )
    assert reply.photo.processing_state == photo_pb2.PROCESSING_STATE_PENDING
    return ticket.upload_id


async def _processed(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, photo_id: str
) -> photo_pb2.Photo:
    for _ in range(MAX_POLLS):
        photo = (await stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=user.metadata)).photo
        if photo.processing_state != photo_pb2.PROCESSING_STATE_PENDING:
            return photo
        await asyncio.sleep(0.25)
    raise AssertionError(f"photo {photo_id} was never processed")


async def test_the_worker_process_makes_clean_upright_variants(
    worker: asyncio.subprocess.Process,
    worker_log: Path,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    exif = camera_exif(
        orientation=6,
        taken="2023:08:01 09:15:00",
        offset="-04:00",
        make="Apple",
        model="iPhone 15",
        gps=(40.6892, "N", 74.0445, "W"),
    )
    original = encode(halves((400, 200), RED, BLUE), "JPEG", exif=exif, quality=95)
    photo_id = await _confirmed(stub, http, alice, original)
    bomb = await _confirmed(stub, http, alice, png_declaring(30_000, 30_000), "image/png")
    truncated = await _confirmed(stub, http, alice, jpeg((300, 300))[:300])

    photo = await _processed(stub, alice, photo_id)
    assert photo.processing_state == photo_pb2.PROCESSING_STATE_READY
    assert (photo.width, photo.height) == (200, 400)
    assert photo.taken_time.ToSeconds() == 1690895700  # 2023-08-01T13:15:00Z
    assert photo.camera == "Apple iPhone 15"
    assert photo.location.latitude == pytest.approx(40.6892)
    assert photo.location.longitude == pytest.approx(-74.0445)
    assert photo.placeholder
    assert {(v.name, v.width, v.height) for v in photo.variants} == {
        ("thumb", 32, 64),
        ("preview", 80, 160),
    }
    for variant in photo.variants:
        reply = await http.get(variant.url)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/webp"
        img = Image.open(io.BytesIO(reply.content))
        assert not img.getexif()
        assert not {"exif", "xmp"} & set(img.info)
        assert b"iPhone" not in reply.content
        rgb = img.convert("RGB")
        # Turned upright: the stored image's left half (red) is on top.
        assert rgb.getpixel((img.width // 2, 2))[0] > 150  # type: ignore[index]
        assert rgb.getpixel((img.width // 2, img.height - 3))[2] > 150  # type: ignore[index]

    for hostile in (bomb, truncated):
        failed = await _processed(stub, alice, hostile)
        assert failed.processing_state == photo_pb2.PROCESSING_STATE_FAILED
        assert failed.url  # the original is still served
        assert not failed.variants

    page = await stub.ListPhotos(
        pb.ListPhotosRequest(order=pb.PHOTO_ORDER_TAKEN_OLDEST_FIRST, variants=["thumb"]),
        metadata=alice.metadata,
    )
    listed = next(p for p in page.photos if p.id == photo_id)
    assert [v.name for v in listed.variants] == ["thumb"]
    urls = await stub.BatchGetPhotoUrls(
        pb.BatchGetPhotoUrlsRequest(photo_ids=[photo_id], variant="preview"),
        metadata=alice.metadata,
    )
    assert urls.urls[0].variant == "preview"
    assert f"/variants/{photo_id}/preview.webp" in urls.urls[0].url

    worker.send_signal(signal.SIGTERM)
    await asyncio.wait_for(worker.wait(), 60)
    output = await asyncio.to_thread(worker_log.read_text)
    assert worker.returncode == 0, output[-2000:]
    assert "worker_stopped" in output


async def test_the_worker_lambda_handler_drains_due_jobs(
    database_url: str,
    redis_url: str,
    s3_endpoint: str,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    photo_id = await _confirmed(stub, http, alice, jpeg((300, 200)))
    # The session's other tests queued a job for every photo they confirmed: put those off, so
    # that one invocation's budget is this photo's (the handler takes the oldest due first).
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE photo_jobs SET run_after = now() + interval '1 day' WHERE photo_id <> $1",
            uuid.UUID(photo_id),
        )
    finally:
        await conn.close()
    env = {**serve_env(database_url, redis_url, s3_endpoint, 0), "PATH": os.environ.get("PATH", "")}
    # As the worker function runs it: the handler alone, a scheduled event, no context.
    script = (
        "import json; from photovault_server.lambda_worker import handler; "
        "print('REPORT', json.dumps(handler({'photovault': 'worker'}, None)))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"REPORT " in stdout
    photo = (await stub.GetPhoto(pb.GetPhotoRequest(id=photo_id), metadata=alice.metadata)).photo
    assert photo.processing_state == photo_pb2.PROCESSING_STATE_READY, (
        stdout.decode()[-2000:],
        stderr.decode()[-3000:],
    )
    assert {v.name for v in photo.variants} == {"thumb", "preview"}
    # Its CloudWatch EMF line: this invocation's jobs, and the queue left behind (nothing due:
    # the other jobs were put off a day).
    (emf,) = [
        json.loads(line)
        for line in stdout.decode().splitlines()
        if line.startswith("{") and '"photovault-worker"' in line
    ]
    assert emf["jobs_ready"] == 1
    assert emf["jobs_failed"] == 0
    assert emf["jobs_due"] == 0
    assert emf["jobs_oldest_due_seconds"] == 0
    declared = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert declared == {k for k in emf if k.startswith("jobs_")}
