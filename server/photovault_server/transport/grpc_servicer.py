"""photovault.v1.PhotoService over grpc.aio: hands each call to PhotoHandlers with the user the
auth interceptor established; errors and logging live in the interceptors."""

from __future__ import annotations

from typing import Any

import grpc

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.core import PhotoService

from .grpc_interceptors import current_user
from .handlers import PhotoHandlers

Context = grpc.aio.ServicerContext[Any, Any]


class PhotoServicer(pb_grpc.PhotoServiceServicer):
    def __init__(self, service: PhotoService) -> None:
        self._h = PhotoHandlers(service)

    async def CreateUploadUrl(
        self, request: pb.CreateUploadUrlRequest, context: Context
    ) -> pb.CreateUploadUrlResponse:
        return await self._h.CreateUploadUrl(current_user(), request)

    async def ConfirmUpload(
        self, request: pb.ConfirmUploadRequest, context: Context
    ) -> pb.ConfirmUploadResponse:
        return await self._h.ConfirmUpload(current_user(), request)

    async def GetPhoto(self, request: pb.GetPhotoRequest, context: Context) -> pb.GetPhotoResponse:
        return await self._h.GetPhoto(current_user(), request)

    async def ListPhotos(
        self, request: pb.ListPhotosRequest, context: Context
    ) -> pb.ListPhotosResponse:
        return await self._h.ListPhotos(current_user(), request)

    async def BatchGetPhotoUrls(
        self, request: pb.BatchGetPhotoUrlsRequest, context: Context
    ) -> pb.BatchGetPhotoUrlsResponse:
        return await self._h.BatchGetPhotoUrls(current_user(), request)

    async def UpdatePhoto(
        self, request: pb.UpdatePhotoRequest, context: Context
    ) -> pb.UpdatePhotoResponse:
        return await self._h.UpdatePhoto(current_user(), request)

    async def DeletePhoto(
        self, request: pb.DeletePhotoRequest, context: Context
    ) -> pb.DeletePhotoResponse:
        return await self._h.DeletePhoto(current_user(), request)

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: Context
    ) -> pb.GetAccountResponse:
        return await self._h.GetAccount(current_user(), request)
