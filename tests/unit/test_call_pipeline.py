"""The call pipeline every transport runs a call through (transport/calls.py), on its own:
authentication before decoding, the deadline, error mapping, the request id and the one log
line per call, whatever the transport."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import structlog
from google.protobuf.message import Message
from google.rpc import code_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.auth import AuthConfig, TokenVerifier, mint_token
from photovault_server.core.errors import NotFound
from photovault_server.transport.calls import (
    Call,
    CallFailed,
    CallPipeline,
    Outcome,
    Transport,
)
from photovault_server.transport.handlers import ANONYMOUS_METHODS, Method
from photovault_server.transport.status import protocol_status

SECRET = "pipeline-secret-" + "x" * 32
TOKEN = mint_token(SECRET, "alice")
TRANSPORTS: list[Transport] = ["grpc", "grpc-web", "connect"]


def method(handler: Callable[[str, Any], Awaitable[Message]]) -> Method:
    return Method("GetAccount", pb.GetAccountRequest, pb.GetAccountResponse, handler)


async def account_of(user: str, request: Any) -> Message:
    return pb.GetAccountResponse(account={"user_id": user})


async def run(
    handler: Callable[[str, Any], Awaitable[Message]] = account_of,
    *,
    transport: Transport = "grpc",
    headers: dict[str, str] | None = None,
    decode: Callable[[], Message] = pb.GetAccountRequest,
    call_timeout: float | None = None,
) -> tuple[Outcome, list[MutableMapping[str, Any]]]:
    pipeline = CallPipeline(TokenVerifier(AuthConfig(secret=SECRET)))
    given = {"authorization": f"Bearer {TOKEN}"} if headers is None else headers
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        outcome = await pipeline.run(
            Call(method(handler), transport, given, decode=decode, timeout=call_timeout)
        )
    return outcome, logs


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_call_runs_as_its_user_and_logs_one_line(transport: Transport) -> None:
    outcome, logs = await run(transport=transport, headers={"authorization": f"Bearer {TOKEN}"})
    assert outcome.status is None
    assert isinstance(outcome.reply, pb.GetAccountResponse)
    assert outcome.reply.account.user_id == "alice"
    (line,) = (e for e in logs if e["event"] == "rpc")
    assert (line["code"], line["rpc"], line["transport"], line["user"]) == (
        "OK",
        "GetAccount",
        transport,
        "alice",
    )
    assert line["log_level"] == "info"
    assert line["request_id"] == outcome.request_id


async def test_an_anonymous_body_is_never_decoded() -> None:
    decoded = []

    def decode() -> Message:
        decoded.append(True)
        return pb.GetAccountRequest()

    outcome, logs = await run(headers={}, decode=decode)
    assert outcome.status is not None
    assert outcome.status.code == code_pb2.UNAUTHENTICATED
    assert decoded == []
    assert [e["code"] for e in logs if e["event"] == "rpc"] == ["UNAUTHENTICATED"]


async def test_a_body_that_does_not_decode_keeps_the_decoders_status() -> None:
    def decode() -> Message:
        raise CallFailed(protocol_status(code_pb2.INVALID_ARGUMENT, "bad", "MALFORMED_REQUEST"))

    outcome, _ = await run(decode=decode)
    assert outcome.status is not None
    assert (outcome.status.code, outcome.status.message) == (code_pb2.INVALID_ARGUMENT, "bad")


async def test_core_errors_map_through_the_status_table() -> None:
    async def missing(user: str, request: Any) -> Message:
        raise NotFound("photo x not found", reason="PHOTO_NOT_FOUND")

    outcome, logs = await run(missing)
    assert outcome.status is not None
    assert outcome.status.code == code_pb2.NOT_FOUND
    assert [e["log_level"] for e in logs if e["event"] == "rpc"] == ["info"]


async def test_unexpected_errors_are_internal_logged_with_a_place_not_a_text() -> None:
    async def broken(user: str, request: Any) -> Message:
        raise RuntimeError("s3://secret-bucket/key?X-Amz-Signature=abc")

    outcome, logs = await run(broken)
    assert outcome.status is not None
    assert (outcome.status.code, outcome.status.message) == (code_pb2.INTERNAL, "internal error")
    (error,) = (e for e in logs if e["event"] == "unexpected_error")
    assert error["error_type"] == "RuntimeError"
    assert error["where"].startswith("test_call_pipeline.py:")
    assert "secret" not in repr(logs)
    (line,) = (e for e in logs if e["event"] == "rpc")
    assert (line["code"], line["log_level"]) == ("INTERNAL", "warning")


async def test_the_deadline_ends_the_call_as_deadline_exceeded() -> None:
    async def slow(user: str, request: Any) -> Message:
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    outcome, _ = await run(slow, call_timeout=0.01)
    assert outcome.status is not None
    assert outcome.status.code == code_pb2.DEADLINE_EXCEEDED


async def test_a_timeout_inside_the_handler_is_not_the_callers_deadline() -> None:
    async def backend_timeout(user: str, request: Any) -> Message:
        raise TimeoutError

    outcome, _ = await run(backend_timeout, call_timeout=30)
    assert outcome.status is not None
    assert outcome.status.code == code_pb2.INTERNAL


async def test_a_cancelled_call_is_logged_as_cancelled() -> None:
    started = asyncio.Event()

    async def waits(user: str, request: Any) -> Message:
        started.set()
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(
            CallPipeline(TokenVerifier(AuthConfig(secret=SECRET))).run(
                Call(
                    method(waits),
                    "grpc",
                    {"authorization": f"Bearer {TOKEN}"},
                    decode=pb.GetAccountRequest,
                )
            )
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [e["code"] for e in logs if e["event"] == "rpc"] == ["CANCELLED"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param("trace-42", True, id="sane"),
        pytest.param("", False, id="empty"),
        pytest.param("x" * 65, False, id="too-long"),
        pytest.param("a\nb", False, id="not-printable"),
    ],
)
async def test_the_request_id_is_the_callers_when_sane(given: str, kept: bool) -> None:
    outcome, _ = await run(headers={"authorization": f"Bearer {TOKEN}", "x-request-id": given})
    if kept:
        assert outcome.request_id == given
    else:
        assert outcome.request_id != given
        assert len(outcome.request_id) == 32


async def test_verified_claims_stand_in_for_the_token() -> None:
    pipeline = CallPipeline(TokenVerifier(AuthConfig(secret=SECRET)))
    outcome = await pipeline.run(
        Call(
            method(account_of),
            "connect",
            {},
            decode=pb.GetAccountRequest,
            verified_claims={"sub": "bob"},
        )
    )
    assert isinstance(outcome.reply, pb.GetAccountResponse)
    assert outcome.reply.account.user_id == "bob"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-a-token"}])
async def test_an_anonymous_method_runs_without_a_user_whatever_the_headers(
    transport: Transport, headers: dict[str, str]
) -> None:
    """Only a method the table marks anonymous (GetSharedAlbum): no authentication, no user,
    and a bearer token sent anyway is neither checked nor used."""
    seen: list[str] = []

    async def shared(user: str, request: Any) -> Message:
        seen.append(user)
        return pb.GetSharedAlbumResponse(title="shared")

    anonymous = Method(
        "GetSharedAlbum",
        pb.GetSharedAlbumRequest,
        pb.GetSharedAlbumResponse,
        shared,
        anonymous=True,
    )
    pipeline = CallPipeline(TokenVerifier(AuthConfig(secret=SECRET)))
    outcome = await pipeline.run(
        Call(anonymous, transport, headers, decode=pb.GetSharedAlbumRequest)
    )
    assert outcome.status is None
    assert seen == [""]
    # The same handler unmarked: UNAUTHENTICATED before it runs.
    marked_not = Method(
        "GetSharedAlbum", pb.GetSharedAlbumRequest, pb.GetSharedAlbumResponse, shared
    )
    outcome = await pipeline.run(
        Call(marked_not, transport, headers, decode=pb.GetSharedAlbumRequest)
    )
    assert outcome.status is not None
    assert outcome.status.code == code_pb2.UNAUTHENTICATED
    assert seen == [""]


def test_only_get_shared_album_is_anonymous() -> None:
    assert set(ANONYMOUS_METHODS) == {"GetSharedAlbum"}
