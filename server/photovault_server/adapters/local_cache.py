"""A small in-process tier in front of the shared URL cache.

A warm page then costs dict look-ups instead of a Redis round trip (measured in
docs/benchmarks.md). It is safe to keep per process: cache keys cover the object and its
visibility, and photos are read from Postgres before any URL is looked up, so an entry left in
one process after another deleted the photo is never reached. Entries follow the same rule as
Redis's (evicted when the URL has only the margin left) and one more: they live at most
`max_age` here, so that Redis is asked again every few seconds. The tier never hides Redis from
the fleet: after Redis restarts empty, the next read of each key misses there, the core signs
(the same bytes, in the same signing window) and writes the entry back for every process.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

from msgspec import Struct

from photovault_server.core.models import SignedUrl
from photovault_server.core.ports import UrlCache


class _Entry(Struct, frozen=True):
    url: SignedUrl
    evict_at: float  # epoch seconds


DEFAULT_MAX_AGE = timedelta(seconds=5)


class TieredUrlCache:
    def __init__(
        self, shared: UrlCache, *, maxsize: int = 10_000, max_age: timedelta = DEFAULT_MAX_AGE
    ) -> None:
        self._shared = shared
        self._max_age = max_age.total_seconds()
        # A dict in write order, each entry with its own eviction time, checked when read; when
        # full, the oldest write goes. cachetools' TLRUCache did this with an LRU order and a
        # heap kept on every read: a third of a warm page's URL work (~2 us a key, measured).
        # Write order is enough here: an entry lives at most `max_age` (seconds) anyway.
        self._maxsize = maxsize
        self._local: dict[str, _Entry] = {}
        # The policy's margin, learnt from writes (it is one per process); until the first
        # write, entries read from Redis are kept to the URL's expiry and the core's own
        # freshness check (expiry - margin) decides, as it does for Redis's.
        self._margin = timedelta(0)
        self.local_hits = 0

    def _keep(self, key: str, url: SignedUrl, now: float) -> None:
        evict_at = min((url.expire_time - self._margin).timestamp(), now + self._max_age)
        if evict_at <= now or self._maxsize <= 0:
            return
        local = self._local
        if local.pop(key, None) is None and len(local) >= self._maxsize:
            del local[next(iter(local))]
        local[key] = _Entry(url, evict_at)

    def _remember(self, entries: Mapping[str, SignedUrl], margin: timedelta) -> None:
        self._margin = margin
        now = time.time()
        for key, url in entries.items():
            self._keep(key, url, now)

    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        found: dict[str, SignedUrl] = {}
        missing = []
        local = self._local
        now = time.time()
        for key in keys:
            entry = local.get(key)
            if entry is None:
                missing.append(key)
            elif entry.evict_at <= now:
                del local[key]
                missing.append(key)
            else:
                found[key] = entry.url
        self.local_hits += len(found)
        if missing:
            shared = await self._shared.get_many(missing)
            now = time.time()
            for key, url in shared.items():
                self._keep(key, url, now)
            found.update(shared)
        return found

    async def put_many(
        self,
        entries: Mapping[str, SignedUrl],
        margin: timedelta,
        *,
        replace: Collection[str] = (),
    ) -> dict[str, SignedUrl]:
        winners = await self._shared.put_many(entries, margin, replace=replace)
        self._remember({**entries, **winners}, margin)
        return winners

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._local.pop(key, None)
        await self._shared.delete_many(keys)
