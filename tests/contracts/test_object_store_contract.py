"""ObjectStore's contract (core/ports.py), run against S3ObjectStore on moto and the in-memory
fake.

Not on LocalStack: everything this contract states is observable through the port itself (what
is signed, the URLs' determinism, head/read/delete). That S3 enforces the signed URLs
(signature, signed headers, expiry, If-None-Match) is a property of S3, not of the port, and
tests/test_s3_signatures.py checks it on LocalStack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from photovault_server.core.errors import Unavailable
from photovault_server.core.models import ObjectInfo
from tests.support.contracts import StoreUnderTest

SIGNED_AT = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
CHECKSUM = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="


def a_key() -> str:
    return f"contract/{uuid.uuid4().hex}.jpg"


async def test_head_reads_size_and_type_and_none_when_missing(object_store: StoreUnderTest) -> None:
    key = a_key()
    assert await object_store.store.head(key) is None
    await object_store.put(key, b"\xff\xd8" + bytes(98), "image/jpeg")
    assert await object_store.store.head(key) == ObjectInfo(
        size_bytes=100, content_type="image/jpeg"
    )


async def test_read_prefix_reads_the_first_bytes(object_store: StoreUnderTest) -> None:
    key = a_key()
    data = bytes(range(256)) * 4
    await object_store.put(key, data, "image/png")
    assert await object_store.store.read_prefix(key, 32) == data[:32]
    assert await object_store.store.read_prefix(key, 1) == data[:1]
    assert await object_store.store.read_prefix(key, len(data) + 100) == data


async def test_read_prefix_of_a_missing_object_is_unavailable(
    object_store: StoreUnderTest,
) -> None:
    # The core reads only after `head`; an object deleted in between must not be a crash.
    with pytest.raises(Unavailable):
        await object_store.store.read_prefix(a_key(), 32)


async def test_delete_removes_and_a_missing_object_is_not_an_error(
    object_store: StoreUnderTest,
) -> None:
    key, kept = a_key(), a_key()
    await object_store.put(key, b"bytes", "image/jpeg")
    await object_store.put(kept, b"kept", "image/jpeg")
    await object_store.store.delete(key)
    assert await object_store.store.head(key) is None
    assert await object_store.store.head(kept) is not None
    await object_store.store.delete(key)
    await object_store.store.delete(a_key())


async def test_download_urls_are_deterministic_in_order_and_per_key(
    object_store: StoreUnderTest,
) -> None:
    store = object_store.store
    keys = [a_key() for _ in range(3)]
    expire_at = SIGNED_AT + timedelta(hours=2)
    first = await store.presign_downloads(keys, signed_at=SIGNED_AT, expire_at=expire_at)
    again = await store.presign_downloads(keys, signed_at=SIGNED_AT, expire_at=expire_at)
    assert first == again  # byte-identical URLs, same expiry
    assert len({u.url for u in first}) == len(keys)
    reordered = await store.presign_downloads(keys[::-1], signed_at=SIGNED_AT, expire_at=expire_at)
    assert reordered == first[::-1]
    assert all(u.expire_time == expire_at for u in first)
    assert await store.presign_downloads([], signed_at=SIGNED_AT, expire_at=expire_at) == []


async def test_download_urls_change_with_the_signing_time_or_expiry(
    object_store: StoreUnderTest,
) -> None:
    store = object_store.store
    keys = [a_key()]
    expire_at = SIGNED_AT + timedelta(hours=2)
    [base] = await store.presign_downloads(keys, signed_at=SIGNED_AT, expire_at=expire_at)
    later = SIGNED_AT + timedelta(seconds=1)
    [moved] = await store.presign_downloads(keys, signed_at=later, expire_at=expire_at)
    [longer] = await store.presign_downloads(
        keys, signed_at=SIGNED_AT, expire_at=expire_at + timedelta(seconds=1)
    )
    assert len({base.url, moved.url, longer.url}) == 3


async def test_download_urls_never_outlive_sigv4s_seven_days(object_store: StoreUnderTest) -> None:
    [signed] = await object_store.store.presign_downloads(
        [a_key()], signed_at=SIGNED_AT, expire_at=SIGNED_AT + timedelta(days=8)
    )
    assert signed.expire_time == SIGNED_AT + timedelta(days=7)


async def test_an_expiry_is_whole_seconds_after_the_signing_time(
    object_store: StoreUnderTest,
) -> None:
    [signed] = await object_store.store.presign_downloads(
        [a_key()], signed_at=SIGNED_AT, expire_at=SIGNED_AT + timedelta(seconds=90.7)
    )
    assert signed.expire_time == SIGNED_AT + timedelta(seconds=90)


@pytest.mark.parametrize("checksum", ["", CHECKSUM])
async def test_an_upload_url_lists_every_header_it_signs(
    object_store: StoreUnderTest, checksum: str
) -> None:
    before = object_store.now().replace(microsecond=0)
    upload = await object_store.store.presign_upload(
        a_key(),
        content_type="image/png",
        size_bytes=1234,
        checksum_sha256=checksum,
        expires_in=timedelta(minutes=15),
    )
    expected = {"Content-Type": "image/png", "Content-Length": "1234", "If-None-Match": "*"}
    if checksum:
        expected["x-amz-checksum-sha256"] = checksum
    assert upload.headers == expected
    # Signed now, to the second: it expires exactly its lifetime after that second.
    assert upload.expire_time.microsecond == 0
    after = object_store.now()
    assert before + timedelta(minutes=15) <= upload.expire_time <= after + timedelta(minutes=15)


async def test_url_scope_is_stable_and_long_term_keys_need_no_cap(
    object_store: StoreUnderTest,
) -> None:
    store = object_store.store
    scope = await store.url_scope()
    assert scope
    assert await store.url_scope() == scope
    assert await store.url_lifetime_cap() is None


async def test_delete_many_removes_the_listed_objects_only(object_store: StoreUnderTest) -> None:
    store = object_store.store
    gone, kept = [a_key() for _ in range(3)], a_key()
    for key in [*gone, kept]:
        await object_store.put(key, b"bytes", "image/jpeg")
    missing = a_key()
    assert await store.delete_many([gone[0], missing, gone[1], gone[2]]) == []
    assert [await store.head(key) for key in gone] == [None, None, None]
    assert await store.head(kept) is not None
    assert await store.delete_many(gone) == []  # already gone: not an error
    assert await store.delete_many([]) == []


async def test_delete_many_takes_up_to_a_thousand_keys(object_store: StoreUnderTest) -> None:
    store = object_store.store
    stored = [a_key() for _ in range(3)]
    for key in stored:
        await object_store.put(key, b"bytes", "image/jpeg")
    keys = stored + [a_key() for _ in range(1000 - len(stored))]
    assert await store.delete_many(keys) == []
    assert [await store.head(key) for key in stored] == [None, None, None]
    with pytest.raises(ValueError, match="1000"):
        await store.delete_many([*keys, a_key()])


async def test_write_stores_the_bytes_and_type_and_replaces_what_was_there(
    object_store: StoreUnderTest,
) -> None:
    store = object_store.store
    key = a_key()
    await store.write(key, b"first version", "image/webp")
    assert await store.head(key) == ObjectInfo(size_bytes=13, content_type="image/webp")
    await store.write(key, b"second", "image/jpeg")
    assert await store.head(key) == ObjectInfo(size_bytes=6, content_type="image/jpeg")
    assert await store.read_prefix(key, 100) == b"second"
    # A written object goes like any other, one by one or in a batch.
    assert await store.delete_many([key]) == []
    assert await store.head(key) is None
