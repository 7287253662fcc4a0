"""The gateway called in process, as the ASGI app and the Lambda handler call it: an HttpRequest
in, an HttpResponse out, no socket. Next to the socket tests (tests/test_gateway_*.py) these pin
the function both front doors share, and check that the socket adds nothing to its answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from google.rpc import code_pb2, status_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.app import App
from photovault_server.transport.web import HttpRequest, HttpResponse, WebGateway
from photovault_server.transport.web.cors import CorsPolicy
from photovault_server.transport.web.gateway import BODY_TOO_LARGE, BODY_TOO_SLOW

from .support.grpc_web import (
    ALLOWED_ORIGIN,
    BINARY_REPLY,
    GET_ACCOUNT_FRAME,
    OK_TRAILER_FRAME,
    SERVICE,
    TEXT_REPLY,
    auth,
    b64_segments,
    frame,
    split_frames,
    unpadded_b64decode,
)
from .support.users import User

PATH = f"/{SERVICE}/GetAccount"


@pytest.fixture(scope="module")
def gateway(app: App) -> WebGateway:
    return WebGateway(app.service, app.verifier, cors=CorsPolicy([ALLOWED_ORIGIN]))


def request(
    body: bytes = GET_ACCOUNT_FRAME,
    *,
    content_type: str = "application/grpc-web+proto",
    method: str = "POST",
    path: str = PATH,
    headers: dict[str, str] | None = None,
) -> HttpRequest:
    return HttpRequest(method, path, {"content-type": content_type, **(headers or {})}, body)


def header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers if k == name), None)


def status_of(response: HttpResponse) -> status_pb2.Status:
    raw = header(response, "grpc-status-details-bin")
    assert raw is not None, response
    return status_pb2.Status.FromString(unpadded_b64decode(raw))


async def test_a_grpc_web_call_is_framed_as_on_the_wire(gateway: WebGateway, alice: User) -> None:
    response = await gateway.handle(request(headers=auth(alice)))
    assert (response.status, header(response, "content-type")) == (200, BINARY_REPLY)
    (data, trailer) = split_frames(response.body)
    assert data[0] == 0x00
    assert pb.GetAccountResponse.FromString(data[1]).account.user_id == alice.id
    assert frame(trailer[1], 0x80) == OK_TRAILER_FRAME


async def test_the_socket_adds_nothing_to_the_answer(
    gateway: WebGateway, web: httpx.AsyncClient, alice: User
) -> None:
    in_process = await gateway.handle(request(headers={**auth(alice), "x-request-id": "same-id"}))
    over_socket = await web.post(
        PATH,
        content=GET_ACCOUNT_FRAME,
        headers={
            "content-type": "application/grpc-web+proto",
            "x-request-id": "same-id",
            **auth(alice),
        },
    )
    assert over_socket.content == in_process.body
    for name, value in in_process.headers:
        assert over_socket.headers[name] == value


async def test_text_mode_in_and_out(gateway: WebGateway, alice: User) -> None:
    import base64

    response = await gateway.handle(
        request(
            base64.b64encode(GET_ACCOUNT_FRAME),
            content_type="application/grpc-web-text",
            headers=auth(alice),
        )
    )
    assert header(response, "content-type") == TEXT_REPLY
    assert split_frames(b64_segments(response.body))[-1][0] == 0x80


async def test_anonymous_calls_are_unauthenticated_before_the_body_is_read(
    gateway: WebGateway,
) -> None:
    response = await gateway.handle(request(b"\x00\x00\x00\x00\x05garbage"))
    assert header(response, "grpc-status") == str(code_pb2.UNAUTHENTICATED)


async def test_connect_errors_carry_their_http_status_and_code(
    gateway: WebGateway, alice: User
) -> None:
    response = await gateway.handle(
        request(
            json.dumps({"id": "not-a-uuid"}).encode(),
            content_type="application/json",
            path=f"/{SERVICE}/GetPhoto",
            headers=auth(alice),
        )
    )
    assert response.status == 400
    assert json.loads(response.body)["code"] == "invalid_argument"


@pytest.mark.parametrize(
    ("method", "content_type", "status"),
    [("GET", "application/grpc-web", 405), ("POST", "text/plain", 415)],
)
async def test_what_is_not_a_call_gets_plain_http(
    gateway: WebGateway, method: str, content_type: str, status: int
) -> None:
    response = await gateway.handle(request(method=method, content_type=content_type))
    assert response.status == status
    assert header(response, "x-request-id")


async def test_an_unknown_method_is_unimplemented(gateway: WebGateway, alice: User) -> None:
    response = await gateway.handle(request(path=f"/{SERVICE}/Nope", headers=auth(alice)))
    assert status_of(response).code == code_pb2.UNIMPLEMENTED


async def test_cors_wraps_every_answer(gateway: WebGateway, alice: User) -> None:
    preflight = await gateway.handle(
        request(b"", method="OPTIONS", headers={"origin": ALLOWED_ORIGIN})
    )
    assert preflight.status == 204
    assert header(preflight, "access-control-allow-origin") == ALLOWED_ORIGIN
    answered = await gateway.handle(request(headers={"origin": ALLOWED_ORIGIN, **auth(alice)}))
    assert header(answered, "access-control-allow-origin") == ALLOWED_ORIGIN
    refused = await gateway.handle(
        request(b"", method="OPTIONS", headers={"origin": "http://evil.test"})
    )
    assert refused.status == 403
    assert header(refused, "access-control-allow-origin") is None


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/grpc-web", (200, str(code_pb2.RESOURCE_EXHAUSTED))),
        ("application/json", (429, None)),
        ("text/plain", (413, None)),
    ],
)
async def test_a_refused_body_is_answered_in_the_callers_protocol_with_cors(
    gateway: WebGateway, content_type: str, expected: tuple[int, str | None]
) -> None:
    response = gateway.refuse(
        request(b"", content_type=content_type, headers={"origin": ALLOWED_ORIGIN}), BODY_TOO_LARGE
    )
    assert (response.status, header(response, "grpc-status")) == expected
    assert header(response, "access-control-allow-origin") == ALLOWED_ORIGIN
    slow = gateway.refuse(request(b"", content_type=content_type), BODY_TOO_SLOW)
    assert slow.status in (200, 504, 408)


async def test_verified_claims_stand_in_for_the_token(gateway: WebGateway) -> None:
    response = await gateway.handle(request(), verified_claims={"sub": "claims-user"})
    (data, _) = split_frames(response.body)
    assert pb.GetAccountResponse.FromString(data[1]).account.user_id == "claims-user"


async def test_the_deadline_cap_bounds_every_call(
    gateway: WebGateway, app: App, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    monkeypatch.setattr(app.service, "get_account", slow)
    response = await gateway.handle(request(headers=auth(alice)), deadline_cap=0.05)
    assert header(response, "grpc-status") == str(code_pb2.DEADLINE_EXCEEDED)
