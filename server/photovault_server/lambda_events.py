"""Typed, read-only views of the Lambda events PhotoVault accepts, and the matching responses:
Function URL and API Gateway HTTP API (payload 2.0), and API Gateway REST (payload 1.0).

Only what the gateway needs is read; anything missing or malformed raises `BadEvent`, which
the handler answers with a 400, never an unhandled exception.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from msgspec import Struct

# Bodies the gateway answers with that are text (sent as-is); everything else is base64.
_TEXT_TYPES = ("application/json", "application/grpc-web-text", "text/")


class BadEvent(ValueError):
    pass


class HttpEvent(Struct, frozen=True):
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    version: str  # "2.0" or "1.0": the response must be in the same shape
    # Claims of an API Gateway JWT authorizer, when one ran (then the token is verified).
    jwt_claims: Mapping[str, Any] | None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadEvent(f"event field {what} is missing or not a string")
    return value


def _headers(raw: Any, multi: Any = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(multi, dict):
        for name, values in multi.items():
            if isinstance(name, str) and isinstance(values, list):
                headers[name.lower()] = ", ".join(str(v) for v in values)
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(name, str) and isinstance(value, str):
                headers.setdefault(name.lower(), value)
    elif raw is not None:
        raise BadEvent("event field headers is not an object")
    return headers


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadEvent("event field body is not a string")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadEvent("event body is marked base64 but is not") from exc
    return body.encode("utf-8")


def parse_event(event: Any) -> HttpEvent:
    if not isinstance(event, dict):
        raise BadEvent("event is not an object")
    context = event.get("requestContext")
    context = context if isinstance(context, dict) else {}
    if event.get("version") == "2.0":
        http = context.get("http")
        if not isinstance(http, dict):
            raise BadEvent("event field requestContext.http is missing")
        authorizer = context.get("authorizer")
        jwt = authorizer.get("jwt") if isinstance(authorizer, dict) else None
        claims = jwt.get("claims") if isinstance(jwt, dict) else None
        return HttpEvent(
            method=_text(http.get("method"), "requestContext.http.method").upper(),
            path=_text(event.get("rawPath"), "rawPath"),
            headers=_headers(event.get("headers")),
            body=_body(event),
            version="2.0",
            jwt_claims=claims if isinstance(claims, dict) else None,
        )
    if "httpMethod" in event:
        authorizer = context.get("authorizer")
        claims = authorizer.get("claims") if isinstance(authorizer, dict) else None
        return HttpEvent(
            method=_text(event.get("httpMethod"), "httpMethod").upper(),
            path=_text(event.get("path"), "path"),
            headers=_headers(event.get("headers"), event.get("multiValueHeaders")),
            body=_body(event),
            version="1.0",
            jwt_claims=claims if isinstance(claims, dict) else None,
        )
    raise BadEvent("not a Function URL, HTTP API or REST API event")


def http_response(
    version: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    """The response in the event's own shape; binary bodies base64-encoded."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    text = not body or content_type.startswith(_TEXT_TYPES)
    merged: dict[str, str] = {}
    for name, value in headers:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    response: dict[str, Any] = {
        "statusCode": status,
        "headers": merged,
        "body": body.decode("utf-8") if text else base64.b64encode(body).decode(),
        "isBase64Encoded": not text,
    }
    if version == "1.0":
        response["multiValueHeaders"] = {}
    return response
