"""The whole photo life cycle through a real grpc.aio channel, real Postgres, real Redis and
moto's S3 server, with the bytes moved by plain HTTP as a browser would."""

from __future__ import annotations

import base64
import hashlib

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2

from photovault.v1 import photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.server import running_grpc_server
from tests.support.images import decoded_size, jpeg, png
from tests.support.users import User, new_user, put_bytes, upload_photo


async def test_upload_list_get_download_update_delete(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    data = jpeg((16, 9))
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="Beach day.jpg",
            content_type="image/jpeg",
            size_bytes=len(data),
            checksum_sha256=checksum,
        ),
        metadata=alice.metadata,
    )
    assert ticket.method == "PUT"
    assert dict(ticket.required_headers) == {
        "Content-Type": "image/jpeg",
        "Content-Length": str(len(data)),
        "If-None-Match": "*",
        "x-amz-checksum-sha256": checksum,
    }
    assert f"/users/{alice.id}/photos/{ticket.upload_id}.jpg?" in ticket.upload_url
    signed = ticket.upload_url.split("X-Amz-SignedHeaders=")[1].split("&")[0]
    assert signed == "content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-sha256"

    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.pending_bytes, account.used_bytes, account.photo_count) == (len(data), 0, 0)

    assert (await put_bytes(http, ticket, data)).status_code == 200
    photo = (
        await stub.ConfirmUpload(
            pb.ConfirmUploadRequest(
                upload_id=ticket.upload_id, title="Beach", tags=["Summer", "sea"]
            ),
            metadata=alice.metadata,
        )
    ).photo
    assert photo.id == ticket.upload_id
    assert (photo.owner_id, photo.file_name, photo.size_bytes) == (
        alice.id,
        "Beach day.jpg",
        len(data),
    )
    assert list(photo.tags) == ["summer", "sea"]
    assert photo.visibility == photo_pb2.VISIBILITY_PRIVATE
    assert photo.checksum_sha256 == checksum
    assert photo.url
    assert photo.HasField("url_expire_time")

    # Confirming again is idempotent.
    again = await stub.ConfirmUpload(
        pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
    )
    assert again.photo.id == photo.id
    assert again.photo.create_time == photo.create_time

    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.pending_bytes, account.used_bytes, account.photo_count) == (0, len(data), 1)

    listed = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
    assert [p.id for p in listed.photos] == [photo.id]
    assert listed.photos[0].url == photo.url  # served from the URL cache: the same URL
    fetched = (await stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=alice.metadata)).photo

    download = await http.get(fetched.url)
    assert download.status_code == 200
    assert download.content == data
    assert decoded_size(download.content) == (16, 9)

    updated = (
        await stub.UpdatePhoto(
            pb.UpdatePhotoRequest(
                photo=photo_pb2.Photo(id=photo.id, title="Beach at noon", tags=["sun"]),
                update_mask=field_mask_pb2.FieldMask(paths=["title", "tags"]),
            ),
            metadata=alice.metadata,
        )
    ).photo
    assert (updated.title, list(updated.tags)) == ("Beach at noon", ["sun"])
    assert updated.update_time.ToDatetime() >= photo.update_time.ToDatetime()

    await stub.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=alice.metadata)
    assert (await http.get(fetched.url)).status_code == 404
    account = (await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)).account
    assert (account.used_bytes, account.photo_count) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeletePhoto(pb.DeletePhotoRequest(id=photo.id), metadata=alice.metadata)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_png_upload_and_batch_urls_in_request_order(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    first = await upload_photo(
        stub, http, alice, png(), content_type="image/png", file_name="a.png"
    )
    second = await upload_photo(stub, http, alice, jpeg(), file_name="b.jpg")
    assert first.content_type == "image/png"
    urls = (
        await stub.BatchGetPhotoUrls(
            pb.BatchGetPhotoUrlsRequest(photo_ids=[second.id, first.id, second.id]),
            metadata=alice.metadata,
        )
    ).urls
    assert [u.photo_id for u in urls] == [second.id, first.id, second.id]
    assert urls[0].url == urls[2].url
    assert (await http.get(urls[1].url)).content == png()


async def test_confirm_before_upload_is_failed_precondition(
    stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(file_name="x.jpg", content_type="image/jpeg", size_bytes=100),
        metadata=alice.metadata,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "PUT the bytes" in (err.value.details() or "")


async def test_bytes_that_are_not_the_declared_image_are_rejected_and_deleted(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, alice: User
) -> None:
    # moto does not enforce the signed headers, so this also stands for "S3 let it through".
    fake = b"<svg xmlns='http://www.w3.org/2000/svg'/>" + b" " * 20
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="x.jpg", content_type="image/jpeg", size_bytes=len(fake)
        ),
        metadata=alice.metadata,
    )
    assert (await put_bytes(http, ticket, fake)).status_code == 200
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=alice.metadata
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not a image/jpeg image" in (err.value.details() or "")
    plain_url = ticket.upload_url.split("?")[0]
    assert (await http.get(plain_url)).status_code in (403, 404)
    listed = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=alice.metadata)
    assert list(listed.photos) == []


async def test_health_and_reflection_answer_without_a_token(
    channel: grpc.aio.Channel,
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="photovault.v1.PhotoService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "photovault.v1.PhotoService" in names


async def test_reflection_can_be_switched_off(
    database_url: str, redis_url: str, aws_env: None
) -> None:
    """PHOTOVAULT_GRPC_REFLECTION=false: the service answers, reflection is UNIMPLEMENTED."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from photovault_server.app import open_app
    from tests.support.settings import make_settings

    settings = make_settings(database_url, redis_url, PHOTOVAULT_GRPC_REFLECTION="false")
    async with (
        open_app(settings) as app,
        running_grpc_server(app, "127.0.0.1:0") as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [r async for r in responses]
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        user = new_user()
        account = await pb_grpc.PhotoServiceStub(channel).GetAccount(
            pb.GetAccountRequest(), metadata=user.metadata
        )
        assert account.account.user_id == user.id
