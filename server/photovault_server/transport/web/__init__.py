"""The web gateway: gRPC-web (binary and text) and Connect unary over HTTP/1.1, for browsers.

`WebGateway.handle` is transport-neutral (an HttpRequest in, an HttpResponse out), so the ASGI
server of `photovault serve` and the Lambda handler share it, with its codecs, unchanged.
"""

from .gateway import HttpRequest, HttpResponse, WebGateway

__all__ = ["HttpRequest", "HttpResponse", "WebGateway"]
