"""CORS of the gateway over a real socket: preflights, refused origins, and the headers that
let a browser read gRPC-web statuses from another origin."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from .support.grpc_web import (
    ALLOWED_ORIGIN,
    GATEWAY_HOST,
    GET_ACCOUNT_FRAME,
    OTHER_ORIGIN,
    SERVICE,
    auth,
    grpc_web_post,
    read_grpc_web,
)
from .support.users import User

# CORS

REQUESTED_HEADERS = (
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "connect-protocol-version",
    "connect-timeout-ms",
)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def header_list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


async def test_preflight_from_allowed_origin(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={
            "host": GATEWAY_HOST,
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": ",".join(REQUESTED_HEADERS),
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    cors = cors_headers(response)
    assert set(cors) == {
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    }
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN  # the Origin, not the Host
    assert cors["access-control-allow-methods"] == "POST, OPTIONS"
    assert header_list(cors["access-control-allow-headers"]) >= set(REQUESTED_HEADERS)
    assert int(cors["access-control-max-age"]) > 0
    assert "origin" in header_list(response.headers["vary"])
    assert all("*" not in header_list(v) for v in cors.values())
    assert "photos.internal" not in str(response.headers)


@pytest.mark.parametrize(
    "origin",
    [OTHER_ORIGIN, "null", "http://allowed.test.evil.test", "https://allowed.test", "HOST"],
)
async def test_disallowed_origin_gets_no_cors_headers(
    web: httpx.AsyncClient, gateway_url: str, alice: User, origin: str
) -> None:
    # The gateway's own address (its Host) is not an allowed origin either.
    origin = gateway_url if origin == "HOST" else origin
    preflight = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={"origin": origin, "access-control-request-method": "POST"},
    )
    assert preflight.status_code != 204
    assert cors_headers(preflight) == {}
    actual = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"origin": origin, **auth(alice)}
    )
    assert read_grpc_web(actual).code == 0  # served, but a browser will not let the page read it
    assert cors_headers(actual) == {}


@pytest.mark.parametrize(
    ("case", "status"),
    [("ok", 200), ("grpc-error", 200), ("connect-error", 404), ("415", 415), ("405", 405)],
)
async def test_actual_responses_from_allowed_origin_expose_grpc_headers(
    web: httpx.AsyncClient, alice: User, case: str, status: int
) -> None:
    headers = {"origin": ALLOWED_ORIGIN, "host": GATEWAY_HOST, **auth(alice)}
    path = f"/{SERVICE}/GetAccount"
    match case:
        case "ok":
            response = await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=headers)
        case "grpc-error":
            response = await grpc_web_post(web, "Nope", GET_ACCOUNT_FRAME, headers=headers)
        case "connect-error":
            response = await web.post(
                f"/{SERVICE}/GetPhoto",
                content=json.dumps({"id": str(uuid.uuid4())}),
                headers={"content-type": "application/json", **headers},
            )
        case "415":
            response = await web.post(
                path, content=b"x", headers={"content-type": "text/plain", **headers}
            )
        case _:
            response = await web.get(path, headers=headers)
    assert response.status_code == status
    cors = cors_headers(response)
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert header_list(cors["access-control-expose-headers"]) >= {
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
    }
    assert "origin" in header_list(response.headers["vary"])
    assert all("*" not in header_list(v) for v in cors.values())
    assert "photos.internal" not in str(response.headers)


async def test_preflight_allows_requested_custom_metadata_headers(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={
            "origin": ALLOWED_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-trace-bin, x-tenant, cookie",
        },
    )
    allowed = header_list(response.headers["access-control-allow-headers"])
    assert {"x-trace-bin", "x-tenant", "content-type"} <= allowed
    assert "cookie" not in allowed
