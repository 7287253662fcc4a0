"""Large test files and the multipart flow as a client runs it: parts of S3's minimum 5 MiB
(the suite keeps S3's rules) and a short last part, generated here rather than stored."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import select
import socket
from urllib.parse import urlsplit

import httpx

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .images import jpeg
from .users import User

MiB = 1024 * 1024
PART = 5 * MiB  # what the server picks for files up to 50,000 MiB


def large_jpeg(size_bytes: int = 2 * PART + 1234) -> bytes:
    """A real JPEG start (the server sniffs it) padded with random bytes to `size_bytes`."""
    head = jpeg((4, 4))
    return head + os.urandom(size_bytes - len(head))


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def part_of(data: bytes, part_size: int, number: int) -> bytes:
    return data[(number - 1) * part_size : number * part_size]


async def create(
    stub: pb_grpc.PhotoServiceAsyncStub, user: User, data: bytes, *, checksum: bool = True
) -> pb.CreateMultipartUploadResponse:
    return await stub.CreateMultipartUpload(
        pb.CreateMultipartUploadRequest(
            file_name="big.jpg",
            content_type="image/jpeg",
            size_bytes=len(data),
            checksum_sha256=sha256_b64(data) if checksum else "",
        ),
        metadata=user.metadata,
    )


async def sign(
    stub: pb_grpc.PhotoServiceAsyncStub,
    user: User,
    upload: pb.CreateMultipartUploadResponse,
    data: bytes,
    numbers: list[int],
    *,
    checksums: bool = True,
) -> list[pb.UploadPartUrl]:
    parts = [part_of(data, upload.part_size_bytes, n) for n in numbers]
    response = await stub.SignUploadParts(
        pb.SignUploadPartsRequest(
            upload_id=upload.upload_id,
            part_numbers=numbers,
            checksums_sha256=[sha256_b64(p) for p in parts] if checksums else [],
        ),
        metadata=user.metadata,
    )
    return list(response.parts)


async def put_part(http: httpx.AsyncClient, part: pb.UploadPartUrl, body: bytes) -> httpx.Response:
    return await http.request(
        part.method, part.url, content=body, headers=dict(part.required_headers)
    )


async def upload_parts(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    user: User,
    upload: pb.CreateMultipartUploadResponse,
    data: bytes,
    numbers: list[int],
) -> None:
    for part in await sign(stub, user, upload, data, numbers):
        body = part_of(data, upload.part_size_bytes, part.part_number)
        response = await put_part(http, part, body)
        assert response.status_code == 200, response.text


async def put_status(url: str, headers: dict[str, str], body: bytes) -> int:
    """PUTs `body` and returns the status, stopping the upload as soon as the server answers:
    S3 refuses a bad signature from the headers alone and stops reading a body of megabytes,
    which a client that insists on writing it all (httpx) would wait on until it timed out."""
    return await asyncio.to_thread(_put_status, url, headers, body)


def _put_status(url: str, headers: dict[str, str], body: bytes) -> int:
    parts = urlsplit(url)
    head = [f"PUT {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    if "content-length" not in {name.lower() for name in headers}:
        head.append(f"Content-Length: {len(body)}")
    head.append("Connection: close")
    pending = memoryview(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    received = b""
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30) as sock:
        sock.setblocking(False)
        while b"\r\n" not in received:
            # Reading first: once the server answered, writing on could only reset the line.
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 30)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            elif writable:
                try:
                    pending = pending[sock.send(pending[:65536]) :]
                except OSError:
                    pending = pending[:0]  # the server stopped reading: wait for its answer
            else:
                raise TimeoutError("no answer from the server")
    return int(received.split(b" ", 2)[1])
