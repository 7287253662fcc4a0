"""Core errors -> gRPC status codes and google.rpc.Status details: the one table every
transport uses (native gRPC, the web gateway and Lambda). Codes are google.rpc.Code numbers,
so the web and Lambda paths never import grpc (a tenth of a second of cold start)."""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from photovault_server.core.errors import (
    ErrorCode,
    InvalidArgument,
    PhotoVaultError,
    QuotaExceeded,
)

ERROR_DOMAIN = "photovault.v1"

GRPC_CODES: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    ErrorCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    ErrorCode.NOT_FOUND: code_pb2.NOT_FOUND,
    ErrorCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    ErrorCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    ErrorCode.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    ErrorCode.INTERNAL: code_pb2.INTERNAL,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: PhotoVaultError) -> status_pb2.Status:
    """google.rpc.Status with an ErrorInfo reason and the typed details of the error."""
    code = GRPC_CODES[error.code]
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    ]
    if isinstance(error, InvalidArgument) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, QuotaExceeded):
        details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=v.subject, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(error.retry_after)
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code, message=error.message, details=details)


def protocol_status(code: int, message: str, reason: str) -> status_pb2.Status:
    """For failures found before any RPC runs (framing, encodings, unknown methods)."""
    return status_pb2.Status(
        code=code,
        message=message,
        details=[_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))],
    )


def internal_status() -> status_pb2.Status:
    """For unexpected exceptions: a fixed message, never the exception text."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message="internal error",
        details=[_pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))],
    )
