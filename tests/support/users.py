"""Test users (fresh ids, real tokens) and the upload flow as a client runs it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.auth import mint_token

from .settings import JWT_SECRET


@dataclass(frozen=True)
class User:
    id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def new_user() -> User:
    user_id = f"user-{uuid.uuid4().hex[:12]}"
    return User(user_id, mint_token(JWT_SECRET, user_id))


async def put_bytes(
    http: httpx.AsyncClient, ticket: pb.CreateUploadUrlResponse, data: bytes
) -> httpx.Response:
    """PUTs the bytes as a browser would: to the URL, with exactly the required headers."""
    return await http.request(
        ticket.method, ticket.upload_url, content=data, headers=dict(ticket.required_headers)
    )


async def upload_photo(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    user: User,
    data: bytes,
    *,
    content_type: str = "image/jpeg",
    file_name: str = "photo.jpg",
    **confirm: Any,
) -> photo_pb2.Photo:
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name=file_name, content_type=content_type, size_bytes=len(data)
        ),
        metadata=user.metadata,
    )
    response = await put_bytes(http, ticket, data)
    assert response.status_code == 200, response.text
    confirmed = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id, **confirm),
        metadata=user.metadata,
    )
    return confirmed.photo
