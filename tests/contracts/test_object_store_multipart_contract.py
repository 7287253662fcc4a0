"""ObjectStore's multipart half (core/ports.py), run against S3ObjectStore on moto and the
in-memory fake: create, part URLs, list, complete, abort, the open uploads under a prefix and
the whole object's SHA-256. Parts keep S3's 5 MiB minimum (two and a short last one). That S3
enforces what part URLs sign is checked on LocalStack (tests/test_multipart_signatures.py)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from photovault_server.core.multipart_models import IncompleteUpload
from tests.support.contracts import StoreUnderTest

PART = 5 * 1024 * 1024


def a_key() -> str:
    return f"users/contract-{uuid.uuid4().hex}/photos/{uuid.uuid4()}.jpg"


async def open_ids(under: StoreUnderTest, prefix: str) -> list[IncompleteUpload]:
    found = []
    pages = under.store.incomplete_multiparts(
        prefix, initiated_before=under.now() + timedelta(days=1)
    )
    async for page in pages:
        found.extend(page)
    return found


async def test_parts_listed_completed_into_one_object(object_store: StoreUnderTest) -> None:
    assert object_store.put_part is not None
    store, key = object_store.store, a_key()
    data = os.urandom(2 * PART + 100)
    s3_id = await store.create_multipart(key, content_type="image/jpeg")
    assert await store.list_parts(key, s3_id) == []
    for number in (3, 1):
        chunk = data[(number - 1) * PART : number * PART]
        await object_store.put_part(key, s3_id, number, chunk)
    listed = await store.list_parts(key, s3_id)
    assert listed is not None
    assert [(p.part_number, p.size_bytes) for p in listed] == [(1, PART), (3, 100)]
    await object_store.put_part(key, s3_id, 2, data[PART : 2 * PART])
    parts = await store.list_parts(key, s3_id)
    assert parts is not None
    assert all(p.etag for p in parts)
    await store.complete_multipart(key, s3_id, parts)
    info = await store.head(key)
    assert info is not None
    assert (info.size_bytes, info.content_type) == (len(data), "image/jpeg")
    assert await store.sha256(key) == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert await store.list_parts(key, s3_id) is None  # completed: no longer an open upload
    await store.delete(key)


async def test_abort_drops_the_upload_and_twice_is_fine(object_store: StoreUnderTest) -> None:
    assert object_store.put_part is not None
    store, key = object_store.store, a_key()
    s3_id = await store.create_multipart(key, content_type="image/png")
    await object_store.put_part(key, s3_id, 1, b"x" * 10)
    prefix = key.rsplit("/", 1)[0] + "/"
    assert [(u.object_key, u.s3_upload_id) for u in await open_ids(object_store, prefix)] == [
        (key, s3_id)
    ]
    await store.abort_multipart(key, s3_id)
    await store.abort_multipart(key, s3_id)
    assert await store.list_parts(key, s3_id) is None
    assert await open_ids(object_store, prefix) == []
    assert await store.head(key) is None


async def test_open_uploads_are_listed_by_prefix_and_age(object_store: StoreUnderTest) -> None:
    store, key = object_store.store, a_key()
    s3_id = await store.create_multipart(key, content_type="image/jpeg")
    prefix = key.rsplit("/", 1)[0] + "/"
    assert await open_ids(object_store, prefix + "other/") == []
    assert [u.s3_upload_id for u in await open_ids(object_store, prefix)] == [s3_id]
    await store.abort_multipart(key, s3_id)


async def test_part_urls_sign_the_part_and_its_length(object_store: StoreUnderTest) -> None:
    store, key = object_store.store, a_key()
    s3_id = await store.create_multipart(key, content_type="image/jpeg")
    checksum = base64.b64encode(hashlib.sha256(b"part").digest()).decode()
    plain = await store.presign_upload_part(
        key, s3_id, 7, size_bytes=PART, checksum_sha256="", expires_in=timedelta(minutes=30)
    )
    assert plain.headers == {"Content-Length": str(PART)}
    summed = await store.presign_upload_part(
        key, s3_id, 8, size_bytes=4, checksum_sha256=checksum, expires_in=timedelta(minutes=30)
    )
    assert summed.headers == {"Content-Length": "4", "x-amz-checksum-sha256": checksum}
    assert plain.url != summed.url
    assert timedelta(minutes=29) <= plain.expire_time - object_store.now() <= timedelta(minutes=31)
    await store.abort_multipart(key, s3_id)


async def test_s3_part_urls_carry_part_number_and_upload_id(s3_store: StoreUnderTest) -> None:
    """The adapter's own: both are signed query parameters (SigV4's X-Amz-SignedHeaders list
    the signed headers; the canonical query string covers every parameter)."""
    store, key = s3_store.store, a_key()
    s3_id = await store.create_multipart(key, content_type="image/jpeg")
    signed = await store.presign_upload_part(
        key, s3_id, 3, size_bytes=PART, checksum_sha256="", expires_in=timedelta(minutes=5)
    )
    query = dict(parse_qsl(urlsplit(signed.url).query))
    assert (query["partNumber"], query["uploadId"]) == ("3", s3_id)
    assert query["X-Amz-SignedHeaders"] == "content-length;host"
    await store.abort_multipart(key, s3_id)
