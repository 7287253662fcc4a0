"""CORS for browsers calling the gateway from other origins: an explicit allow-list; the
allowed Origin is echoed (never the Host, never `*`), and a refused origin gets no CORS header."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .http import HttpHandler, HttpRequest, HttpResponse, Refusal

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = (
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-request-id",
)
EXPOSED_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id"
MAX_AGE_SECONDS = "7200"
_TOKEN = re.compile(r"[a-z0-9-]{1,64}")


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(o.rstrip("/") for o in origins)
        self._any = "*" in self._origins

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (self._any or origin in self._origins)

    def preflight_headers(self, origin: str, requested: str = "") -> list[tuple[str, str]]:
        # Custom call metadata (x-…, …-bin) may be sent too, when the browser asks for it.
        custom = [
            h
            for h in (part.strip().lower() for part in requested.split(","))
            if h and h not in ALLOWED_HEADERS and h.startswith("x-") and _TOKEN.fullmatch(h)
        ]
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", ALLOWED_METHODS),
            ("access-control-allow-headers", ", ".join((*ALLOWED_HEADERS, *custom))),
            ("access-control-max-age", MAX_AGE_SECONDS),
            ("vary", "Origin"),
        ]

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        if origin is None or not self.allows(origin):
            return [("vary", "Origin")]
        return [
            ("access-control-allow-origin", origin),
            ("access-control-expose-headers", EXPOSED_HEADERS),
            ("vary", "Origin"),
        ]


class CorsHandler:
    """Wraps an HttpHandler with CORS, for the ASGI app and the Lambda handler alike: answers
    preflights itself and adds the response headers to everything the inner handler answers."""

    def __init__(self, inner: HttpHandler, policy: CorsPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def handle(
        self,
        request: HttpRequest,
        *,
        deadline_cap: float | None = None,
        verified_claims: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        origin = request.headers.get("origin")
        if request.method == "OPTIONS":
            if origin is not None and self._policy.allows(origin):
                requested = request.headers.get("access-control-request-headers", "")
                return HttpResponse(204, self._policy.preflight_headers(origin, requested))
            return HttpResponse(403, [("vary", "Origin")])
        response = await self._inner.handle(
            request, deadline_cap=deadline_cap, verified_claims=verified_claims
        )
        response.headers.extend(self._policy.response_headers(origin))
        return response

    def refuse(self, request: HttpRequest, refusal: Refusal) -> HttpResponse:
        response = self._inner.refuse(request, refusal)
        response.headers.extend(self._policy.response_headers(request.headers.get("origin")))
        return response
