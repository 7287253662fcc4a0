"""UrlCache on Redis. An optimisation, never a dependency: every failure (down, slow, garbage)
is logged and answered as a miss, so the call goes on with freshly signed URLs.

Entries are `<expire epoch ms>\\n<url>` and live until the URL's expiry minus the margin (PXAT),
so whatever Redis returns still has at least the margin of life left. Writes use
`SET … NX GET`: when two callers miss at once, the second gets the first one's URL back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from photovault_server.core.models import SignedUrl

log = structlog.get_logger(__name__)

_CACHE_ERRORS = (RedisError, OSError, TimeoutError, ValueError, UnicodeDecodeError)


def _encode(url: SignedUrl) -> str:
    return f"{int(url.expire_time.timestamp() * 1000)}\n{url.url}"


def _decode(raw: bytes | str | None) -> SignedUrl | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    millis, sep, url = text.partition("\n")
    if not sep or not millis.isdigit() or not url.startswith(("https://", "http://")):
        return None
    return SignedUrl(url=url, expire_time=datetime.fromtimestamp(int(millis) / 1000, UTC))


class RedisUrlCache:
    def __init__(self, redis: Redis, *, timeout: timedelta = timedelta(milliseconds=50)) -> None:
        self._redis = redis
        self._timeout = timeout.total_seconds()

    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        if not keys:
            return {}
        try:
            async with asyncio.timeout(self._timeout):
                values = await self._redis.mget(keys)
        except _CACHE_ERRORS as exc:
            log.warning("url_cache_read_failed", error=type(exc).__name__)
            return {}
        found = {}
        for key, raw in zip(keys, values, strict=True):
            try:
                url = _decode(raw)
            except _CACHE_ERRORS:
                url = None
            if url is not None:
                found[key] = url
        return found

    async def put_many(
        self, entries: Mapping[str, SignedUrl], margin: timedelta
    ) -> dict[str, SignedUrl]:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        keys = []
        try:
            async with asyncio.timeout(self._timeout):
                pipe = self._redis.pipeline(transaction=False)
                for key, url in entries.items():
                    evict_ms = int((url.expire_time - margin).timestamp() * 1000)
                    if evict_ms > now_ms:
                        keys.append(key)
                        pipe.set(key, _encode(url), pxat=evict_ms, nx=True, get=True)
                if not keys:
                    return {}
                previous = await pipe.execute()
        except _CACHE_ERRORS as exc:
            log.warning("url_cache_write_failed", error=type(exc).__name__)
            return {}
        winners = {}
        for key, raw in zip(keys, previous, strict=True):
            try:
                theirs = _decode(raw)
            except _CACHE_ERRORS:
                theirs = None
            winners[key] = theirs if theirs is not None else entries[key]
        return winners

    async def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(*keys)
        except _CACHE_ERRORS as exc:
            # Cannot fail open here: a stale URL could outlive a delete. Log loudly; the entry
            # still expires by itself at (URL expiry - margin).
            log.error("url_cache_invalidate_failed", error=type(exc).__name__, keys=len(keys))
