"""The core's error types: a code, a message for the caller, a machine-readable reason, details.

Transports map `ErrorCode` to their own status codes in one table each; nothing here knows gRPC.
Messages are safe to show to the caller: no stack traces, credentials or URLs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import timedelta

from msgspec import Struct


class ErrorCode(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"


class FieldViolation(Struct, frozen=True):
    """One bad request field (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str


class QuotaViolation(Struct, frozen=True):
    """One exceeded quota (google.rpc.QuotaFailure.Violation)."""

    subject: str
    description: str


class PhotoVaultError(Exception):
    """Base of every error the core raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL
    default_reason: str = "INTERNAL"
    # When set, the caller may retry after this long (a google.rpc.RetryInfo detail).
    retry_after: timedelta | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


MAX_VIOLATIONS = 10
MAX_FIELD_CHARS = 64
MAX_DESCRIPTION_CHARS = 200


class InvalidArgument(PhotoVaultError):
    code = ErrorCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[FieldViolation],
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        # A bounded error: gRPC clients refuse reply metadata over 16 KiB (8 KiB at random),
        # and would report RESOURCE_EXHAUSTED instead of this. 100 bad ids are 100 violations.
        found = tuple(violations)
        self.violations = tuple(
            FieldViolation(v.field[:MAX_FIELD_CHARS], v.description[:MAX_DESCRIPTION_CHARS])
            for v in found[:MAX_VIOLATIONS]
        )
        text = message or "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        if len(found) > MAX_VIOLATIONS:
            text += f" (and {len(found) - MAX_VIOLATIONS} more)"
        super().__init__(text or "invalid argument", reason=reason)

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        return cls([FieldViolation(field, description)], reason=reason)


class Unauthenticated(PhotoVaultError):
    code = ErrorCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class NotFound(PhotoVaultError):
    code = ErrorCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class FailedPrecondition(PhotoVaultError):
    code = ErrorCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class QuotaExceeded(PhotoVaultError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_reason = "QUOTA_EXCEEDED"

    def __init__(self, *, user_id: str, quota_bytes: int, reserved_bytes: int, requested: int):
        self.quota_bytes = quota_bytes
        self.reserved_bytes = reserved_bytes
        self.requested_bytes = requested
        left = max(quota_bytes - reserved_bytes, 0)
        description = (
            f"{requested} bytes requested, {left} of {quota_bytes} bytes left "
            "(confirmed photos and pending uploads count)"
        )
        self.violations = (QuotaViolation(subject=f"user:{user_id}", description=description),)
        super().__init__(
            f"storage quota exceeded: {description}",
            metadata={
                "quota_bytes": str(quota_bytes),
                "reserved_bytes": str(reserved_bytes),
                "requested_bytes": str(requested),
            },
        )


class PendingUploadsExceeded(QuotaExceeded):
    """Too many uploads requested and not yet confirmed: each holds a row until it is
    confirmed or swept, so their number is bounded per user (a QuotaFailure, like bytes)."""

    default_reason = "TOO_MANY_PENDING_UPLOADS"

    def __init__(self, *, user_id: str, limit: int):
        self.limit = limit
        description = (
            f"{limit} uploads are already pending: confirm them, or wait until their "
            "upload URLs expire"
        )
        self.violations = (QuotaViolation(subject=f"user:{user_id}", description=description),)
        PhotoVaultError.__init__(
            self,
            f"too many pending uploads: {description}",
            metadata={"max_pending_uploads": str(limit)},
        )


class Unavailable(PhotoVaultError):
    """A backend (database, object store) could not be reached, or the process is overloaded;
    the call may be retried (after `retry_after` when given)."""

    code = ErrorCode.UNAVAILABLE
    default_reason = "BACKEND_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = retry_after


class RateLimited(PhotoVaultError):
    """The caller sent more calls than its rate allows; it may retry after `retry_after`."""

    code = ErrorCode.RESOURCE_EXHAUSTED
    default_reason = "RATE_LIMITED"

    def __init__(self, *, retry_after: timedelta) -> None:
        super().__init__(
            "too many calls; retry after the delay in RetryInfo",
            metadata={"retry_after_ms": str(max(1, round(retry_after.total_seconds() * 1000)))},
        )
        self.retry_after = retry_after


class DeadlineExceeded(PhotoVaultError):
    code = ErrorCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"
