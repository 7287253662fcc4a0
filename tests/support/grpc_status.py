"""A failed gRPC call, and what its google.rpc.Status details say."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """ErrorInfo reason, BadRequest fields, QuotaFailure subjects and the RetryInfo delay
    (`retry_after`, when there is one) from the status details."""
    status = rpc_status.from_call(error)
    assert status is not None, "error without google.rpc.Status details"
    return status_details(status)


def status_details(status: status_pb2.Status) -> dict[str, Any]:
    """`details` of a google.rpc.Status however it arrived (any transport)."""
    out: dict[str, Any] = {"fields": [], "quota": []}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out["reason"], out["domain"] = info.reason, info.domain
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["fields"] = [v.field for v in bad.field_violations]
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            out["quota"] = [v.subject for v in quota.violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            out["retry_after"] = retry.retry_delay.ToTimedelta()
    return out


async def call_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value
