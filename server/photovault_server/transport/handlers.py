"""The RPCs as plain async functions, protobuf in, protobuf out, for an authenticated user.

Every transport calls these: the native gRPC servicer, the web gateway (gRPC-web, Connect) and
the Lambda handler. They only translate between messages and core calls; authentication, error
mapping, deadlines and framing belong to the transports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message
from msgspec import Struct

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.core import PhotoChanges, PhotoService
from photovault_server.core.models import ExistingPhoto, ServedPhoto

from .convert import (
    account_to_proto,
    album_to_proto,
    fill_photo,
    fill_shared_photo,
    optional_datetime,
    photo_to_proto,
    photo_url_to_proto,
    share_link_to_proto,
    timestamp,
)

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer


SERVICE = pb.DESCRIPTOR.services_by_name["PhotoService"]
# A page's photo message: Photo (ListPhotos) or SharedPhoto (GetSharedAlbum).
M = TypeVar("M", bound=Message)


# gRPC's default limit on a message a client receives: no reply may be larger.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
# Room left in a reply for everything but the photos (page token, framing).
_REPLY_OVERHEAD = 4096


class PhotoHandlers:
    def __init__(
        self, service: PhotoService, *, max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    ) -> None:
        """`max_reply_bytes` bounds a reply's serialized protobuf: a ListPhotos page is cut
        to fit (a transport that encodes larger, such as JSON under Lambda's response limit,
        passes a smaller bound)."""
        self._service = service
        self._max_reply_bytes = max_reply_bytes

    def _photos_fitting(
        self,
        into: RepeatedCompositeFieldContainer[M],
        fill: Callable[[M, ServedPhoto], None],
    ) -> Callable[[Sequence[ServedPhoto]], int]:
        """The service's `fit` for a page: builds the photos straight into the reply's field
        `into` with `fill`, measuring each, and says how many fit; the caller drops the rest
        (each photo is converted once, where it ends up)."""

        def fit(photos: Sequence[ServedPhoto]) -> int:
            budget = self._max_reply_bytes - _REPLY_OVERHEAD
            used = 0
            del into[:]
            for count, photo in enumerate(photos):
                message = into.add()
                fill(message, photo)
                used += message.ByteSize() + 6  # field tag and length prefix
                if used > budget:
                    return count
            return len(photos)

        return fit

    @staticmethod
    def _keep_page(
        into: RepeatedCompositeFieldContainer[M],
        photos: Sequence[ServedPhoto],
        fill: Callable[[M, ServedPhoto], None],
    ) -> None:
        """`into` as the page the service kept: its leading photos, as `fit` built them."""
        if len(into) < len(photos):  # `fit` was not asked (an empty page): build them here
            del into[:]
            for photo in photos:
                fill(into.add(), photo)
        del into[len(photos) :]

    async def CreateUploadUrl(
        self, user: str, request: pb.CreateUploadUrlRequest
    ) -> pb.CreateUploadUrlResponse:
        ticket = await self._service.create_upload_url(
            user,
            file_name=request.file_name,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            checksum_sha256=request.checksum_sha256,
            skip_if_duplicate=request.skip_if_duplicate,
        )
        if isinstance(ticket, ExistingPhoto):
            return pb.CreateUploadUrlResponse(existing_photo_id=str(ticket.photo_id))
        return pb.CreateUploadUrlResponse(
            upload_id=str(ticket.upload_id),
            upload_url=ticket.url,
            method=ticket.method,
            required_headers=ticket.required_headers,
            expire_time=timestamp(ticket.expire_time),
        )

    async def ConfirmUpload(
        self, user: str, request: pb.ConfirmUploadRequest
    ) -> pb.ConfirmUploadResponse:
        photo = await self._service.confirm_upload(
            user,
            upload_id=request.upload_id,
            title=request.title,
            description=request.description,
            tags=list(request.tags),
            visibility=request.visibility,
        )
        return pb.ConfirmUploadResponse(photo=photo_to_proto(photo))

    async def GetPhoto(self, user: str, request: pb.GetPhotoRequest) -> pb.GetPhotoResponse:
        photo = await self._service.get_photo(user, request.id)
        return pb.GetPhotoResponse(photo=photo_to_proto(photo))

    async def ListPhotos(self, user: str, request: pb.ListPhotosRequest) -> pb.ListPhotosResponse:
        reply = pb.ListPhotosResponse()
        page = await self._service.list_photos(
            user,
            page_size=request.page_size,
            page_token=request.page_token,
            tags=list(request.tags),
            query=request.query,
            created_after=optional_datetime(request, "created_after"),
            created_before=optional_datetime(request, "created_before"),
            visibility=request.visibility,
            content_type=request.content_type,
            order=request.order,
            taken_after=optional_datetime(request, "taken_after"),
            taken_before=optional_datetime(request, "taken_before"),
            variants=list(request.variants),
            album_id=request.album_id,
            fit=self._photos_fitting(reply.photos, fill_photo),
        )
        self._keep_page(reply.photos, page.photos, fill_photo)
        reply.next_page_token = page.next_page_token
        return reply

    async def BatchGetPhotoUrls(
        self, user: str, request: pb.BatchGetPhotoUrlsRequest
    ) -> pb.BatchGetPhotoUrlsResponse:
        urls = await self._service.batch_get_photo_urls(
            user, list(request.photo_ids), variant=request.variant
        )
        return pb.BatchGetPhotoUrlsResponse(urls=[photo_url_to_proto(u) for u in urls])

    async def UpdatePhoto(
        self, user: str, request: pb.UpdatePhotoRequest
    ) -> pb.UpdatePhotoResponse:
        given = request.photo
        changes = PhotoChanges(
            paths=frozenset(request.update_mask.paths),
            title=given.title,
            description=given.description,
            tags=tuple(given.tags),
            visibility=given.visibility,  # type: ignore[arg-type]
        )
        photo = await self._service.update_photo(user, given.id, changes)
        return pb.UpdatePhotoResponse(photo=photo_to_proto(photo))

    async def DeletePhoto(
        self, user: str, request: pb.DeletePhotoRequest
    ) -> pb.DeletePhotoResponse:
        await self._service.delete_photo(user, request.id)
        return pb.DeletePhotoResponse()

    async def GetAccount(self, user: str, request: pb.GetAccountRequest) -> pb.GetAccountResponse:
        account = await self._service.get_account(user)
        return pb.GetAccountResponse(account=account_to_proto(account))

    async def CreateMultipartUpload(
        self, user: str, request: pb.CreateMultipartUploadRequest
    ) -> pb.CreateMultipartUploadResponse:
        ticket = await self._service.create_multipart_upload(
            user,
            file_name=request.file_name,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            checksum_sha256=request.checksum_sha256,
            skip_if_duplicate=request.skip_if_duplicate,
        )
        if isinstance(ticket, ExistingPhoto):
            return pb.CreateMultipartUploadResponse(existing_photo_id=str(ticket.photo_id))
        return pb.CreateMultipartUploadResponse(
            upload_id=str(ticket.upload_id),
            part_size_bytes=ticket.part_size_bytes,
            part_count=ticket.part_count,
            expire_time=timestamp(ticket.expire_time),
        )

    async def SignUploadParts(
        self, user: str, request: pb.SignUploadPartsRequest
    ) -> pb.SignUploadPartsResponse:
        parts = await self._service.sign_upload_parts(
            user,
            upload_id=request.upload_id,
            part_numbers=list(request.part_numbers),
            checksums_sha256=list(request.checksums_sha256),
        )
        return pb.SignUploadPartsResponse(
            parts=[
                pb.UploadPartUrl(
                    part_number=p.part_number,
                    url=p.url,
                    method=p.method,
                    required_headers=p.required_headers,
                    expire_time=timestamp(p.expire_time),
                )
                for p in parts
            ]
        )

    async def ListUploadedParts(
        self, user: str, request: pb.ListUploadedPartsRequest
    ) -> pb.ListUploadedPartsResponse:
        parts = await self._service.list_uploaded_parts(user, upload_id=request.upload_id)
        return pb.ListUploadedPartsResponse(
            parts=[
                pb.UploadedPart(part_number=p.part_number, size_bytes=p.size_bytes, etag=p.etag)
                for p in parts
            ]
        )

    async def AbortUpload(
        self, user: str, request: pb.AbortUploadRequest
    ) -> pb.AbortUploadResponse:
        await self._service.abort_upload(user, upload_id=request.upload_id)
        return pb.AbortUploadResponse()

    async def TrashPhoto(self, user: str, request: pb.TrashPhotoRequest) -> pb.TrashPhotoResponse:
        await self._service.trash_photo(user, request.id)
        return pb.TrashPhotoResponse()

    async def RestorePhoto(
        self, user: str, request: pb.RestorePhotoRequest
    ) -> pb.RestorePhotoResponse:
        photo = await self._service.restore_photo(user, request.id)
        return pb.RestorePhotoResponse(photo=photo_to_proto(photo))

    async def ListTrash(self, user: str, request: pb.ListTrashRequest) -> pb.ListTrashResponse:
        page = await self._service.list_trash(
            user, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListTrashResponse(
            photos=[photo_to_proto(p) for p in page.photos],
            next_page_token=page.next_page_token,
        )

    async def CreateAlbum(
        self, user: str, request: pb.CreateAlbumRequest
    ) -> pb.CreateAlbumResponse:
        album = await self._service.albums.create(
            user, title=request.title, description=request.description
        )
        return pb.CreateAlbumResponse(album=album_to_proto(album))

    async def GetAlbum(self, user: str, request: pb.GetAlbumRequest) -> pb.GetAlbumResponse:
        album = await self._service.albums.get(user, request.id)
        return pb.GetAlbumResponse(album=album_to_proto(album))

    async def ListAlbums(self, user: str, request: pb.ListAlbumsRequest) -> pb.ListAlbumsResponse:
        page = await self._service.albums.list_albums(
            user, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListAlbumsResponse(
            albums=[album_to_proto(a) for a in page.albums], next_page_token=page.next_page_token
        )

    async def UpdateAlbum(
        self, user: str, request: pb.UpdateAlbumRequest
    ) -> pb.UpdateAlbumResponse:
        given = request.album
        album = await self._service.albums.update(
            user,
            given.id,
            paths=frozenset(request.update_mask.paths),
            title=given.title,
            description=given.description,
            cover_photo_id=given.cover_photo_id,
        )
        return pb.UpdateAlbumResponse(album=album_to_proto(album))

    async def DeleteAlbum(
        self, user: str, request: pb.DeleteAlbumRequest
    ) -> pb.DeleteAlbumResponse:
        await self._service.albums.delete(user, request.id)
        return pb.DeleteAlbumResponse()

    async def AddAlbumPhotos(
        self, user: str, request: pb.AddAlbumPhotosRequest
    ) -> pb.AddAlbumPhotosResponse:
        album = await self._service.albums.add_photos(
            user, request.album_id, list(request.photo_ids)
        )
        return pb.AddAlbumPhotosResponse(album=album_to_proto(album))

    async def RemoveAlbumPhotos(
        self, user: str, request: pb.RemoveAlbumPhotosRequest
    ) -> pb.RemoveAlbumPhotosResponse:
        album = await self._service.albums.remove_photos(
            user, request.album_id, list(request.photo_ids)
        )
        return pb.RemoveAlbumPhotosResponse(album=album_to_proto(album))

    async def CreateShareLink(
        self, user: str, request: pb.CreateShareLinkRequest
    ) -> pb.CreateShareLinkResponse:
        created = await self._service.share_links.create(
            user,
            album_id=request.album_id,
            photo_id=request.photo_id,
            expire_time=optional_datetime(request, "expire_time"),
            allow_original=request.allow_original,
            password=request.password,
        )
        return pb.CreateShareLinkResponse(
            share_link=share_link_to_proto(created.link, created.token)
        )

    async def ListShareLinks(
        self, user: str, request: pb.ListShareLinksRequest
    ) -> pb.ListShareLinksResponse:
        links = await self._service.share_links.list_links(user)
        return pb.ListShareLinksResponse(share_links=[share_link_to_proto(x) for x in links])

    async def RevokeShareLink(
        self, user: str, request: pb.RevokeShareLinkRequest
    ) -> pb.RevokeShareLinkResponse:
        await self._service.share_links.revoke(user, request.id)
        return pb.RevokeShareLinkResponse()

    async def GetSharedAlbum(
        self, user: str, request: pb.GetSharedAlbumRequest
    ) -> pb.GetSharedAlbumResponse:
        """Anonymous (ANONYMOUS_METHODS): `user` is empty and never used."""
        reply = pb.GetSharedAlbumResponse()
        view = await self._service.share_links.view(
            token=request.token,
            password=request.password,
            page_size=request.page_size,
            page_token=request.page_token,
            fit=self._photos_fitting(reply.photos, fill_shared_photo),
        )
        self._keep_page(reply.photos, view.photos, fill_shared_photo)
        reply.title, reply.description = view.title, view.description
        reply.next_page_token = view.next_page_token
        return reply


# The RPCs served without a bearer token: the call pipeline (transport/calls.py) skips
# authentication and the per-user rate for them, on every transport. Each must check its own
# credential (GetSharedAlbum: the share link's token).
ANONYMOUS_METHODS = frozenset({"GetSharedAlbum"})

Handler = Callable[[str, Any], Awaitable[Message]]


class Method(Struct, frozen=True):
    """One RPC as the web transports see it: its path, message classes and handler."""

    name: str
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler
    # Served without a bearer token (ANONYMOUS_METHODS).
    anonymous: bool = False


def method_table(handlers: PhotoHandlers) -> dict[str, Method]:
    """`/photovault.v1.PhotoService/<Rpc>` -> Method, from the service descriptor."""
    table = {}
    for method in SERVICE.methods:
        table[f"/{SERVICE.full_name}/{method.name}"] = Method(
            name=method.name,
            request_type=getattr(pb, method.input_type.name),
            response_type=getattr(pb, method.output_type.name),
            handler=getattr(handlers, method.name),
            anonymous=method.name in ANONYMOUS_METHODS,
        )
    return table
