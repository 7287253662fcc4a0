"""Hostile input, fuzzed: hypothesis draws every RPC's request fields (NUL and bidi controls,
10 KB strings, `../`, ids that almost parse, int64 edges, unknown enum numbers, timestamps out
of range, huge repeated fields, random field-mask paths) and sends them through the real
grpc.aio server of the session. Each answer is a success or a client-error status, never
INTERNAL/UNKNOWN/UNAVAILABLE; a rejected request writes nothing (rows read back through
app.pool). Hostile bytes for the web gateway that tests/test_gateway_*.py does not already
send (header blocks of 10 MB, random frames) are at the end.

Async tests take @given directly: pytest-asyncio (1.x) runs hypothesis' inner test as a
coroutine on the session loop, so the session server, channel and pool are usable per example.
Examples per test: PHOTOVAULT_FUZZ_EXAMPLES (40 by default; `make soak` sets 10000).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from photovault.v1 import album_pb2, photo_pb2
from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App

from .support.grpc_status import call_error, details
from .support.grpc_web import GET_ACCOUNT_FRAME, auth, frame, grpc_web_post, read_grpc_web
from .support.images import jpeg
from .support.processing import process_due_photos
from .support.users import User, new_user, put_bytes, upload_photo

StatusCode = grpc.StatusCode
M = TypeVar("M", bound=Message)
T = TypeVar("T")

EXAMPLES = int(os.environ.get("PHOTOVAULT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What a hostile request may get back. Everything else (INTERNAL, UNKNOWN, UNAVAILABLE, ...)
# is a server bug or a crash.
CLIENT_ERRORS = frozenset(
    {
        StatusCode.INVALID_ARGUMENT,
        StatusCode.NOT_FOUND,
        StatusCode.FAILED_PRECONDITION,
        StatusCode.RESOURCE_EXHAUSTED,
        StatusCode.UNAUTHENTICATED,
    }
)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Timestamp's valid range is 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
TS_MIN, TS_MAX = -62_135_596_800, 253_402_300_799

# Strategies -------------------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b.jpg",
    "photo\u202egpj.exe",
    "\u2066x\u2069",
    "../../etc/passwd",
    "..",
    ".",
    "..\\..\\x.jpg",
    "%2e%2e%2f",
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    "null",
    "\ufeff",
    "\U000e0001",  # a tag character
    "\uffff",  # a non-character
    "\r\n",
    "image/jpeg",
    "IMAGE/JPEG ",
    "image/svg+xml",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "{00000000-0000-0000-0000-000000000000}",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "00000000000000000000000000000000",
    "00000000-0000-0000-0000-00000000000g",
    "00000000-0000-0000-0000-0000000000000",
    "x" * 255,
    "x" * 256,
]

# Any code point but surrogates (not representable in a protobuf string).
NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
chars = st.characters(exclude_categories=NO_SURROGATES)
huge_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["a", "\x00", "\u202e", "é", "/", "ü\u0308"]),
    st.integers(5_000, 10_240),
)
uuid_text = st.uuids().map(str)
uuid_like = st.uuids().map(lambda u: str(u).upper()) | st.uuids().map(lambda u: u.hex)
text = st.one_of(
    st.text(chars, max_size=300),
    st.sampled_from(HOSTILE_STRINGS),
    uuid_text,
    uuid_like,
    huge_text,
    st.lists(st.sampled_from(["..", "/", "\x00", "\u202e", "a", " "]), max_size=40).map("".join),
)


def half(valid: st.SearchStrategy[T], hostile: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """Valid half of the time (`|` would flatten into one_of's many hostile branches), so
    that requests with one hostile field among valid ones, and valid ones, are common."""
    return st.booleans().flatmap(lambda ok: valid if ok else hostile)


optional_text = half(st.just(""), text)
int64 = st.integers(*INT64) | st.sampled_from(
    [0, -1, 1, 2**31 - 1, 2**31, 2**32, INT64[0], INT64[1], 1024 * 1024, 1024 * 1024 + 1]
)
int32 = st.integers(*INT32) | st.sampled_from([0, -1, 1, 500, 501, INT32[0], INT32[1]])
enum = st.integers(*INT32) | st.sampled_from([0, 1, 2, 3, -1, INT32[0], INT32[1]])
# Enum fields take any int32 on the wire (proto3 enums are open).
visibilities = enum.map(lambda v: cast(photo_pb2.Visibility, v))
orders = (enum | st.sampled_from([3, 4])).map(lambda v: cast(pb.PhotoOrder, v))
repeated_text = st.one_of(
    st.lists(text, max_size=25),
    st.lists(st.text(chars, max_size=8), min_size=100, max_size=5_000),
    st.lists(huge_text, min_size=1, max_size=3),
)
# The session server's variants (PHOTOVAULT_VARIANTS' default), then anything.
VARIANT_NAMES = ("thumb", "preview")
variant_lists = half(st.lists(st.sampled_from(VARIANT_NAMES), max_size=4), repeated_text)
variant_name = half(st.sampled_from(("", *VARIANT_NAMES)), text)
timestamps = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.integers(*INT64) | st.sampled_from([TS_MIN, TS_MAX, TS_MIN - 1, TS_MAX + 1, 0]),
    nanos=st.integers(*INT32) | st.sampled_from([0, 999_999_999, 1_000_000_000, -1]),
) | st.builds(timestamp_pb2.Timestamp, seconds=st.integers(TS_MIN, TS_MAX), nanos=st.just(0))
optional_timestamp = st.none() | timestamps
mask_paths = (
    st.sampled_from(
        [
            "title",
            "description",
            "tags",
            "visibility",
            "id",
            "owner_id",
            "size_bytes",
            "url",
            "create_time",
            "photo.title",
            "title.x",
            "*",
            "",
            "TITLE",
            " title",
        ]
    )
    | text
)
UPDATABLE = ["title", "description", "tags", "visibility"]
field_masks = st.one_of(
    st.none(),
    st.builds(field_mask_pb2.FieldMask, paths=st.lists(mask_paths, max_size=10)),
    st.builds(
        field_mask_pb2.FieldMask, paths=st.lists(st.sampled_from(UPDATABLE), min_size=1, max_size=4)
    ),
)
# Ids that name something: the user's own photo (OWN) or another user's (OTHER), or anything.
OWN, OTHER = "<own>", "<other>"
ids = half(st.sampled_from([OWN, OTHER]), text)


# Helpers ----------------------------------------------------------------------------------------


def assert_whole_status(error: grpc.aio.AioRpcError) -> None:
    """The service's own status arrived whole: google.rpc.Status details that agree with the
    code. A status the transport made up has none or disagrees (a trailer block over the
    client's 16 KiB metadata limit arrives as RESOURCE_EXHAUSTED "Stream removed", with what
    was kept of the service's INVALID_ARGUMENT details)."""
    shown = (error.code(), (error.details() or "")[:300])
    try:
        status = rpc_status.from_call(error)
    except ValueError as mismatch:
        raise AssertionError(f"status and its details disagree: {mismatch}; {shown}") from None
    assert status is not None, f"no google.rpc.Status details: {shown}"


@dataclass
class Outcome:
    request: Message
    response: Message | None
    error: grpc.aio.AioRpcError | None


async def attempt(call: Callable[[M], Awaitable[Message]], request: M) -> Outcome:
    """Sends the request; a success or a client-error status, and notes the exchange for the
    falsifying example."""
    shown = str(request)
    note(f"request: {shown[:2000]}{' ...' if len(shown) > 2000 else ''}")
    try:
        response = await call(request)
    except grpc.aio.AioRpcError as error:
        note(f"status: {error.code().name}: {error.details()}")
        failed = error
    else:
        note(f"response: {str(response)[:500]}")
        event("OK")
        return Outcome(request, response, None)
    event(failed.code().name)
    assert failed.code() in CLIENT_ERRORS, (failed.code(), failed.details(), shown[:2000])
    assert failed.details(), "an error without a message"
    # The service's own status, whole: google.rpc.Status details that agree with the code. A
    # status the transport made up (a trailer over the client's 16 KiB metadata limit is
    # RESOURCE_EXHAUSTED "Stream removed") has none.
    assert_whole_status(failed)
    return Outcome(request, None, failed)


async def snapshot(app: App, user_id: str) -> dict[str, Any]:
    """Everything stored for the user: account, photos and uploads rows."""
    async with app.pool.acquire() as conn:
        account = await conn.fetchrow("SELECT * FROM accounts WHERE user_id = $1", user_id)
        photos = await conn.fetch("SELECT * FROM photos WHERE owner_id = $1 ORDER BY id", user_id)
        uploads = await conn.fetch("SELECT * FROM uploads WHERE owner_id = $1 ORDER BY id", user_id)
    return {
        "account": dict(account) if account else None,
        "photos": [dict(r) for r in photos],
        "uploads": [dict(r) for r in uploads],
    }


async def pending_bytes(stub: pb_grpc.PhotoServiceAsyncStub, user: User) -> int:
    reply = await stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
    return reply.account.pending_bytes


@dataclass
class Owner:
    """A user with one confirmed photo, processed (READY, with variants), and a second user
    with the same and a pending upload, whose rows must never change."""

    user: User
    photo: photo_pb2.Photo
    other: User
    other_photo: photo_pb2.Photo
    other_upload_id: str


@pytest.fixture
async def owner(stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, app: App) -> Owner:
    user, other = new_user(), new_user()
    photo = await upload_photo(stub, http, user, jpeg(), title="mine", tags=["a"])
    other_photo = await upload_photo(stub, http, other, jpeg(), title="theirs")
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(file_name="p.jpg", content_type="image/jpeg", size_bytes=10),
        metadata=other.metadata,
    )
    await process_due_photos(app)
    ready = await stub.GetPhoto(pb.GetPhotoRequest(id=photo.id), metadata=user.metadata)
    assert ready.photo.processing_state == photo_pb2.PROCESSING_STATE_READY
    return Owner(user, ready.photo, other, other_photo, ticket.upload_id)


def resolve(value: str, owner: Owner) -> str:
    return {OWN: owner.photo.id, OTHER: owner.other_photo.id}.get(value, value)


async def assert_unchanged(
    app: App, owner: Owner, before: dict[str, Any], other: dict[str, Any]
) -> None:
    assert await snapshot(app, owner.user.id) == before, "a rejected request changed the rows"
    assert await snapshot(app, owner.other.id) == other, "another user's rows changed"


# One test per RPC ------------------------------------------------------------------------------


@FUZZ
@given(
    file_name=half(st.just("ok.jpg"), text),
    content_type=half(st.sampled_from(["image/jpeg", "image/png", "IMAGE/JPEG"]), text),
    size_bytes=half(st.integers(1, 1024 * 1024), int64),
    checksum_sha256=optional_text,
    skip_if_duplicate=st.booleans(),
)
async def test_create_upload_url(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    file_name: str,
    content_type: str,
    size_bytes: int,
    checksum_sha256: str,
    skip_if_duplicate: bool,
) -> None:
    user = new_user()
    pending = await pending_bytes(stub, user)
    before = await snapshot(app, user.id)
    request = pb.CreateUploadUrlRequest(
        file_name=file_name,
        content_type=content_type,
        size_bytes=size_bytes,
        checksum_sha256=checksum_sha256,
        skip_if_duplicate=skip_if_duplicate,
    )
    out = await attempt(lambda r: stub.CreateUploadUrl(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await pending_bytes(stub, user) == pending
        assert await snapshot(app, user.id) == before
    else:
        assert await pending_bytes(stub, user) == pending + size_bytes
        assert 0 < size_bytes <= app.settings.max_upload_bytes


@FUZZ
@given(
    upload=half(st.sampled_from(["pending", "put", "other"]), text),
    title=optional_text,
    description=optional_text,
    tags=half(st.just([]), repeated_text),
    visibility=half(
        st.sampled_from([0, 1, 2]).map(lambda v: cast(photo_pb2.Visibility, v)), visibilities
    ),
)
async def test_confirm_upload(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    app: App,
    owner: Owner,
    upload: str,
    title: str,
    description: str,
    tags: list[str],
    visibility: photo_pb2.Visibility,
) -> None:
    user = owner.user
    data = jpeg()
    ticket = await stub.CreateUploadUrl(
        pb.CreateUploadUrlRequest(
            file_name="c.jpg", content_type="image/jpeg", size_bytes=len(data)
        ),
        metadata=user.metadata,
    )
    if upload == "put":
        assert (await put_bytes(http, ticket, data)).status_code == 200
    upload_id = {
        "pending": ticket.upload_id,  # issued, never PUT: FAILED_PRECONDITION
        "put": ticket.upload_id,
        "other": owner.other_upload_id,
    }.get(upload, upload)
    before, other = await snapshot(app, user.id), await snapshot(app, owner.other.id)
    request = pb.ConfirmUploadRequest(
        upload_id=upload_id, title=title, description=description, tags=tags, visibility=visibility
    )
    out = await attempt(lambda r: stub.ConfirmUpload(r, metadata=user.metadata), request)
    if out.error is not None:
        await assert_unchanged(app, owner, before, other)
    else:
        assert upload == "put", "confirmed an upload whose object was never PUT"
        assert isinstance(out.response, pb.ConfirmUploadResponse)
        assert out.response.photo.owner_id == user.id
    # Drop the ticket's reservation so that the quota never runs out across examples.
    async with app.pool.acquire() as conn:
        await conn.execute("DELETE FROM uploads WHERE id = $1::uuid", ticket.upload_id)


@FUZZ
@given(photo_id=ids)
async def test_get_photo(
    stub: pb_grpc.PhotoServiceAsyncStub, app: App, owner: Owner, photo_id: str
) -> None:
    request = pb.GetPhotoRequest(id=resolve(photo_id, owner))
    out = await attempt(lambda r: stub.GetPhoto(r, metadata=owner.user.metadata), request)
    if out.error is None:
        assert isinstance(out.response, pb.GetPhotoResponse)
        assert out.response.photo.id == owner.photo.id
    elif photo_id == OTHER:
        assert out.error.code() == StatusCode.NOT_FOUND


@FUZZ
@given(
    page_size=int32,
    page_token=text,
    tags=repeated_text,
    query=text,
    created_after=optional_timestamp,
    created_before=optional_timestamp,
    visibility=half(
        st.sampled_from([0, 1, 2]).map(lambda v: cast(photo_pb2.Visibility, v)), visibilities
    ),
    content_type=text,
    order=orders,
    taken_after=optional_timestamp,
    taken_before=optional_timestamp,
    variants=variant_lists,
)
async def test_list_photos(
    stub: pb_grpc.PhotoServiceAsyncStub,
    owner: Owner,
    page_size: int,
    page_token: str,
    tags: list[str],
    query: str,
    created_after: timestamp_pb2.Timestamp | None,
    created_before: timestamp_pb2.Timestamp | None,
    visibility: photo_pb2.Visibility,
    content_type: str,
    order: pb.PhotoOrder,
    taken_after: timestamp_pb2.Timestamp | None,
    taken_before: timestamp_pb2.Timestamp | None,
    variants: list[str],
) -> None:
    request = pb.ListPhotosRequest(
        page_size=page_size,
        page_token=page_token,
        tags=tags,
        query=query,
        created_after=created_after,
        created_before=created_before,
        visibility=visibility,
        content_type=content_type,
        order=order,
        taken_after=taken_after,
        taken_before=taken_before,
        variants=variants,
    )
    out = await attempt(lambda r: stub.ListPhotos(r, metadata=owner.user.metadata), request)
    known = set(variants) <= set(VARIANT_NAMES) and len(variants) <= len(VARIANT_NAMES)
    if out.error is None:
        assert known, "unknown variant names were accepted"
        assert isinstance(out.response, pb.ListPhotosResponse)
        assert {p.owner_id for p in out.response.photos} <= {owner.user.id}
        wanted = set(variants) or set(VARIANT_NAMES)
        for photo in out.response.photos:  # the owner's one READY photo: what was asked for
            assert {v.name for v in photo.variants} == wanted
            assert all(v.url for v in photo.variants)
    elif known and out.error.code() == StatusCode.INVALID_ARGUMENT:
        assert not any(f.startswith("variants") for f in details(out.error)["fields"])


# Seconds around the owner's photo's create time (its taken time: a bare jpeg() has none).
near = st.integers(-3, 3) | st.integers(-86_400, 86_400)


@FUZZ
@given(
    after=st.none() | near,
    before=st.none() | near,
    order=st.sampled_from([0, 1, 2, 3, 4]).map(lambda v: cast(pb.PhotoOrder, v)),
    variants=st.lists(st.sampled_from(VARIANT_NAMES), max_size=2, unique=True),
)
async def test_list_photos_by_taken_time(
    stub: pb_grpc.PhotoServiceAsyncStub,
    owner: Owner,
    after: int | None,
    before: int | None,
    order: pb.PhotoOrder,
    variants: list[str],
) -> None:
    """Valid taken-time windows, orders and variant names: always answered, and the owner's
    photo is listed exactly when its taken time (its create time standing in) is inside."""
    created = owner.photo.create_time.ToNanoseconds()

    def stamp(offset: int | None) -> timestamp_pb2.Timestamp | None:
        if offset is None:
            return None
        value = timestamp_pb2.Timestamp()
        value.FromNanoseconds(created + offset * 1_000_000_000)
        return value

    request = pb.ListPhotosRequest(
        taken_after=stamp(after), taken_before=stamp(before), order=order, variants=variants
    )
    out = await attempt(lambda r: stub.ListPhotos(r, metadata=owner.user.metadata), request)
    if after is not None and before is not None and after >= before:
        assert out.error is not None  # an empty window is refused
        assert out.error.code() == StatusCode.INVALID_ARGUMENT
        return
    assert isinstance(out.response, pb.ListPhotosResponse)
    inside = (after is None or after <= 0) and (before is None or before > 0)
    assert [p.id for p in out.response.photos] == ([owner.photo.id] if inside else [])
    for photo in out.response.photos:
        assert sorted(v.name for v in photo.variants) == sorted(variants or VARIANT_NAMES)


@FUZZ
@given(photo_ids=st.lists(ids, max_size=120) | repeated_text, variant=variant_name)
async def test_batch_get_photo_urls(
    stub: pb_grpc.PhotoServiceAsyncStub, owner: Owner, photo_ids: list[str], variant: str
) -> None:
    request = pb.BatchGetPhotoUrlsRequest(
        photo_ids=[resolve(i, owner) for i in photo_ids], variant=variant
    )
    out = await attempt(lambda r: stub.BatchGetPhotoUrls(r, metadata=owner.user.metadata), request)
    if out.error is None:
        assert isinstance(out.response, pb.BatchGetPhotoUrlsResponse)
        assert {u.photo_id for u in out.response.urls} <= {owner.photo.id}
        assert variant in ("", *VARIANT_NAMES), "an unknown variant was accepted"
        urls = {v.name: v.url for v in owner.photo.variants}
        for url in out.response.urls:  # READY: the variant itself, never its fallback
            assert (url.variant, url.url) == (variant, urls.get(variant, owner.photo.url))
    elif OTHER in photo_ids and out.error.code() != StatusCode.INVALID_ARGUMENT:
        assert out.error.code() == StatusCode.NOT_FOUND


@FUZZ
@given(
    photo_id=ids,
    title=optional_text,
    description=optional_text,
    tags=half(st.just([]), repeated_text),
    visibility=half(
        st.sampled_from([0, 1, 2]).map(lambda v: cast(photo_pb2.Visibility, v)), visibilities
    ),
    other_fields=st.fixed_dictionaries(
        {},
        optional={
            "owner_id": text,
            "file_name": text,
            "content_type": text,
            "size_bytes": int64,
            "checksum_sha256": text,
            "url": text,
            "create_time": timestamps,
            "update_time": timestamps,
        },
    ),
    mask=field_masks,
)
async def test_update_photo(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    owner: Owner,
    photo_id: str,
    title: str,
    description: str,
    tags: list[str],
    visibility: photo_pb2.Visibility,
    other_fields: dict[str, Any],
    mask: field_mask_pb2.FieldMask | None,
) -> None:
    before, other = await snapshot(app, owner.user.id), await snapshot(app, owner.other.id)
    photo = photo_pb2.Photo(
        id=resolve(photo_id, owner),
        title=title,
        description=description,
        tags=tags,
        visibility=visibility,
        **other_fields,
    )
    request = pb.UpdatePhotoRequest(photo=photo, update_mask=mask)
    out = await attempt(lambda r: stub.UpdatePhoto(r, metadata=owner.user.metadata), request)
    if out.error is not None:
        await assert_unchanged(app, owner, before, other)
    else:
        assert photo_id == OWN
        after = await snapshot(app, owner.user.id)
        # Only the photo row may change, and never its identity, object or size.
        for column in ("id", "owner_id", "object_key", "size_bytes", "content_type", "create_time"):
            assert after["photos"][0][column] == before["photos"][0][column], column
        assert after["uploads"] == before["uploads"]
        assert after["account"] == before["account"]
        assert await snapshot(app, owner.other.id) == other


@FUZZ
@given(photo_id=ids)
async def test_delete_photo(
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    app: App,
    owner: Owner,
    photo_id: str,
) -> None:
    before, other = await snapshot(app, owner.user.id), await snapshot(app, owner.other.id)
    request = pb.DeletePhotoRequest(id=resolve(photo_id, owner))
    out = await attempt(lambda r: stub.DeletePhoto(r, metadata=owner.user.metadata), request)
    if out.error is not None:
        await assert_unchanged(app, owner, before, other)
    else:
        assert photo_id == OWN, "deleted something that is not the caller's photo"
        assert await snapshot(app, owner.other.id) == other
        assert (await snapshot(app, owner.user.id))["photos"] == []
        # A new photo for the examples that follow.
        owner.photo = await upload_photo(stub, http, owner.user, jpeg())


@FUZZ
@given(trash_id=ids, restore_id=ids)
async def test_trash_and_restore_photo(
    stub: pb_grpc.PhotoServiceAsyncStub, app: App, owner: Owner, trash_id: str, restore_id: str
) -> None:
    before, other = await snapshot(app, owner.user.id), await snapshot(app, owner.other.id)
    request = pb.TrashPhotoRequest(id=resolve(trash_id, owner))
    out = await attempt(lambda r: stub.TrashPhoto(r, metadata=owner.user.metadata), request)
    if out.error is not None:
        await assert_unchanged(app, owner, before, other)
    else:
        assert trash_id == OWN, "trashed something that is not the caller's photo"
        assert await snapshot(app, owner.other.id) == other
        (row,) = (await snapshot(app, owner.user.id))["photos"]
        assert row["trashed_at"] is not None
    trashed = await snapshot(app, owner.user.id)
    restore = pb.RestorePhotoRequest(id=resolve(restore_id, owner))
    out = await attempt(lambda r: stub.RestorePhoto(r, metadata=owner.user.metadata), restore)
    if out.error is not None:
        await assert_unchanged(app, owner, trashed, other)
    else:
        assert restore_id == OWN, "restored something that is not the caller's photo"
        assert isinstance(out.response, pb.RestorePhotoResponse)
        assert out.response.photo.id == owner.photo.id
    # Back in the library for the examples that follow.
    await stub.RestorePhoto(pb.RestorePhotoRequest(id=owner.photo.id), metadata=owner.user.metadata)


@FUZZ
@given(page_size=int32, page_token=text)
async def test_list_trash(
    stub: pb_grpc.PhotoServiceAsyncStub, owner: Owner, page_size: int, page_token: str
) -> None:
    await stub.TrashPhoto(pb.TrashPhotoRequest(id=owner.photo.id), metadata=owner.user.metadata)
    try:
        request = pb.ListTrashRequest(page_size=page_size, page_token=page_token)
        out = await attempt(lambda r: stub.ListTrash(r, metadata=owner.user.metadata), request)
        if out.error is None:
            assert isinstance(out.response, pb.ListTrashResponse)
            assert [p.id for p in out.response.photos] == [owner.photo.id]
        else:
            assert out.error.code() == StatusCode.INVALID_ARGUMENT
    finally:
        await stub.RestorePhoto(
            pb.RestorePhotoRequest(id=owner.photo.id), metadata=owner.user.metadata
        )


@FUZZ
@given(
    file_name=half(st.just("big.jpg"), text),
    content_type=half(st.sampled_from(["image/jpeg", "image/png"]), text),
    size_bytes=half(st.integers(1, 1024 * 1024), int64),
    checksum_sha256=optional_text,
    skip_if_duplicate=st.booleans(),
)
async def test_create_multipart_upload(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    file_name: str,
    content_type: str,
    size_bytes: int,
    checksum_sha256: str,
    skip_if_duplicate: bool,
) -> None:
    user = new_user()
    assert await pending_bytes(stub, user) == 0  # the account exists (created on first use)
    before = await snapshot(app, user.id)
    request = pb.CreateMultipartUploadRequest(
        file_name=file_name,
        content_type=content_type,
        size_bytes=size_bytes,
        checksum_sha256=checksum_sha256,
        skip_if_duplicate=skip_if_duplicate,
    )
    out = await attempt(lambda r: stub.CreateMultipartUpload(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await snapshot(app, user.id) == before
    else:
        assert await pending_bytes(stub, user) == size_bytes
        reply = cast(pb.CreateMultipartUploadResponse, out.response)
        assert reply.part_size_bytes >= 5 * 1024 * 1024
        assert 1 <= reply.part_count <= 10_000
        assert reply.part_size_bytes * reply.part_count >= size_bytes


@dataclass
class Checksummed:
    """A user and another, each with one photo uploaded with its checksum (different bytes)."""

    user: User
    photo_id: str
    checksum: str
    other: User
    other_checksum: str


@pytest.fixture
async def checksummed(stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient) -> Checksummed:
    user, other = new_user(), new_user()
    found = []
    for who, data in ((user, jpeg(rgb=(7, 7, 7))), (other, jpeg(rgb=(8, 8, 8)))):
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        ticket = await stub.CreateUploadUrl(
            pb.CreateUploadUrlRequest(
                file_name="d.jpg",
                content_type="image/jpeg",
                size_bytes=len(data),
                checksum_sha256=checksum,
            ),
            metadata=who.metadata,
        )
        assert (await put_bytes(http, ticket, data)).status_code == 200
        confirmed = await stub.ConfirmUpload(
            pb.ConfirmUploadRequest(upload_id=ticket.upload_id), metadata=who.metadata
        )
        found.append((confirmed.photo.id, checksum))
    (photo_id, checksum), (_, other_checksum) = found
    return Checksummed(user, photo_id, checksum, other, other_checksum)


@FUZZ
@given(
    multipart=st.booleans(),
    checksum=half(st.sampled_from(["own", "other"]), optional_text),
    skip=st.booleans(),
)
async def test_skip_if_duplicate(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    checksummed: Checksummed,
    multipart: bool,
    checksum: str,
    skip: bool,
) -> None:
    """Only the caller's own photo is ever answered, and only then is nothing reserved."""
    sums = {"own": checksummed.checksum, "other": checksummed.other_checksum}
    value = sums.get(checksum, checksum)
    user = checksummed.user
    other = await snapshot(app, checksummed.other.id)
    before = await snapshot(app, user.id)
    fields: dict[str, Any] = {
        "file_name": "d.jpg",
        "content_type": "image/jpeg",
        "size_bytes": 1000,
        "checksum_sha256": value,
        "skip_if_duplicate": skip,
    }
    if multipart:
        out = await attempt(
            lambda r: stub.CreateMultipartUpload(r, metadata=user.metadata),
            pb.CreateMultipartUploadRequest(**fields),
        )
    else:
        out = await attempt(
            lambda r: stub.CreateUploadUrl(r, metadata=user.metadata),
            pb.CreateUploadUrlRequest(**fields),
        )
    assert await snapshot(app, checksummed.other.id) == other
    if out.error is not None:
        assert await snapshot(app, user.id) == before
        return
    existing = cast(Any, out.response).existing_photo_id
    if skip and checksum == "own":
        assert existing == checksummed.photo_id
        assert await snapshot(app, user.id) == before, "a duplicate reserved something"
    else:
        assert existing == ""
        upload_id = cast(Any, out.response).upload_id
        await stub.AbortUpload(pb.AbortUploadRequest(upload_id=upload_id), metadata=user.metadata)


@FUZZ
@given(
    upload=half(st.just(OWN), st.sampled_from([OWN, OTHER]) | text),
    part_numbers=half(st.just([1]), st.lists(int32, max_size=120)),
    checksums=half(st.just([]), repeated_text),
)
async def test_sign_upload_parts(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    multipart_owner: tuple[User, str, str],
    upload: str,
    part_numbers: list[int],
    checksums: list[str],
) -> None:
    user, own, other = multipart_owner
    before = await snapshot(app, user.id)
    request = pb.SignUploadPartsRequest(
        upload_id={OWN: own, OTHER: other}.get(upload, upload),
        part_numbers=part_numbers,
        checksums_sha256=checksums,
    )
    out = await attempt(lambda r: stub.SignUploadParts(r, metadata=user.metadata), request)
    assert await snapshot(app, user.id) == before  # signing never writes
    if out.error is None:
        assert upload == OWN, "signed parts of an upload that is not the caller's"
        reply = cast(pb.SignUploadPartsResponse, out.response)
        assert [p.part_number for p in reply.parts] == part_numbers == [1]


@FUZZ
@given(
    upload=st.sampled_from([OWN, OTHER]) | text,
    rpc=st.sampled_from(["ListUploadedParts", "AbortUpload"]),
)
async def test_list_uploaded_parts_and_abort_upload(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    multipart_owner: tuple[User, str, str],
    upload: str,
    rpc: str,
) -> None:
    user, own, other = multipart_owner
    request_type = getattr(pb, f"{rpc}Request")
    request = request_type(upload_id={OWN: own, OTHER: other}.get(upload, upload))
    before = await snapshot(app, user.id)
    out = await attempt(lambda r: getattr(stub, rpc)(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await snapshot(app, user.id) == before
    else:
        assert upload == OWN, f"{rpc} acted on an upload that is not the caller's"
        if rpc == "AbortUpload":
            assert await pending_bytes(stub, user) == 0


@pytest.fixture
async def multipart_owner(stub: pb_grpc.PhotoServiceAsyncStub) -> tuple[User, str, str]:
    """A user with a one-part multipart upload, and another user's upload id."""
    user, other = new_user(), new_user()
    ids = []
    for who in (user, other):
        created = await stub.CreateMultipartUpload(
            pb.CreateMultipartUploadRequest(
                file_name="big.jpg", content_type="image/jpeg", size_bytes=4096
            ),
            metadata=who.metadata,
        )
        ids.append(created.upload_id)
    return user, ids[0], ids[1]


@FUZZ
@given(
    token=st.one_of(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300),
        st.sampled_from(["", "null", "eyJhbGciOiJub25lIn0.e30.", "a.b.c", "...", "Bearer"]),
    ),
    scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "Bearer  "]),
)
async def test_get_account_with_hostile_tokens(
    stub: pb_grpc.PhotoServiceAsyncStub, token: str, scheme: str
) -> None:
    metadata = (("authorization", f"{scheme}{token}".strip()),)
    out = await attempt(lambda r: stub.GetAccount(r, metadata=metadata), pb.GetAccountRequest())
    assert out.error is not None, "a made-up token was accepted"
    assert out.error.code() == StatusCode.UNAUTHENTICATED


@FUZZ
@given(
    payload=st.binary(max_size=2_000),
    rpc=st.sampled_from(sorted(pb.DESCRIPTOR.services_by_name["PhotoService"].methods_by_name)),
)
async def test_random_request_bytes(channel: grpc.aio.Channel, payload: bytes, rpc: str) -> None:
    """Arbitrary bytes as the request message of every RPC: a client error or a success,
    not grpc.aio's UNKNOWN for a request that does not parse."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/photovault.v1.PhotoService/{rpc}"
    )
    note(f"rpc={rpc} payload={payload!r}")
    user = new_user()
    try:
        await call(payload, metadata=user.metadata)
    except grpc.aio.AioRpcError as error:
        note(f"status: {error.code().name}: {error.details()}")
        failed = error
    else:
        return
    assert failed.code() in CLIENT_ERRORS, (rpc, payload, failed.code(), failed.details())


# Findings of the fuzzing above, pinned ---------------------------------------------------------

BAD_TIMESTAMPS = [
    pytest.param(timestamp_pb2.Timestamp(seconds=0, nanos=-1), id="nanos-negative"),
    pytest.param(timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000_000), id="nanos-1e9"),
    pytest.param(timestamp_pb2.Timestamp(seconds=TS_MAX + 1), id="after-9999"),
    pytest.param(timestamp_pb2.Timestamp(seconds=TS_MIN - 1), id="before-0001"),
    pytest.param(timestamp_pb2.Timestamp(seconds=INT64[1]), id="int64-max"),
]


@pytest.mark.parametrize("field", ["created_after", "created_before"])
@pytest.mark.parametrize("value", BAD_TIMESTAMPS)
async def test_list_photos_invalid_timestamp_is_invalid_argument(
    stub: pb_grpc.PhotoServiceAsyncStub, field: str, value: timestamp_pb2.Timestamp
) -> None:
    """Found by test_list_photos: a Timestamp outside its documented range was INTERNAL."""
    request = pb.ListPhotosRequest()
    getattr(request, field).CopyFrom(value)
    error = await call_error(stub.ListPhotos(request, metadata=new_user().metadata))
    assert error.code() == StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    assert details(error)["fields"] == [field]


@pytest.mark.parametrize(
    "rpc", sorted(pb.DESCRIPTOR.services_by_name["PhotoService"].methods_by_name)
)
async def test_unparseable_request_is_invalid_argument(channel: grpc.aio.Channel, rpc: str) -> None:
    """Found by test_random_request_bytes: bytes that are not the request message (here a
    truncated varint) were UNKNOWN "Unexpected <class 'google.protobuf.message.DecodeError'>"
    (grpc.aio's answer when the deserializer raises), where the web gateway answers
    INVALID_ARGUMENT."""
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/photovault.v1.PhotoService/{rpc}"
    )
    error = await call_error(call(b"\xff\xff", metadata=new_user().metadata))
    assert error.code() == StatusCode.INVALID_ARGUMENT, (error.code(), error.details())


async def test_error_for_100_bad_ids_reaches_the_client_whole(
    stub: pb_grpc.PhotoServiceAsyncStub,
) -> None:
    """Found by test_batch_get_photo_urls: 100 malformed ids gave a trailer block over gRPC's
    default 16 KiB metadata limit; the client saw RESOURCE_EXHAUSTED "Stream removed"."""
    request = pb.BatchGetPhotoUrlsRequest(photo_ids=["x"] * 100)
    error = await call_error(stub.BatchGetPhotoUrls(request, metadata=new_user().metadata))
    assert error.code() == StatusCode.INVALID_ARGUMENT, (
        error.code(),
        (error.details() or "")[:300],
    )
    assert_whole_status(error)


@pytest.mark.parametrize(
    "paths", [["a" * 10_000], [c * 2_000 for c in "bcdefghijk"]], ids=["one", "ten"]
)
async def test_error_for_long_mask_paths_reaches_the_client_whole(
    stub: pb_grpc.PhotoServiceAsyncStub, http: httpx.AsyncClient, paths: list[str]
) -> None:
    """Found by test_update_photo: the error echoed each unknown mask path whole; 10 KB of
    paths made a trailer block the client refused (RESOURCE_EXHAUSTED "Stream removed")."""
    user = new_user()
    photo = await upload_photo(stub, http, user, jpeg())
    request = pb.UpdatePhotoRequest(
        photo=photo_pb2.Photo(id=photo.id), update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    error = await call_error(stub.UpdatePhoto(request, metadata=user.metadata))
    assert error.code() == StatusCode.INVALID_ARGUMENT, (
        error.code(),
        (error.details() or "")[:300],
    )
    assert_whole_status(error)
    assert details(error)["fields"]


# The web gateway --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def gateway(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("size", [65 * 1024, 10 * 1024 * 1024], ids=["65kib", "10mib"])
async def test_gateway_refuses_huge_header_values(gateway: httpx.AsyncClient, size: int) -> None:
    """The gateway bounds the header block (64 KiB): a larger one is a 400/431, never read
    into memory whole, never a 5xx; the gateway serves the next request."""
    user = new_user()
    response = await grpc_web_post(
        gateway, "GetAccount", GET_ACCOUNT_FRAME, headers={**auth(user), "x-big": "a" * size}
    )
    assert response.status_code in (400, 431), (response.status_code, response.content[:200])
    after = await grpc_web_post(gateway, "GetAccount", GET_ACCOUNT_FRAME, headers=auth(user))
    assert read_grpc_web(after).code == 0


@pytest.mark.parametrize("value", BAD_TIMESTAMPS)
async def test_gateway_invalid_timestamp_is_invalid_argument(
    gateway: httpx.AsyncClient, value: timestamp_pb2.Timestamp
) -> None:
    body = frame(pb.ListPhotosRequest(created_before=value).SerializeToString())
    response = await grpc_web_post(gateway, "ListPhotos", body, headers=auth(new_user()))
    reply = read_grpc_web(response)
    assert reply.code == StatusCode.INVALID_ARGUMENT.value[0], reply


@FUZZ
@given(
    body=st.binary(max_size=300)
    | st.builds(
        lambda flag, n, tail: bytes([flag]) + n.to_bytes(4, "big") + tail,
        st.integers(0, 255),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=50),
    )
    | st.binary(max_size=300).map(frame),
    rpc=st.sampled_from(sorted(pb.DESCRIPTOR.services_by_name["PhotoService"].methods_by_name)),
    text_mode=st.booleans(),
)
async def test_gateway_random_frames_are_a_clean_status(
    gateway: httpx.AsyncClient, body: bytes, rpc: str, text_mode: bool
) -> None:
    response = await grpc_web_post(
        gateway,
        rpc,
        base64.b64encode(body) if text_mode else body,
        content_type="application/grpc-web-text" if text_mode else "application/grpc-web+proto",
        headers=auth(new_user()),
    )
    note(f"{response.status_code} {dict(response.headers)} {response.content[:300]!r}")
    reply = read_grpc_web(response, text=text_mode)
    if body[:1] and body[0] & 0x01 and reply.code == StatusCode.UNIMPLEMENTED.value[0]:
        return  # the compressed flag without a grpc-encoding the gateway supports
    assert reply.code in {c.value[0] for c in CLIENT_ERRORS} | {0}, reply


# Albums and share links -------------------------------------------------------------------------

album_ids = half(st.sampled_from([OWN, OTHER]), text)
album_mask_paths = st.sampled_from(["title", "description", "cover_photo_id"]) | mask_paths
album_masks = st.one_of(
    st.none(),
    st.builds(field_mask_pb2.FieldMask, paths=st.lists(album_mask_paths, max_size=6)),
)


@dataclass
class AlbumOwner:
    """`owner`'s user and the other user, each with an album holding their photo, and a share
    link of each album (the link's token: only its creator ever sees it)."""

    owner: Owner
    album_id: str
    other_album_id: str
    link: Any
    other_link: Any

    def album(self, value: str) -> str:
        return {OWN: self.album_id, OTHER: self.other_album_id}.get(value, value)


@pytest.fixture
async def albums(stub: pb_grpc.PhotoServiceAsyncStub, owner: Owner) -> AlbumOwner:
    made = []
    for user, photo in ((owner.user, owner.photo), (owner.other, owner.other_photo)):
        album = (
            await stub.CreateAlbum(pb.CreateAlbumRequest(title="fuzz"), metadata=user.metadata)
        ).album
        await stub.AddAlbumPhotos(
            pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=[photo.id]),
            metadata=user.metadata,
        )
        expire = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86_400)
        link = await stub.CreateShareLink(
            pb.CreateShareLinkRequest(album_id=album.id, expire_time=expire),
            metadata=user.metadata,
        )
        made.append((album.id, link.share_link))
    return AlbumOwner(owner, made[0][0], made[1][0], made[0][1], made[1][1])


async def album_snapshot(app: App, user_id: str) -> dict[str, Any]:
    """The user's albums, memberships and share links, and their photos' rows."""
    async with app.pool.acquire() as conn:
        albums_ = await conn.fetch("SELECT * FROM albums WHERE owner_id = $1 ORDER BY id", user_id)
        members = await conn.fetch(
            "SELECT album_id, photo_id FROM album_photos WHERE owner_id = $1 ORDER BY 1, 2",
            user_id,
        )
        links = await conn.fetch(
            "SELECT * FROM share_links WHERE owner_id = $1 ORDER BY id", user_id
        )
    return {
        "albums": [dict(r) for r in albums_],
        "members": [tuple(r) for r in members],
        "links": [dict(r) for r in links],
        **(await snapshot(app, user_id)),
    }


@FUZZ
@given(title=half(st.just("Holidays"), text), description=optional_text)
async def test_create_album(
    stub: pb_grpc.PhotoServiceAsyncStub, app: App, albums: AlbumOwner, title: str, description: str
) -> None:
    user = albums.owner.user
    before = await album_snapshot(app, user.id)
    request = pb.CreateAlbumRequest(title=title, description=description)
    out = await attempt(lambda r: stub.CreateAlbum(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await album_snapshot(app, user.id) == before
    else:
        assert isinstance(out.response, pb.CreateAlbumResponse)
        assert out.response.album.title == title.strip()
        await stub.DeleteAlbum(
            pb.DeleteAlbumRequest(id=out.response.album.id), metadata=user.metadata
        )


@FUZZ
@given(
    album_id=album_ids,
    title=optional_text,
    description=optional_text,
    cover=half(st.sampled_from([OWN, OTHER, ""]), text),
    mask=album_masks,
    delete=st.booleans(),
)
async def test_get_update_and_delete_album(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    albums: AlbumOwner,
    album_id: str,
    title: str,
    description: str,
    cover: str,
    mask: field_mask_pb2.FieldMask | None,
    delete: bool,
) -> None:
    owner = albums.owner
    user = owner.user
    other = await album_snapshot(app, owner.other.id)
    target = albums.album(album_id)
    out = await attempt(
        lambda r: stub.GetAlbum(r, metadata=user.metadata), pb.GetAlbumRequest(id=target)
    )
    assert (out.error is None) == (album_id == OWN)
    before = await album_snapshot(app, user.id)
    request = pb.UpdateAlbumRequest(
        album=album_pb2.Album(
            id=target, title=title, description=description, cover_photo_id=resolve(cover, owner)
        ),
        update_mask=mask,
    )
    out = await attempt(lambda r: stub.UpdateAlbum(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await album_snapshot(app, user.id) == before
    else:
        assert album_id == OWN, "updated an album that is not the caller's"
    if delete:
        out = await attempt(
            lambda r: stub.DeleteAlbum(r, metadata=user.metadata), pb.DeleteAlbumRequest(id=target)
        )
        if out.error is None:
            assert album_id == OWN, "deleted an album that is not the caller's"
            assert (await album_snapshot(app, user.id))["photos"] == before["photos"]
            albums.album_id = (
                await stub.CreateAlbum(pb.CreateAlbumRequest(title="again"), metadata=user.metadata)
            ).album.id
    assert await album_snapshot(app, owner.other.id) == other, "another user's rows changed"


@FUZZ
@given(album_id=album_ids, photo_ids=half(st.lists(ids, min_size=1, max_size=5), repeated_text))
async def test_add_and_remove_album_photos(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    albums: AlbumOwner,
    album_id: str,
    photo_ids: list[str],
) -> None:
    owner = albums.owner
    user = owner.user
    other = await album_snapshot(app, owner.other.id)
    wanted = [resolve(i, owner) for i in photo_ids]
    target = albums.album(album_id)
    calls: list[tuple[Callable[[Any], Awaitable[Message]], Message]] = [
        (
            lambda r: stub.AddAlbumPhotos(r, metadata=user.metadata),
            pb.AddAlbumPhotosRequest(album_id=target, photo_ids=wanted),
        ),
        (
            lambda r: stub.RemoveAlbumPhotos(r, metadata=user.metadata),
            pb.RemoveAlbumPhotosRequest(album_id=target, photo_ids=wanted),
        ),
    ]
    for call, request in calls:
        before = await album_snapshot(app, user.id)
        out = await attempt(call, request)
        if out.error is not None:
            assert await album_snapshot(app, user.id) == before
        else:
            assert album_id == OWN, "edited an album that is not the caller's"
            assert set(photo_ids) == {OWN}, "edited an album with photos not the caller's"
    assert await album_snapshot(app, owner.other.id) == other, "another user's rows changed"


@FUZZ
@given(page_size=int32, page_token=text, album_id=album_ids)
async def test_list_albums_and_photos_by_album(
    stub: pb_grpc.PhotoServiceAsyncStub,
    albums: AlbumOwner,
    page_size: int,
    page_token: str,
    album_id: str,
) -> None:
    user = albums.owner.user
    request = pb.ListAlbumsRequest(page_size=page_size, page_token=page_token)
    out = await attempt(lambda r: stub.ListAlbums(r, metadata=user.metadata), request)
    if out.error is None:
        assert isinstance(out.response, pb.ListAlbumsResponse)
        assert {a.id for a in out.response.albums} <= {albums.album_id}
    listing = pb.ListPhotosRequest(album_id=albums.album(album_id), page_size=page_size)
    out = await attempt(lambda r: stub.ListPhotos(r, metadata=user.metadata), listing)
    if out.error is None:
        assert isinstance(out.response, pb.ListPhotosResponse)
        assert album_id in (OWN, ""), "listed an album that is not the caller's"
        assert [p.id for p in out.response.photos] == [albums.owner.photo.id]


@FUZZ
@given(
    album_id=half(st.sampled_from([OWN, OTHER, ""]), text),
    photo_id=half(st.sampled_from([OWN, OTHER, ""]), text),
    expire_time=half(st.integers(60, 364 * 86_400), st.integers(*INT32)),
    allow_original=st.booleans(),
    password=half(st.sampled_from(["", "a password"]), text),
)
async def test_create_share_link(
    stub: pb_grpc.PhotoServiceAsyncStub,
    app: App,
    albums: AlbumOwner,
    album_id: str,
    photo_id: str,
    expire_time: int,
    allow_original: bool,
    password: str,
) -> None:
    owner = albums.owner
    user = owner.user
    other = await album_snapshot(app, owner.other.id)
    before = await album_snapshot(app, user.id)
    request = pb.CreateShareLinkRequest(
        album_id=albums.album(album_id),
        photo_id=resolve(photo_id, owner),
        expire_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + expire_time),
        allow_original=allow_original,
        password=password,
    )
    out = await attempt(lambda r: stub.CreateShareLink(r, metadata=user.metadata), request)
    if out.error is not None:
        assert await album_snapshot(app, user.id) == before
    else:
        assert isinstance(out.response, pb.CreateShareLinkResponse)
        assert {album_id, photo_id} == {OWN, ""}, "shared something that is not the caller's"
        await stub.RevokeShareLink(
            pb.RevokeShareLinkRequest(id=out.response.share_link.id), metadata=user.metadata
        )
    assert await album_snapshot(app, owner.other.id) == other, "another user's rows changed"


@FUZZ
@given(link_id=half(st.sampled_from([OTHER]), text))
async def test_list_and_revoke_share_links(
    stub: pb_grpc.PhotoServiceAsyncStub, app: App, albums: AlbumOwner, link_id: str
) -> None:
    user = albums.owner.user
    other = await album_snapshot(app, albums.owner.other.id)
    request = pb.RevokeShareLinkRequest(id=albums.other_link.id if link_id == OTHER else link_id)
    out = await attempt(lambda r: stub.RevokeShareLink(r, metadata=user.metadata), request)
    assert out.error is not None, "revoked a link that is not the caller's"
    listed = await stub.ListShareLinks(pb.ListShareLinksRequest(), metadata=user.metadata)
    assert [x.id for x in listed.share_links] == [albums.link.id]
    assert await album_snapshot(app, albums.owner.other.id) == other


@FUZZ
@given(
    token=half(st.sampled_from([OWN, OTHER]), text),
    password=optional_text,
    page_size=int32,
    page_token=text,
)
async def test_get_shared_album_without_a_bearer_token(
    stub: pb_grpc.PhotoServiceAsyncStub,
    albums: AlbumOwner,
    token: str,
    password: str,
    page_size: int,
    page_token: str,
) -> None:
    given_token = {OWN: albums.link.token, OTHER: albums.other_link.token}.get(token, token)
    request = pb.GetSharedAlbumRequest(
        token=given_token, password=password, page_size=page_size, page_token=page_token
    )
    out = await attempt(stub.GetSharedAlbum, request)
    if out.error is None:
        assert isinstance(out.response, pb.GetSharedAlbumResponse)
        assert token in (OWN, OTHER), "a made-up token was accepted"
        for photo in out.response.photos:
            assert photo.url == "", "an original without allow_original"
