"""The URL policy: how long download URLs live, when a cached one is too old to hand out, and
what a cache key must cover so that a cached URL is only reused where it is still right.

Signing times are quantised: every URL for an object signed within one window carries the same
X-Amz-Date and expiry, so any process signing it in that window produces the same bytes. The
cache then saves signatures, and even without it (Redis down, another process, a cold Lambda)
browsers and CDNs see a stable URL. A window lasts (lifetime - margin): a URL handed out
anywhere in its window still has more than the margin to live, and its cache entry expires
exactly when the window ends.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol
from urllib.parse import quote

from msgspec import Struct

from .models import Photo, PhotoVariant, ServedPhoto, ServedVariant, SignedUrl, Visibility
from .ports import DownloadSigner, UrlCache


class Fetchable(Protocol):
    """An object a URL is handed out for: a photo's original or one of its variants."""

    @property
    def owner_id(self) -> str: ...
    @property
    def object_key(self) -> str: ...
    @property
    def visibility(self) -> Visibility: ...


class VariantObject(NamedTuple):
    """A variant's object as URLs see it: the photo's owner and visibility, its own key. (A
    tuple: a page of 100 photos with their variants makes hundreds.)"""

    owner_id: str
    object_key: str
    visibility: Visibility

    @classmethod
    def of(cls, photo: Photo, variant: PhotoVariant) -> VariantObject:
        return cls(photo.owner_id, variant.object_key, photo.visibility)


class UnsignedUrl(Struct, frozen=True):
    """A PUBLIC object's URL (public_base_url): no signature, no expiry."""

    url: str
    expire_time: None = None


# What `for_photos` hands out: a signed URL (as the cache or the signer made it) or a public one.
DownloadUrl = SignedUrl | UnsignedUrl


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SIGV4_MAX_EXPIRY = timedelta(days=7)
MIN_LIFETIME = timedelta(seconds=2)
MIN_CACHE_MARGIN = timedelta(minutes=5)


def default_cache_margin(url_ttl: timedelta) -> timedelta:
    """25% of the URL lifetime, at least five minutes; but never more than half the lifetime,
    or URLs of ten minutes or less could never be cached (nor would the policy accept them)."""
    return min(max(url_ttl / 4, MIN_CACHE_MARGIN), url_ttl / 2)


class SigningWindow(Struct, frozen=True):
    signed_at: datetime
    expire_at: datetime
    margin: timedelta


class UrlPolicy(Struct, frozen=True):
    download_ttl: timedelta
    cache_margin: timedelta
    # Unsigned base for PUBLIC photos (a CDN in front of the bucket); empty: presign them too.
    public_base_url: str = ""

    def __post_init__(self) -> None:
        if not MIN_LIFETIME <= self.download_ttl <= SIGV4_MAX_EXPIRY:
            raise ValueError("download URL lifetime must be between 2 seconds and 7 days")
        if not timedelta(0) <= self.cache_margin < self.download_ttl:
            raise ValueError("cache margin must be shorter than the download URL lifetime")

    def window(self, now: datetime, lifetime_cap: timedelta | None = None) -> SigningWindow:
        """The signing window `now` falls in. `lifetime_cap` (temporary credentials of unknown
        expiry) shortens the lifetime, and the margin with it, so that the rule still holds.

        In whole seconds, as X-Amz-Date and X-Amz-Expires are: the lifetime rounds down, the
        margin up (never beyond half the lifetime), so a window ends exactly when its URLs have
        the margin left, and every URL handed out in it has more than that."""
        lifetime = min(self.download_ttl, lifetime_cap) if lifetime_cap else self.download_ttl
        life = max(int(lifetime.total_seconds()), int(MIN_LIFETIME.total_seconds()))
        margin = min(math.ceil(self.cache_margin.total_seconds()), life // 2)
        step = life - margin
        start = int((now - _EPOCH).total_seconds()) // step * step
        signed_at = _EPOCH + timedelta(seconds=start)
        return SigningWindow(
            signed_at=signed_at,
            expire_at=signed_at + timedelta(seconds=life),
            margin=timedelta(seconds=margin),
        )

    def public_url(self, photo: Fetchable) -> str | None:
        if photo.visibility is Visibility.PUBLIC and self.public_base_url:
            return f"{self.public_base_url.rstrip('/')}/{quote(photo.object_key)}"
        return None


class UrlStats(Struct):
    """Counters read by the metrics exporters and the benchmarks."""

    hits: int = 0
    misses: int = 0
    signatures: int = 0
    public: int = 0


def cache_key(scope: str, photo: Fetchable) -> str:
    """`pv:url:{<owner>}:<digest>`. The digest covers what the URL points at and how it is
    fetched: the store's scope (bucket, endpoint, addressing style: never the credentials that
    sign, so that every process of a fleet, each with its own role credentials, shares one
    entry), the operation, the object key and the visibility. The braces hold a hash of the
    owner: a Redis Cluster hash tag, so a page's keys (one owner's photos) share a slot and the
    page stays one round trip. Hashed, to keep keys short and free of user text. A variant has
    an object key of its own, so its entry is its own."""
    return _cache_key(scope, photo.owner_id, photo.object_key, int(photo.visibility))


# Memoized: the same photos are listed again and again (a gallery's pages, every few seconds),
# and a hit costs a fraction of the hashing. Bounded (~2 MB at most).
@functools.lru_cache(maxsize=16_384)
def _cache_key(scope: str, owner_id: str, object_key: str, visibility: int) -> str:
    material = f"{scope}\x00GET\x00{object_key}\x00{visibility}"
    digest = hashlib.blake2b(material.encode(), digest_size=16).hexdigest()
    return f"pv:url:{{{_owner_tag(owner_id)}}}:{digest}"


@functools.lru_cache(maxsize=4096)
def _owner_tag(owner_id: str) -> str:
    # Once per owner rather than once per photo: a page is one owner's photos.
    return hashlib.blake2b(owner_id.encode(), digest_size=6).hexdigest()


class DownloadUrls:
    """Hands out download URLs for photos: public ones unsigned, private ones from the cache
    while they have at least the margin left, else freshly signed in one batch."""

    def __init__(self, signer: DownloadSigner, cache: UrlCache, policy: UrlPolicy) -> None:
        self._store = signer
        self._cache = cache
        self._policy = policy
        self.stats = UrlStats()

    async def attach(
        self, photos: Sequence[Photo], now: datetime, variants: Collection[str] = ()
    ) -> list[ServedPhoto]:
        """The photos with their URLs and their variants' (those named in `variants`; empty:
        all), every URL of the page from one cache read and one batch of signatures. The
        photos themselves are not copied: the URLs travel beside them (ServedPhoto)."""
        chosen = [
            tuple(v for v in p.variants if v.name in variants) if variants else p.variants
            for p in photos
        ]
        targets: list[Fetchable] = list(photos)
        for photo, photo_variants in zip(photos, chosen, strict=True):
            if photo_variants:
                targets.extend(VariantObject.of(photo, v) for v in photo_variants)
        urls = await self.for_photos(targets, now)
        out = []
        at = len(photos)
        for photo, photo_variants, url in zip(photos, chosen, urls[: len(photos)], strict=True):
            served: tuple[ServedVariant, ...] = ()
            if photo_variants:
                end = at + len(photo_variants)
                served = tuple(
                    ServedVariant(v, u.url, u.expire_time)
                    for v, u in zip(photo_variants, urls[at:end], strict=True)
                )
                at = end
            out.append(ServedPhoto(photo, url.url, url.expire_time, served))
        return out

    async def for_photos(self, photos: Sequence[Fetchable], now: datetime) -> list[DownloadUrl]:
        """Each object's URL, in order."""
        result: list[DownloadUrl | None]
        if self._policy.public_base_url:
            result, todo = [], []
            for i, photo in enumerate(photos):
                public = self._policy.public_url(photo)
                if public is None:
                    todo.append(i)
                result.append(None if public is None else UnsignedUrl(public))
        else:  # nothing is served unsigned: every URL is signed (or cached)
            result, todo = [None] * len(photos), list(range(len(photos)))
        self.stats.public += len(photos) - len(todo)
        if todo:
            await self._fill_signed(photos, todo, result, now)
        return [u for u in result if u is not None]

    async def _fill_signed(
        self,
        photos: Sequence[Fetchable],
        todo: list[int],
        result: list[DownloadUrl | None],
        now: datetime,
    ) -> None:
        """One cache read for the page, one batch of signatures for the misses, one write."""
        scope = await self._store.url_scope()
        window = self._policy.window(now, await self._store.url_lifetime_cap())
        fresh_enough = now + window.margin
        keys = [cache_key(scope, photos[i]) for i in todo]
        cached = await self._cache.get_many(list(dict.fromkeys(keys)))
        misses: dict[str, str] = {}
        stale: list[str] = []
        missed = 0
        for key, i in zip(keys, todo, strict=True):
            hit = cached.get(key)
            if hit is not None and hit.expire_time >= fresh_enough:
                result[i] = hit  # handed out as the cache holds it: nothing to copy
            else:
                if hit is not None and key not in misses:
                    stale.append(key)
                misses.setdefault(key, photos[i].object_key)
                missed += 1
        self.stats.hits += len(todo) - missed
        self.stats.misses += missed
        if not misses:
            return
        new = await self._store.presign_downloads(
            list(misses.values()), signed_at=window.signed_at, expire_at=window.expire_at
        )
        self.stats.signatures += len(new)
        # Stale entries (the cache's clock behind ours, a raised margin, garbage) are
        # overwritten in the same write instead of being deferred to.
        stored = await self._cache.put_many(
            dict(zip(misses, new, strict=True)), window.margin, replace=stale
        )
        winners = {}
        for key, ours in zip(misses, new, strict=True):
            theirs = stored.get(key)
            # Another caller's URL wins only while it is still fresh enough to hand out.
            fresh = theirs is not None and theirs.expire_time >= fresh_enough
            winners[key] = theirs if fresh and theirs is not None else ours
        for key, i in zip(keys, todo, strict=True):
            if result[i] is None:
                result[i] = winners[key]

    async def forget(self, photos: Sequence[Photo]) -> None:
        """Drops cached URLs, the originals' and the variants' (delete, visibility change), so
        they are never handed out again."""
        scope = await self._store.url_scope()
        keys = [cache_key(scope, p) for p in photos]
        keys += [cache_key(scope, VariantObject.of(p, v)) for p in photos for v in p.variants]
        await self._cache.delete_many(keys)


__all__ = [
    "DownloadUrl",
    "DownloadUrls",
    "SignedUrl",
    "SigningWindow",
    "UnsignedUrl",
    "UrlPolicy",
    "UrlStats",
    "VariantObject",
    "cache_key",
    "default_cache_margin",
]
