"""PhotoVault Python client: an async, typed client of photovault.v1.PhotoService over native
gRPC or Connect (HTTP), with uploads, a download-URL cache, deadlines and retries.

    async with PhotoVaultClient.grpc("127.0.0.1:50051", token=token) as pv:
        photo = await pv.upload("cat.jpg", title="Cat", tags=["pets"])
        url = await pv.get_url(photo.id)  # cached until shortly before it expires
        async for p in pv.iter_photos(tags=["pets"]):
            print(p.id, p.title)
"""

from ._auth import TokenProvider
from ._client import ClientOptions, PhotoVaultClient
from ._errors import (
    Code,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PhotoVaultError,
    QuotaExceeded,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    UploadRejected,
    error_from_status,
)
from ._grpc import HEALTH_CHECKED_SERVICE_CONFIG
from ._models import (
    Account,
    Album,
    AlbumPage,
    GeoPoint,
    Photo,
    PhotoOrder,
    PhotoPage,
    PhotoUrl,
    PhotoVariant,
    ProcessingState,
    SharedAlbumPage,
    SharedPhoto,
    ShareLink,
    UploadTicket,
    Visibility,
)
from ._multipart import MultipartUpload, PartUrl, UploadedPart
from ._retry import RetryPolicy
from ._upload import ProgressCallback
from ._url_cache import UrlCache

__all__ = [
    "HEALTH_CHECKED_SERVICE_CONFIG",
    "Account",
    "Album",
    "AlbumPage",
    "ClientOptions",
    "Code",
    "DeadlineExceeded",
    "FailedPrecondition",
    "GeoPoint",
    "Internal",
    "InvalidArgument",
    "MultipartUpload",
    "NotFound",
    "PartUrl",
    "PermissionDenied",
    "Photo",
    "PhotoOrder",
    "PhotoPage",
    "PhotoUrl",
    "PhotoVariant",
    "PhotoVaultClient",
    "PhotoVaultError",
    "ProcessingState",
    "ProgressCallback",
    "QuotaExceeded",
    "ResourceExhausted",
    "RetryPolicy",
    "ShareLink",
    "SharedAlbumPage",
    "SharedPhoto",
    "TokenProvider",
    "Unauthenticated",
    "Unavailable",
    "UploadRejected",
    "UploadTicket",
    "UploadedPart",
    "UrlCache",
    "Visibility",
    "error_from_status",
]
