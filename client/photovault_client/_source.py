"""The bytes of one upload, from memory or from a file: size, first bytes, SHA-256, and an
async stream of chunks (file reads run in a worker thread, never on the event loop)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ._content_types import SNIFF_BYTES

CHUNK_BYTES = 256 * 1024

Source = bytes | bytearray | memoryview | str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class UploadSource:
    name: str | None  # the file's name; None for bytes
    size: int
    head: bytes
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    async def open(cls, source: Source) -> UploadSource:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            return cls(name=None, size=len(data), head=data[:SNIFF_BYTES], data=data)
        path = Path(source)
        size, head = await asyncio.to_thread(_stat_and_head, path)
        return cls(name=path.name, size=size, head=head, path=path)

    async def sha256_base64(self) -> str:
        if self.data is not None:
            digest = hashlib.sha256(self.data).digest()
        else:
            assert self.path is not None
            digest = await asyncio.to_thread(_file_sha256, self.path)
        return base64.b64encode(digest).decode("ascii")

    async def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        if self.data is not None:
            view = memoryview(self.data)
            for start in range(0, len(view), chunk_bytes):
                yield bytes(view[start : start + chunk_bytes])
            return
        assert self.path is not None
        file = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_bytes):
                yield chunk
        finally:
            await asyncio.to_thread(file.close)


def _stat_and_head(path: Path) -> tuple[int, bytes]:
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        return size, file.read(SNIFF_BYTES)


def _file_sha256(path: Path) -> bytes:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").digest()
