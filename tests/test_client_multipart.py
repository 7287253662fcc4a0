"""The Python client's uploads in parts, on moto: parallel parts with one progress count, a
failed part retried, and a `photovault upload` killed halfway then resumed with `--resume`,
sending no part that S3 already held. Each PUT of a part is counted where it lands, in the
moto server's own request log, not by the client."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_client import PhotoVaultClient
from photovault_server.app import open_app
from photovault_server.server import running_grpc_server

from .support.multipart import PART, large_jpeg
from .support.settings import make_settings
from .support.users import User

_PART_PUT = re.compile(r'"PUT [^"?]*\?partNumber=(\d+)&uploadId=([^& ]+)[^"]*" 200')


class PartPuts(logging.Handler):
    """Counts the part PUTs moto answered 200, per (S3 upload id, part number); runs
    `callback` (in moto's thread) after each."""

    def __init__(self) -> None:
        super().__init__()
        self.count: Counter[tuple[str, int]] = Counter()
        self.callback: Callable[[], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        match = _PART_PUT.search(record.getMessage())
        if match:
            self.count[(match[2], int(match[1]))] += 1
            if self.callback is not None:
                self.callback()


@pytest.fixture
def part_puts() -> Iterator[PartPuts]:
    handler = PartPuts()
    logger = logging.getLogger("werkzeug")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture(scope="module")
async def big_target(database_url: str, redis_url: str, aws_env: None) -> AsyncIterator[str]:
    """A server whose quota takes a few large files."""
    settings = make_settings(database_url, redis_url, PHOTOVAULT_QUOTA_BYTES=500 * 1024 * 1024)
    async with open_app(settings) as app, running_grpc_server(app, "127.0.0.1:0") as running:
        yield f"127.0.0.1:{running.port}"


class FailFirstPut(httpx.AsyncBaseTransport):
    """Answers the first PUT of part `part` with a 503, as a store in trouble would."""

    def __init__(self, part: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._part = part
        self.failed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.failed and request.url.params.get("partNumber") == str(self._part):
            self.failed += 1
            await request.aread()
            return httpx.Response(503, content=b"<Error><Code>SlowDown</Code></Error>")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_upload_in_parts_retries_a_failed_part_and_reports_progress(
    big_target: str, alice: User, http: httpx.AsyncClient, tmp_path: Path, part_puts: PartPuts
) -> None:
    data = large_jpeg(2 * PART + 4321)
    source = tmp_path / "big.jpg"
    source.write_bytes(data)
    failing = FailFirstPut(part=2)
    seen: list[tuple[int, int]] = []
    async with (
        httpx.AsyncClient(transport=failing) as upload_http,
        PhotoVaultClient.grpc(big_target, token=alice.token, http=upload_http) as pv,
    ):
        photo = await pv.upload(
            source,
            multipart_threshold=PART,
            parts_in_flight=2,
            progress=lambda sent, total: seen.append((sent, total)),
        )
    assert failing.failed == 1
    assert photo.size_bytes == len(data)
    assert (await http.get(photo.url)).content == data
    assert seen[-1] == (len(data), len(data))
    assert all(total == len(data) and 0 <= sent <= total for sent, total in seen)
    assert sorted(n for _, n in part_puts.count) == [1, 2, 3]  # each stored once
    assert not (tmp_path / "big.jpg.photovault-upload").exists()


async def _cli(target: str, token: str, *args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    env.update(PHOTOVAULT_TARGET=target, PHOTOVAULT_TOKEN=token)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "photovault_client.cli",
        "upload",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def test_killed_upload_resumes_without_sending_stored_parts_again(
    big_target: str, alice: User, http: httpx.AsyncClient, tmp_path: Path, part_puts: PartPuts
) -> None:
    data = large_jpeg(4 * PART + 999)  # five parts
    source = tmp_path / "pano.jpg"
    source.write_bytes(data)
    options = ("--multipart-threshold", str(PART))

    first = await _cli(big_target, alice.token, str(source), *options, "--parts-in-flight", "1")
    # Stopped the moment S3 has stored its first part (from moto's thread, before the client
    # can go far), then killed: as if the machine had died mid-upload.
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_client() -> None:
        if not stopped.is_set():
            os.kill(first.pid, signal.SIGSTOP)
            loop.call_soon_threadsafe(stopped.set)

    part_puts.callback = stop_client
    await stopped.wait()
    part_puts.callback = None
    first.kill()
    await first.wait()

    state = (tmp_path / "pano.jpg.photovault-upload").read_text()
    upload_id = re.search(r'"upload_id": "([^"]+)"', state)
    assert upload_id is not None
    async with grpc.aio.insecure_channel(big_target) as channel:
        held = await pb_grpc.PhotoServiceStub(channel).ListUploadedParts(
            pb.ListUploadedPartsRequest(upload_id=upload_id[1]), metadata=alice.metadata
        )
    stored = {p.part_number for p in held.parts}
    assert 1 <= len(stored) < 5, stored  # killed mid-upload
    before = Counter(part_puts.count)

    second = await _cli(
        big_target, alice.token, str(source), *options, "--parts-in-flight", "2", "--resume"
    )
    out, err = await asyncio.wait_for(second.communicate(), 120)
    assert second.returncode == 0, err.decode()[-2000:]
    photo_id = out.decode().split()[0]
    assert photo_id == upload_id[1]

    resumed = part_puts.count - before
    (s3_upload,) = {s3_id for s3_id, _ in part_puts.count}
    assert {n for _, n in resumed.elements()} == set(range(1, 6)) - stored
    assert all(part_puts.count[(s3_upload, n)] == 1 for n in range(1, 6))
    assert not (tmp_path / "pano.jpg.photovault-upload").exists()
    async with PhotoVaultClient.grpc(big_target, token=alice.token) as pv:
        url = await pv.get_url(photo_id)
    assert (await http.get(url)).content == data
