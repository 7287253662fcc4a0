"""What a contract test needs beside the port itself: the implementation's notion of now and the
means to move it, or to put an object where only a client's PUT would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from photovault_server.core.ports import ObjectStore, UrlCache


@dataclass(frozen=True)
class CacheUnderTest:
    cache: UrlCache
    # The time the cache evicts by: the wall clock for Redis, a FakeClock for the fake.
    now: Callable[[], datetime]
    # Returns once `now()` has reached the moment (waits for the wall clock, moves a fake one).
    advance_to: Callable[[datetime], Awaitable[None]]


@dataclass(frozen=True)
class StoreUnderTest:
    store: ObjectStore
    # Stores an object as a client's PUT to an upload URL would.
    put: Callable[[str, bytes, str], Awaitable[None]]
    # The time presign_upload signs at.
    now: Callable[[], datetime]
    # Stores a part of a multipart upload (key, S3 upload id, part number, bytes) as a
    # client's PUT to a part URL would.
    put_part: Callable[[str, str, int, bytes], Awaitable[None]] | None = None
