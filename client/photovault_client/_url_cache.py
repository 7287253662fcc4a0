"""Download URLs the client has already been given, handed out again without an RPC while
they have more than a margin of life left (the service issues stable URLs, so browsers and
CDNs cache the bytes too)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

DEFAULT_MARGIN = timedelta(minutes=5)
# Unsigned (public) URLs carry no expiry; they stop working only if the photo turns private
# or is deleted elsewhere, so they are trusted for a while and then fetched again.
DEFAULT_UNSIGNED_TTL = timedelta(hours=1)
DEFAULT_MAX_ENTRIES = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC)


class UrlCache:
    """(photo id, variant) -> (url, fresh until), least recently used evicted beyond
    `max_entries`; the variant is "" for the original."""

    def __init__(
        self,
        *,
        margin: timedelta = DEFAULT_MARGIN,
        unsigned_ttl: timedelta = DEFAULT_UNSIGNED_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = utc_now,
    ) -> None:
        self._margin = margin
        self._unsigned_ttl = unsigned_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[str, datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, photo_id: str, url: str, expire_time: datetime | None, variant: str = "") -> None:
        """Remembers a URL the service handed out; one too close to expiry is not kept."""
        if not url or self._max_entries <= 0:
            return
        now = self._clock()
        if expire_time is None:
            fresh_until = now + self._unsigned_ttl
        else:
            fresh_until = expire_time - self._margin
        key = (photo_id, variant)
        if fresh_until <= now:
            self._entries.pop(key, None)
            return
        self._entries[key] = (url, fresh_until)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def get(self, photo_id: str, variant: str = "") -> str | None:
        """The cached URL while it is fresh, else None (and the stale entry is dropped)."""
        key = (photo_id, variant)
        entry = self._entries.get(key)
        if entry is None:
            return None
        url, fresh_until = entry
        if self._clock() >= fresh_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return url

    def evict(self, photo_id: str) -> None:
        """Forgets the photo's URLs, the original's and every variant's."""
        for key in [k for k in self._entries if k[0] == photo_id]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
