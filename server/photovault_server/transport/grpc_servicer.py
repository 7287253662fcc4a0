"""photovault.v1.PhotoService over grpc.aio: translates messages to core calls and back, nothing
else (auth, errors and logging live in the interceptors)."""

from __future__ import annotations

from typing import Any

import grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.core import PhotoChanges, PhotoService

from .convert import (
    account_to_proto,
    optional_datetime,
    photo_to_proto,
    photo_url_to_proto,
    timestamp,
)
from .grpc_interceptors import current_user

Context = grpc.aio.ServicerContext[Any, Any]


class PhotoServicer(pb_grpc.PhotoServiceServicer):
    def __init__(self, service: PhotoService) -> None:
        self._service = service

    async def CreateUploadUrl(
        self, request: pb.CreateUploadUrlRequest, context: Context
    ) -> pb.CreateUploadUrlResponse:
        ticket = await self._service.create_upload_url(
            current_user(),
            file_name=request.file_name,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            checksum_sha256=request.checksum_sha256,
        )
        return pb.CreateUploadUrlResponse(
            upload_id=str(ticket.upload_id),
            upload_url=ticket.url,
            method=ticket.method,
            required_headers=ticket.required_headers,
            expire_time=timestamp(ticket.expire_time),
        )

    async def ConfirmUpload(
        self, request: pb.ConfirmUploadRequest, context: Context
    ) -> pb.ConfirmUploadResponse:
        photo = await self._service.confirm_upload(
            current_user(),
            upload_id=request.upload_id,
            title=request.title,
            description=request.description,
            tags=list(request.tags),
            visibility=request.visibility,
        )
        return pb.ConfirmUploadResponse(photo=photo_to_proto(photo))

    async def GetPhoto(self, request: pb.GetPhotoRequest, context: Context) -> pb.GetPhotoResponse:
        photo = await self._service.get_photo(current_user(), request.id)
        return pb.GetPhotoResponse(photo=photo_to_proto(photo))

    async def ListPhotos(
        self, request: pb.ListPhotosRequest, context: Context
    ) -> pb.ListPhotosResponse:
        page = await self._service.list_photos(
            current_user(),
            page_size=request.page_size,
            page_token=request.page_token,
            tags=list(request.tags),
            query=request.query,
            created_after=optional_datetime(request, "created_after"),
            created_before=optional_datetime(request, "created_before"),
            visibility=request.visibility,
            content_type=request.content_type,
            order=request.order,
        )
        return pb.ListPhotosResponse(
            photos=[photo_to_proto(p) for p in page.photos],
            next_page_token=page.next_page_token,
        )

    async def BatchGetPhotoUrls(
        self, request: pb.BatchGetPhotoUrlsRequest, context: Context
    ) -> pb.BatchGetPhotoUrlsResponse:
        urls = await self._service.batch_get_photo_urls(current_user(), list(request.photo_ids))
        return pb.BatchGetPhotoUrlsResponse(urls=[photo_url_to_proto(u) for u in urls])

    async def UpdatePhoto(
        self, request: pb.UpdatePhotoRequest, context: Context
    ) -> pb.UpdatePhotoResponse:
        given = request.photo
        changes = PhotoChanges(
            paths=frozenset(request.update_mask.paths),
            title=given.title,
            description=given.description,
            tags=tuple(given.tags),
            visibility=given.visibility,  # type: ignore[arg-type]
        )
        photo = await self._service.update_photo(current_user(), given.id, changes)
        return pb.UpdatePhotoResponse(photo=photo_to_proto(photo))

    async def DeletePhoto(
        self, request: pb.DeletePhotoRequest, context: Context
    ) -> pb.DeletePhotoResponse:
        await self._service.delete_photo(current_user(), request.id)
        return pb.DeletePhotoResponse()

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: Context
    ) -> pb.GetAccountResponse:
        account = await self._service.get_account(current_user())
        return pb.GetAccountResponse(account=account_to_proto(account))
