"""Where the bearer token comes from: a fixed string, or a function (sync or async) asked
before every attempt, so a caller can refresh short-lived tokens without a new client."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

TokenProvider = str | Callable[[], str | Awaitable[str]] | None


async def authorization(provider: TokenProvider) -> dict[str, str]:
    """The `authorization` metadata for one attempt; none when there is no token."""
    if provider is None:
        return {}
    if isinstance(provider, str):
        token = provider
    else:
        result = provider()
        token = await result if inspect.isawaitable(result) else result
    return {"authorization": f"Bearer {token}"} if token else {}
