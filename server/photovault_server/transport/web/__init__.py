"""The web gateway: gRPC-web (binary and text) and Connect unary over HTTP/1.1, for browsers.

`WebGateway.handle` is transport-neutral (an HttpRequest in, an HttpResponse out), so the ASGI
server of `photovault serve` and the Lambda handler share it, with its codecs, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from photovault_server.transport.handlers import DEFAULT_MAX_REPLY_BYTES

from .cors import CorsPolicy
from .gateway import WebGateway
from .http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from photovault_server.app import App


def web_gateway(app: App, *, max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> WebGateway:
    """The gateway over an app's service, with the CORS allow-list of its settings."""
    return WebGateway(
        app.service,
        app.verifier,
        cors=CorsPolicy(app.settings.cors_origins),
        max_reply_bytes=max_reply_bytes,
        stats=app.rpc_stats,
        tracing=app.tracing,
        admission=app.admission,
    )


__all__ = ["HttpRequest", "HttpResponse", "WebGateway", "web_gateway"]
