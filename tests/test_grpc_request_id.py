"""The request id on native gRPC: the caller's `x-request-id` (or a new one) comes back in the
trailers, with a reply and with an error alike, and an error's google.rpc.Status details
still arrive beside it."""

from __future__ import annotations

import uuid

import grpc
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.grpc_status import details
from .support.users import User


def _request_ids(metadata: grpc.aio.Metadata | None) -> list[str]:
    return [str(value) for key, value in metadata or () if key == "x-request-id"]


async def test_a_reply_carries_the_callers_request_id(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    call = stub.GetAccount(
        pb.GetAccountRequest(), metadata=(*alice.metadata, ("x-request-id", "trace-42"))
    )
    await call
    assert _request_ids(await call.trailing_metadata()) == ["trace-42"]


async def test_a_reply_without_one_gets_a_new_request_id(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    ids = []
    for _ in range(2):
        call = stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
        await call
        (request_id,) = _request_ids(await call.trailing_metadata())
        ids.append(request_id)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids[0] != ids[1]


async def test_an_error_carries_the_request_id_and_its_status_details(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetPhoto(
            pb.GetPhotoRequest(id=str(uuid.uuid4())),
            metadata=(*alice.metadata, ("x-request-id", "trace-404")),
        )
    error = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _request_ids(error.trailing_metadata()) == ["trace-404"]
    assert details(error)["reason"] == "PHOTO_NOT_FOUND"


async def test_an_anonymous_caller_is_refused_with_a_request_id(
    stub: pb_grpc.PhotoServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetAccount(pb.GetAccountRequest(), metadata=(("x-request-id", "anon-1"),))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _request_ids(raised.value.trailing_metadata()) == ["anon-1"]
