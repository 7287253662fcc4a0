"""Call metadata through the gateway over a real socket: the bearer token, the request id in
the logs, -bin headers and the deadline headers of both protocols."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import structlog
from google.rpc import error_details_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.app import App
from photovault_server.core.models import Account

from .support.callers import (
    patch_core,
)
from .support.grpc_web import (
    GET_ACCOUNT_FRAME,
    SERVICE,
    auth,
    grpc_web_post,
    read_grpc_web,
    trailers_only_status,
)
from .support.users import User

# Metadata


async def test_authorization_header_is_the_user(
    web: httpx.AsyncClient, alice: User, bob: User
) -> None:
    for user in (alice, bob):
        response = await grpc_web_post(
            web, "GetAccount", GET_ACCOUNT_FRAME, headers={"Authorization": f"Bearer {user.token}"}
        )
        reply = read_grpc_web(response)
        assert reply.code == 0
        assert pb.GetAccountResponse.FromString(reply.messages[0]).account.user_id == user.id
    missing = trailers_only_status(await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME))
    assert missing.code == 16
    assert missing.status is not None
    info = error_details_pb2.ErrorInfo()
    assert missing.status.details[0].Unpack(info)
    assert info.reason == "TOKEN_MISSING"


async def test_request_id_header_reaches_the_logs(web: httpx.AsyncClient, alice: User) -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        response = await grpc_web_post(
            web, "GetAccount", GET_ACCOUNT_FRAME, headers={"x-request-id": "req-42", **auth(alice)}
        )
    assert read_grpc_web(response).code == 0
    rpc_lines = [e for e in logs if e["event"] == "rpc" and e.get("request_id") == "req-42"]
    assert len(rpc_lines) == 1
    assert rpc_lines[0]["rpc"] == "GetAccount"
    assert rpc_lines[0]["transport"] == "grpc-web"
    assert rpc_lines[0]["user"] == alice.id


@pytest.mark.parametrize(
    ("value", "code"),
    [
        pytest.param("AAEC", 0, id="unpadded"),
        pytest.param("AAE=", 0, id="padded"),
        pytest.param("", 0, id="empty"),
        pytest.param("!!!!", 3, id="not-base64"),
        pytest.param("A", 3, id="one-char"),
        pytest.param("AA-_", 3, id="base64url"),
    ],
)
async def test_bin_metadata_must_be_base64(
    web: httpx.AsyncClient, alice: User, value: str, code: int
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"x-trace-bin": value, **auth(alice)}
    )
    reply = read_grpc_web(response)
    assert reply.code == code
    if code:
        assert reply.trailers_only
        assert "x-trace-bin" in reply.message


def slow_core(monkeypatch: pytest.MonkeyPatch, app: App, delay: float) -> None:
    original = app.service.get_account

    async def slow(user_id: str) -> Account:
        await asyncio.sleep(delay)
        return await original(user_id)

    patch_core(monkeypatch, app, "get_account", slow)


@pytest.mark.parametrize(
    ("grpc_timeout", "delay", "code"),
    [
        ("1H", 0.2, 0),
        ("1M", 0.2, 0),
        ("1S", 0.2, 0),
        ("500m", 0.2, 0),
        ("500000u", 0.2, 0),
        # At most 8 digits: 500000000n (9 digits) is malformed, so nanoseconds top out at 0.1 s.
        ("99999999n", 0.02, 0),
        ("99999999S", 0.2, 0),
        ("50m", 1.0, 4),
        ("50000u", 1.0, 4),
        ("50000000n", 1.0, 4),
        ("1n", 1.0, 4),
        ("0S", 1.0, 4),
    ],
)
async def test_grpc_timeout_is_the_deadline(
    web: httpx.AsyncClient,
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    alice: User,
    grpc_timeout: str,
    delay: float,
    code: int,
) -> None:
    slow_core(monkeypatch, app, delay)
    started = time.perf_counter()
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-timeout": grpc_timeout, **auth(alice)}
    )
    elapsed = time.perf_counter() - started
    reply = read_grpc_web(response)
    assert reply.code == code, reply.trailers
    if code == 4:
        assert reply.trailers_only
        assert elapsed < 0.8, "the deadline did not cut the call short"
    else:
        assert elapsed >= delay


@pytest.mark.parametrize(
    "grpc_timeout",
    ["1x", "123456789S", "500000000n", "", "S", "-1S", "1.5S", "1 S", "1s", "0x10S", "1S1S"],
)
async def test_malformed_grpc_timeout_is_invalid_argument(
    web: httpx.AsyncClient, alice: User, grpc_timeout: str
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-timeout": grpc_timeout, **auth(alice)}
    )
    reply = trailers_only_status(response)
    assert reply.code == 3
    assert "grpc-timeout" in reply.message


async def test_connect_timeout_ms_is_the_deadline(
    web: httpx.AsyncClient, app: App, monkeypatch: pytest.MonkeyPatch, alice: User
) -> None:
    slow_core(monkeypatch, app, 1.0)
    headers = {"content-type": "application/json", **auth(alice)}
    response = await web.post(
        f"/{SERVICE}/GetAccount", content=b"{}", headers={"connect-timeout-ms": "50", **headers}
    )
    assert (response.status_code, response.json()["code"]) == (504, "deadline_exceeded")
    response = await web.post(
        f"/{SERVICE}/GetAccount", content=b"{}", headers={"connect-timeout-ms": "5s", **headers}
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_argument")


async def test_request_id_is_echoed_or_made(web: httpx.AsyncClient, alice: User) -> None:
    given = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", "x-request-id": "trace-42", **auth(alice)},
    )
    assert given.headers["x-request-id"] == "trace-42"
    made = await web.post(
        f"/{SERVICE}/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", **auth(alice)},
    )
    assert len(made.headers["x-request-id"]) == 32
