"""The URL and cache counters as one flat dict: for log events and Lambda's EMF lines (no
metrics library on the cold-start path)."""

from __future__ import annotations

from dataclasses import asdict

from photovault_server.adapters.local_cache import TieredUrlCache
from photovault_server.adapters.redis_cache import RedisUrlCache
from photovault_server.core.urls import UrlStats


def snapshot(
    urls: UrlStats, cache: RedisUrlCache | None, local: TieredUrlCache | None = None
) -> dict[str, object]:
    """The same counters as one log event's fields."""
    fields: dict[str, object] = {f"url_{k}": v for k, v in asdict(urls).items()}
    if local is not None:
        fields["url_local_hits"] = local.local_hits
    if cache is not None:
        fields.update({f"redis_{k}": v for k, v in asdict(cache.stats).items()})
        fields["redis_breaker"] = cache.breaker.state
    return fields
