"""Large files in parts (S3 multipart through the service): parts uploaded in parallel with a
bounded number in flight, each retried on its own, part URLs signed a hundred at a time and
again when they near their expiry, one progress count for the whole file, and a state file
beside the source so that an upload killed halfway resumes where S3 left it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx

from ._errors import Code, NotFound, UploadRejected, error_from_code
from ._retry import RetryPolicy
from ._source import UploadSource
from ._upload import RETRY_STATUSES, ProgressCallback, store_message

# Files larger than this go in parts (the service's single PUT takes 25 MiB by default).
DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024
DEFAULT_PARTS_IN_FLIGHT = 4
MAX_PARTS_PER_SIGN = 100  # the service signs at most 100 parts per call
# A URL this close to its expiry is signed again before use: a slow part never starts late.
RESIGN_MARGIN = timedelta(minutes=2)
STATE_SUFFIX = ".photovault-upload"
_SLICE = 256 * 1024


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """CreateMultipartUpload's answer."""

    upload_id: str
    part_size_bytes: int
    part_count: int
    expire_time: datetime | None


@dataclass(frozen=True, slots=True)
class PartUrl:
    part_number: int
    url: str
    method: str
    required_headers: Mapping[str, str]
    expire_time: datetime | None


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    size_bytes: int
    etag: str


class PartsApi(Protocol):
    """The RPCs an upload in parts needs (PhotoVaultClient provides them)."""

    async def create_multipart_upload(
        self, file_name: str, content_type: str, size_bytes: int, *, checksum_sha256: str = ""
    ) -> MultipartUpload: ...

    async def sign_upload_parts(
        self, upload_id: str, part_numbers: Sequence[int], *, checksums_sha256: Sequence[str] = ()
    ) -> list[PartUrl]: ...

    async def list_uploaded_parts(self, upload_id: str) -> list[UploadedPart]: ...

    async def abort_upload(self, upload_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class UploadState:
    """What resuming needs, kept beside the source file until the upload is confirmed."""

    upload_id: str
    size: int
    mtime_ns: int
    sha256: str
    part_size: int
    part_checksums: list[str]

    @staticmethod
    def path_for(source: Path) -> Path:
        return source.with_name(source.name + STATE_SUFFIX)

    def save(self, source: Path) -> None:
        target = self.path_for(source)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, target)  # whole or not at all, even if killed mid-write

    @classmethod
    def load(cls, source: Path) -> UploadState | None:
        try:
            return cls(**json.loads(cls.path_for(source).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _part_checksums(source: UploadSource, part_size: int) -> list[str]:
    """Each part's base64 SHA-256, signed into its URL so that S3 refuses other bytes."""
    return [
        base64.b64encode(hashlib.sha256(_read_part(source, offset, part_size)).digest()).decode()
        for offset in range(0, source.size, part_size)
    ]


def _read_part(source: UploadSource, offset: int, length: int) -> bytes:
    if source.data is not None:
        return source.data[offset : offset + length]
    assert source.path is not None
    with source.path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


class _Urls:
    """Part URLs, signed in batches of up to 100 of the parts still to send, again when one
    nears its expiry or S3 refused it (403: expired)."""

    def __init__(self, api: PartsApi, upload_id: str, pending: Sequence[int], checksums: list[str]):
        self._api = api
        self._upload_id = upload_id
        self._pending = list(pending)
        self._checksums = checksums
        self._urls: dict[int, PartUrl] = {}
        self._lock = asyncio.Lock()

    async def get(self, number: int) -> PartUrl:
        async with self._lock:
            url = self._urls.get(number)
            if url is None or _expiring(url):
                # This part and the next parts still without a fresh URL: parts read in
                # parallel ask in any order, and one call serves them all.
                unsigned = [
                    n
                    for n in self._pending
                    if n != number and (n not in self._urls or _expiring(self._urls[n]))
                ]
                batch = [number, *unsigned[: MAX_PARTS_PER_SIGN - 1]]
                signed = await self._api.sign_upload_parts(
                    self._upload_id,
                    batch,
                    checksums_sha256=[self._checksums[n - 1] for n in batch],
                )
                self._urls.update({p.part_number: p for p in signed})
                url = self._urls[number]
            return url

    def forget(self, number: int) -> None:
        self._urls.pop(number, None)


def _expiring(url: PartUrl) -> bool:
    return url.expire_time is not None and url.expire_time - RESIGN_MARGIN <= datetime.now(UTC)


async def upload_in_parts(
    api: PartsApi,
    http: httpx.AsyncClient,
    source: UploadSource,
    *,
    file_name: str,
    content_type: str,
    parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    policy: RetryPolicy,
) -> tuple[str, Callable[[], None]]:
    """Sends every part not yet on S3; returns the upload id to confirm and a function that
    forgets the state file (call it once confirmed)."""
    if parts_in_flight < 1:
        raise ValueError("parts_in_flight must be at least 1")
    path = source.path
    mtime_ns = await asyncio.to_thread(lambda: path.stat().st_mtime_ns) if path else 0
    state = UploadState.load(path) if path else None
    if state is not None and not (
        resume and (state.size, state.mtime_ns) == (source.size, mtime_ns)
    ):
        # Not resuming, or the file changed since: the old upload can only hold quota.
        with contextlib.suppress(NotFound):
            await api.abort_upload(state.upload_id)
        state = None

    done: dict[int, int] = {}
    if state is not None:
        try:
            held = await api.list_uploaded_parts(state.upload_id)
        except NotFound:  # confirmed, aborted or expired meanwhile: start again
            state = None
        else:
            done = {p.part_number: p.size_bytes for p in held}
    if state is None:
        sha_whole = await source.sha256_base64()
        # The service picks the part size (S3's 5 MiB minimum and 10,000 parts).
        upload = await api.create_multipart_upload(
            file_name, content_type, source.size, checksum_sha256=sha_whole
        )
        checksums = await asyncio.to_thread(_part_checksums, source, upload.part_size_bytes)
        state = UploadState(
            upload.upload_id, source.size, mtime_ns, sha_whole, upload.part_size_bytes, checksums
        )
        if path is not None:
            await asyncio.to_thread(state.save, path)

    part_size, count = state.part_size, len(state.part_checksums)

    def length(number: int) -> int:
        return min(part_size, source.size - (number - 1) * part_size)

    # A part S3 holds with another length (a different file) is sent again.
    pending = [n for n in range(1, count + 1) if done.get(n) != length(n)]
    sent = {n: length(n) for n in range(1, count + 1) if n not in pending}

    def report() -> None:
        if progress is not None:
            progress(sum(sent.values()), source.size)

    report()
    urls = _Urls(api, state.upload_id, pending, state.part_checksums)
    slots = asyncio.Semaphore(parts_in_flight)

    async def send(number: int) -> None:
        async with slots:
            body = await asyncio.to_thread(
                _read_part, source, (number - 1) * part_size, length(number)
            )
            await _put_part(http, urls, number, body, sent, report, policy)

    async with asyncio.TaskGroup() as group:
        for number in pending:
            group.create_task(send(number))

    def forget() -> None:
        if path is not None:
            UploadState.path_for(path).unlink(missing_ok=True)

    return state.upload_id, forget


async def _put_part(
    http: httpx.AsyncClient,
    urls: _Urls,
    number: int,
    body: bytes,
    sent: dict[int, int],
    report: Callable[[], None],
    policy: RetryPolicy,
) -> None:
    problem = ""
    for attempt in range(1, policy.max_attempts + 1):
        url = await urls.get(number)
        sent[number] = 0
        try:
            response = await http.request(
                url.method,
                url.url,
                content=_slices(body, number, sent, report),
                headers=dict(url.required_headers),
            )
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            if response.is_success:
                sent[number] = len(body)
                report()
                return
            problem = store_message(response)
            if response.status_code == 403:
                urls.forget(number)  # expired (or its credentials rotated): sign it again
            elif response.status_code not in RETRY_STATUSES:
                raise UploadRejected(response.status_code, f"part {number}: {problem}")
        sent[number] = 0
        report()
        if attempt < policy.max_attempts:
            await asyncio.sleep(policy.backoff(attempt))
    raise error_from_code(
        Code.UNAVAILABLE,
        f"part {number} failed after {policy.max_attempts} attempts: {problem}",
        "UPLOAD_UNAVAILABLE",
    )


async def _slices(
    body: bytes, number: int, sent: dict[int, int], report: Callable[[], None]
) -> AsyncIterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), _SLICE):
        chunk = bytes(view[start : start + _SLICE])
        yield chunk
        sent[number] += len(chunk)
        report()
