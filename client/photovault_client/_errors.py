"""Typed errors decoded from google.rpc.Status: one table from status code to exception class,
used by both transports, so a caller catches `NotFound` whichever wire carried the call."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from google.rpc import error_details_pb2, status_pb2


class Code(enum.IntEnum):
    """google.rpc.Code: the canonical status codes (the same numbers as gRPC's)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @classmethod
    def of(cls, value: int) -> Code:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class PhotoVaultError(Exception):
    """A failed call: its status code, the server's message and the ErrorInfo reason.

    `reason` is the machine-readable ErrorInfo reason (e.g. "PHOTO_NOT_FOUND"); when the status
    carried none it is the code's name. `metadata` is the ErrorInfo metadata and `status` the
    whole google.rpc.Status (empty for errors raised by the client itself).
    """

    def __init__(
        self,
        code: Code,
        message: str,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or code.name
        self.metadata: dict[str, str] = dict(metadata or {})
        if status is None:
            status = status_pb2.Status(code=code, message=message)
        self.status = status

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r}, {self.reason!r})"


class InvalidArgument(PhotoVaultError):
    """Bad request fields, as (field, description) pairs from google.rpc.BadRequest."""

    def __init__(
        self,
        code: Code,
        message: str,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
        status: status_pb2.Status | None = None,
        field_violations: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(code, message, reason, metadata=metadata, status=status)
        self.field_violations: list[tuple[str, str]] = list(field_violations)


class NotFound(PhotoVaultError):
    pass


class Unauthenticated(PhotoVaultError):
    pass


class PermissionDenied(PhotoVaultError):
    pass


class FailedPrecondition(PhotoVaultError):
    pass


class UploadRejected(FailedPrecondition):
    """The object store refused the upload PUT (e.g. a checksum mismatch or an expired URL)."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(Code.FAILED_PRECONDITION, message, "UPLOAD_REJECTED")
        self.http_status = http_status


class ResourceExhausted(PhotoVaultError):
    pass


class QuotaExceeded(ResourceExhausted):
    """The account's quota: its size, what is held or reserved, and what was asked for (bytes,
    from the ErrorInfo metadata; 0 when the server sent none)."""

    def __init__(
        self,
        code: Code,
        message: str,
        reason: str = "",
        *,
        metadata: Mapping[str, str] | None = None,
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(code, message, reason, metadata=metadata, status=status)
        self.quota_bytes = _int(self.metadata, "quota_bytes")
        self.reserved_bytes = _int(self.metadata, "reserved_bytes")
        self.requested_bytes = _int(self.metadata, "requested_bytes")


class Unavailable(PhotoVaultError):
    """The service or one of its backends could not be reached; safe to retry idempotent calls."""


class DeadlineExceeded(PhotoVaultError):
    pass


class Internal(PhotoVaultError):
    pass


ERROR_CLASSES: dict[Code, type[PhotoVaultError]] = {
    Code.INVALID_ARGUMENT: InvalidArgument,
    Code.OUT_OF_RANGE: InvalidArgument,
    Code.NOT_FOUND: NotFound,
    Code.UNAUTHENTICATED: Unauthenticated,
    Code.PERMISSION_DENIED: PermissionDenied,
    Code.FAILED_PRECONDITION: FailedPrecondition,
    Code.RESOURCE_EXHAUSTED: ResourceExhausted,
    Code.UNAVAILABLE: Unavailable,
    Code.DEADLINE_EXCEEDED: DeadlineExceeded,
    Code.INTERNAL: Internal,
}


def error_from_status(status: status_pb2.Status) -> PhotoVaultError:
    """The typed exception for a non-OK google.rpc.Status and its details."""
    code = Code.of(status.code)
    info = error_details_pb2.ErrorInfo()
    bad_request = error_details_pb2.BadRequest()
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            detail.Unpack(bad_request)
    cls = ERROR_CLASSES.get(code, PhotoVaultError)
    quota = info.reason == "QUOTA_EXCEEDED" or "quota_bytes" in info.metadata
    if cls is ResourceExhausted and quota:
        cls = QuotaExceeded
    if cls is InvalidArgument:
        return InvalidArgument(
            code,
            status.message,
            info.reason,
            metadata=info.metadata,
            status=status,
            field_violations=[(v.field, v.description) for v in bad_request.field_violations],
        )
    return cls(code, status.message, info.reason, metadata=info.metadata, status=status)


def error_from_code(code: Code, message: str, reason: str = "") -> PhotoVaultError:
    """For failures with no google.rpc.Status (a network error, a proxy's plain HTTP error)."""
    info = error_details_pb2.ErrorInfo(reason=reason) if reason else None
    status = status_pb2.Status(code=code, message=message)
    if info is not None:
        status.details.add().Pack(info)
    return error_from_status(status)


def _int(metadata: Mapping[str, str], key: str) -> int:
    try:
        return int(metadata.get(key, "0"))
    except ValueError:
        return 0
