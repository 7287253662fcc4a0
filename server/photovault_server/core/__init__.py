"""The core: use cases, validation, pagination and URL policy. Imports no transport or backend."""

from .errors import (
    DeadlineExceeded,
    ErrorCode,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PhotoVaultError,
    QuotaExceeded,
    QuotaViolation,
    Unauthenticated,
    Unavailable,
)
from .models import (
    Account,
    Photo,
    PhotoChanges,
    PhotoOrder,
    PhotoPage,
    PhotoUrl,
    ServedPhoto,
    UploadTicket,
    Visibility,
)
from .page_tokens import PageTokenCodec
from .ports import ObjectStore, PhotoRepository, UrlCache
from .service import PhotoService, ServiceConfig, SweepReport
from .urls import UrlPolicy, default_cache_margin

__all__ = [
    "Account",
    "DeadlineExceeded",
    "ErrorCode",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "ObjectStore",
    "PageTokenCodec",
    "Photo",
    "PhotoChanges",
    "PhotoOrder",
    "PhotoPage",
    "PhotoRepository",
    "PhotoService",
    "PhotoUrl",
    "PhotoVaultError",
    "QuotaExceeded",
    "QuotaViolation",
    "ServedPhoto",
    "ServiceConfig",
    "SweepReport",
    "Unauthenticated",
    "Unavailable",
    "UploadTicket",
    "UrlCache",
    "UrlPolicy",
    "Visibility",
    "default_cache_margin",
]
