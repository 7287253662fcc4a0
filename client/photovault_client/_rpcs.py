"""The RPCs of photovault.v1.PhotoService as the transports see them: path, message types
and whether a failed attempt may be repeated safely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from photovault.v1 import photo_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["PhotoService"].full_name

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True, slots=True)
class Rpc(Generic[Req, Resp]):
    name: str
    request_type: type[Req]
    response_type: type[Resp]
    # Repeating the call changes nothing more than the first one did: retried on UNAVAILABLE.
    idempotent: bool

    @property
    def path(self) -> str:
        return f"/{SERVICE}/{self.name}"


CREATE_UPLOAD_URL = Rpc(
    "CreateUploadUrl", pb.CreateUploadUrlRequest, pb.CreateUploadUrlResponse, idempotent=False
)
# The server answers a repeated confirm with the photo the first one created.
CONFIRM_UPLOAD = Rpc(
    "ConfirmUpload", pb.ConfirmUploadRequest, pb.ConfirmUploadResponse, idempotent=True
)
GET_PHOTO = Rpc("GetPhoto", pb.GetPhotoRequest, pb.GetPhotoResponse, idempotent=True)
LIST_PHOTOS = Rpc("ListPhotos", pb.ListPhotosRequest, pb.ListPhotosResponse, idempotent=True)
BATCH_GET_PHOTO_URLS = Rpc(
    "BatchGetPhotoUrls",
    pb.BatchGetPhotoUrlsRequest,
    pb.BatchGetPhotoUrlsResponse,
    idempotent=True,
)
UPDATE_PHOTO = Rpc("UpdatePhoto", pb.UpdatePhotoRequest, pb.UpdatePhotoResponse, idempotent=False)
DELETE_PHOTO = Rpc("DeletePhoto", pb.DeletePhotoRequest, pb.DeletePhotoResponse, idempotent=False)
GET_ACCOUNT = Rpc("GetAccount", pb.GetAccountRequest, pb.GetAccountResponse, idempotent=True)
CREATE_MULTIPART_UPLOAD = Rpc(
    "CreateMultipartUpload",
    pb.CreateMultipartUploadRequest,
    pb.CreateMultipartUploadResponse,
    idempotent=False,
)
# Signing writes nothing: a repeated call only signs again.
SIGN_UPLOAD_PARTS = Rpc(
    "SignUploadParts", pb.SignUploadPartsRequest, pb.SignUploadPartsResponse, idempotent=True
)
LIST_UPLOADED_PARTS = Rpc(
    "ListUploadedParts",
    pb.ListUploadedPartsRequest,
    pb.ListUploadedPartsResponse,
    idempotent=True,
)
# A repeated abort answers NOT_FOUND: not repeated.
ABORT_UPLOAD = Rpc("AbortUpload", pb.AbortUploadRequest, pb.AbortUploadResponse, idempotent=False)
# Trashing a trashed photo keeps its first trash time; restoring a restored one changes nothing.
TRASH_PHOTO = Rpc("TrashPhoto", pb.TrashPhotoRequest, pb.TrashPhotoResponse, idempotent=True)
RESTORE_PHOTO = Rpc(
    "RestorePhoto", pb.RestorePhotoRequest, pb.RestorePhotoResponse, idempotent=True
)
LIST_TRASH = Rpc("ListTrash", pb.ListTrashRequest, pb.ListTrashResponse, idempotent=True)
CREATE_ALBUM = Rpc("CreateAlbum", pb.CreateAlbumRequest, pb.CreateAlbumResponse, idempotent=False)
GET_ALBUM = Rpc("GetAlbum", pb.GetAlbumRequest, pb.GetAlbumResponse, idempotent=True)
LIST_ALBUMS = Rpc("ListAlbums", pb.ListAlbumsRequest, pb.ListAlbumsResponse, idempotent=True)
UPDATE_ALBUM = Rpc("UpdateAlbum", pb.UpdateAlbumRequest, pb.UpdateAlbumResponse, idempotent=False)
# A repeated delete answers NOT_FOUND: not repeated.
DELETE_ALBUM = Rpc("DeleteAlbum", pb.DeleteAlbumRequest, pb.DeleteAlbumResponse, idempotent=False)
# Adding what is there, or removing what is not, changes nothing.
ADD_ALBUM_PHOTOS = Rpc(
    "AddAlbumPhotos", pb.AddAlbumPhotosRequest, pb.AddAlbumPhotosResponse, idempotent=True
)
REMOVE_ALBUM_PHOTOS = Rpc(
    "RemoveAlbumPhotos", pb.RemoveAlbumPhotosRequest, pb.RemoveAlbumPhotosResponse, idempotent=True
)
# Each call makes another link.
CREATE_SHARE_LINK = Rpc(
    "CreateShareLink", pb.CreateShareLinkRequest, pb.CreateShareLinkResponse, idempotent=False
)
LIST_SHARE_LINKS = Rpc(
    "ListShareLinks", pb.ListShareLinksRequest, pb.ListShareLinksResponse, idempotent=True
)
REVOKE_SHARE_LINK = Rpc(
    "RevokeShareLink", pb.RevokeShareLinkRequest, pb.RevokeShareLinkResponse, idempotent=False
)
GET_SHARED_ALBUM = Rpc(
    "GetSharedAlbum", pb.GetSharedAlbumRequest, pb.GetSharedAlbumResponse, idempotent=True
)
