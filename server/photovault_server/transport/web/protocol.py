"""The interface each web protocol implements (grpc_web.py, connect.py), and the negotiation
that picks one by content type. The router (router.py) never learns which one carried a call."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message
from google.rpc import status_pb2

from photovault_server.transport.calls import Transport

from . import connect, grpc_web
from .http import Envelope, HttpRequest, HttpResponse


class WebProtocol(Protocol):
    name: Transport

    def envelope(self, request: HttpRequest, max_message_bytes: int) -> Envelope:
        """Checks the protocol's headers before authentication, without decoding the body (an
        anonymous caller costs no parsing). Raises CallFailed (answered in the protocol) or
        HttpError (answered in plain HTTP)."""
        ...

    def decode(
        self,
        request: HttpRequest,
        body: bytes,
        message_type: type[Message],
        max_message_bytes: int,
    ) -> Message:
        """The request message from the enveloped body, once the caller is authenticated;
        raises CallFailed when it is not one, or HttpError when the body's transfer encoding
        is broken (grpc-web-text that is not base64)."""
        ...

    def encode_reply(self, request: HttpRequest, reply: Message) -> HttpResponse: ...

    def encode_error(self, request: HttpRequest, status: status_pb2.Status) -> HttpResponse: ...


def negotiate(request: HttpRequest) -> WebProtocol | None:
    """The protocol of the request's content type; None when no protocol claims it."""
    content_type = request.content_type
    if content_type in grpc_web.CONTENT_TYPES:
        return grpc_web.PROTOCOL
    if content_type in connect.CONTENT_TYPES:
        return connect.PROTOCOL
    return None
