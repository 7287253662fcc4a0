"""The URL cache switched off (PHOTOVAULT_URL_CACHE=off): remembers nothing, so every URL is
signed afresh. Also the baseline of the benchmarks."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

from photovault_server.core.models import SignedUrl


class NoUrlCache:
    async def get_many(self, keys: Sequence[str]) -> dict[str, SignedUrl]:
        return {}

    async def put_many(
        self,
        entries: Mapping[str, SignedUrl],
        margin: timedelta,
        *,
        replace: Collection[str] = (),
    ) -> dict[str, SignedUrl]:
        return {}

    async def delete_many(self, keys: Sequence[str]) -> None:
        return None
