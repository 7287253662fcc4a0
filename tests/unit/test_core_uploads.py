"""CreateUploadUrl and ConfirmUpload on the in-memory fakes: every validation limit, the quota
(also under concurrency), the server-chosen object key and each check ConfirmUpload makes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from photovault_server.core import (
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    QuotaExceeded,
    ServiceConfig,
    Unavailable,
    UrlPolicy,
    Visibility,
)
from tests.support.fakes import JPEG_BYTES, Harness, make_harness, window_of

MAX_UPLOAD = 1024 * 1024
CHECKSUM = base64.b64encode(hashlib.sha256(b"photo").digest()).decode()


def _ftyp(major: bytes, *compatible: bytes, tail: bytes = bytes(64)) -> bytes:
    """An ISO-BMFF `ftyp` box (size, type, major brand, minor version, compatible brands)."""
    size = 16 + 4 * len(compatible)
    box = size.to_bytes(4, "big") + b"ftyp" + major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return box + tail


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n"
    + b"\x00\x00\x00\x0dIHDR"
    + (1).to_bytes(4, "big") * 2
    + b"\x08\x06\x00\x00\x00"
    + bytes(60)
)
GIF87_BYTES = b"GIF87a\x01\x00\x01\x00\x80\x00\x00" + bytes(60)
GIF89_BYTES = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(60)
WEBP_BYTES = b"RIFF" + (80).to_bytes(4, "little") + b"WEBPVP8 " + bytes(72)
HEIC_BYTES = _ftyp(b"heic", b"mif1", b"heic")
HEIC_COMPATIBLE_ONLY = _ftyp(b"mif1", b"miaf", b"heix")
HEIF_BYTES = _ftyp(b"mif1", b"mif1", b"miaf")
AVIF_BYTES = _ftyp(b"avif", b"avif", b"mif1", b"miaf")


@pytest.fixture
def harness() -> Harness:
    return make_harness(max_upload_bytes=MAX_UPLOAD)


def _fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.violations}


async def _create(
    harness: Harness,
    user_id: str = "alice",
    *,
    file_name: str = "photo.jpg",
    content_type: str = "image/jpeg",
    size_bytes: int = len(JPEG_BYTES),
    checksum_sha256: str = "",
) -> UUID:
    ticket = await harness.service.create_upload_url(
        user_id,
        file_name=file_name,
        content_type=content_type,
        size_bytes=size_bytes,
        checksum_sha256=checksum_sha256,
    )
    return ticket.upload_id


def _key(harness: Harness, upload_id: UUID) -> str:
    return harness.repo.uploads[upload_id].object_key


# --- CreateUploadUrl: validation ------------------------------------------------------------

INVALID_REQUESTS = [
    # (id, field, request overrides)
    ("empty-file-name", "file_name", {"file_name": ""}),
    ("blank-file-name", "file_name", {"file_name": "   "}),
    ("file-name-256", "file_name", {"file_name": "a" * 256}),
    ("file-name-nul", "file_name", {"file_name": "a\x00.jpg"}),
    ("file-name-newline", "file_name", {"file_name": "a\nb.jpg"}),
    ("file-name-rlo", "file_name", {"file_name": "photo\u202egpj.exe"}),
    ("file-name-lre", "file_name", {"file_name": "\u202aphoto.jpg"}),
    ("file-name-rli", "file_name", {"file_name": "photo\u2067.jpg"}),
    ("file-name-surrogate", "file_name", {"file_name": "a\ud800.jpg"}),
    ("file-name-private-use", "file_name", {"file_name": "a\ue000.jpg"}),
    ("file-name-dotdot-slash", "file_name", {"file_name": "../etc/passwd"}),
    ("file-name-slash", "file_name", {"file_name": "dir/photo.jpg"}),
    ("file-name-backslash", "file_name", {"file_name": "..\\photo.jpg"}),
    ("file-name-dotdot", "file_name", {"file_name": ".."}),
    ("file-name-dot", "file_name", {"file_name": "."}),
    ("type-empty", "content_type", {"content_type": ""}),
    ("type-svg", "content_type", {"content_type": "image/svg+xml"}),
    ("type-html", "content_type", {"content_type": "text/html"}),
    ("type-octet-stream", "content_type", {"content_type": "application/octet-stream"}),
    ("type-bmp", "content_type", {"content_type": "image/bmp"}),
    ("type-with-params", "content_type", {"content_type": "image/jpeg; charset=utf-8"}),
    ("type-overlong", "content_type", {"content_type": "image/" + "j" * 200}),
    ("size-zero", "size_bytes", {"size_bytes": 0}),
    ("size-negative", "size_bytes", {"size_bytes": -1}),
    ("size-over-max", "size_bytes", {"size_bytes": MAX_UPLOAD + 1}),
    ("checksum-short", "checksum_sha256", {"checksum_sha256": CHECKSUM[:-1]}),
    ("checksum-long", "checksum_sha256", {"checksum_sha256": CHECKSUM + "A"}),
    ("checksum-hex", "checksum_sha256", {"checksum_sha256": hashlib.sha256(b"x").hexdigest()}),
    ("checksum-not-base64", "checksum_sha256", {"checksum_sha256": "!" * 44}),
    ("checksum-33-bytes", "checksum_sha256", {"checksum_sha256": "A" * 44}),
    (
        "checksum-urlsafe-alphabet",
        "checksum_sha256",
        {"checksum_sha256": base64.urlsafe_b64encode(b"\xfb" * 32).decode()},
    ),
]


@pytest.mark.parametrize(
    ("field", "overrides"),
    [(field, overrides) for _, field, overrides in INVALID_REQUESTS],
    ids=[case_id for case_id, _, _ in INVALID_REQUESTS],
)
async def test_create_upload_url_rejects_invalid_field(
    harness: Harness, field: str, overrides: dict[str, object]
) -> None:
    request: dict[str, object] = {
        "file_name": "photo.jpg",
        "content_type": "image/jpeg",
        "size_bytes": 100,
        "checksum_sha256": "",
    }
    request.update(overrides)
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.create_upload_url("alice", **request)  # type: ignore[call-overload]
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert _fields(caught.value) == {field}
    assert harness.repo.uploads == {}
    assert harness.store.signatures == 0


@pytest.mark.parametrize(
    ("overrides", "stored_name", "stored_type"),
    [
        ({"file_name": "a" * 255}, "a" * 255, "image/jpeg"),
        ({"file_name": "  holiday.jpg  "}, "holiday.jpg", "image/jpeg"),
        ({"file_name": "café 北京.JPG"}, "café 北京.JPG", "image/jpeg"),
        ({"file_name": "..photo"}, "..photo", "image/jpeg"),
        ({"content_type": "IMAGE/PNG"}, "photo.jpg", "image/png"),
        ({"content_type": " image/webp "}, "photo.jpg", "image/webp"),
        ({"size_bytes": 1}, "photo.jpg", "image/jpeg"),
        ({"size_bytes": MAX_UPLOAD}, "photo.jpg", "image/jpeg"),
        ({"checksum_sha256": CHECKSUM}, "photo.jpg", "image/jpeg"),
    ],
)
async def test_create_upload_url_accepts_values_at_the_limits(
    harness: Harness, overrides: dict[str, object], stored_name: str, stored_type: str
) -> None:
    request: dict[str, object] = {
        "file_name": "photo.jpg",
        "content_type": "image/jpeg",
        "size_bytes": 100,
    }
    request.update(overrides)
    ticket = await harness.service.create_upload_url("alice", **request)  # type: ignore[call-overload]
    upload = harness.repo.uploads[ticket.upload_id]
    assert upload.file_name == stored_name
    assert upload.content_type == stored_type
    assert upload.size_bytes == request["size_bytes"]


async def test_create_upload_url_reports_every_bad_field_at_once(harness: Harness) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.create_upload_url(
            "alice",
            file_name="../x",
            content_type="image/svg+xml",
            size_bytes=0,
            checksum_sha256="nope",
        )
    assert _fields(caught.value) == {"file_name", "content_type", "size_bytes", "checksum_sha256"}


async def test_create_upload_url_rejects_types_outside_a_narrowed_allow_list() -> None:
    harness = make_harness(allowed_content_types=("image/jpeg",))
    with pytest.raises(InvalidArgument) as caught:
        await _create(harness, content_type="image/png")
    assert _fields(caught.value) == {"content_type"}
    assert await _create(harness, content_type="image/jpeg") in harness.repo.uploads


# --- CreateUploadUrl: what it hands back ------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "extension"),
    [
        ("image/jpeg", ".jpg"),
        ("image/png", ".png"),
        ("image/gif", ".gif"),
        ("image/webp", ".webp"),
        ("image/heic", ".heic"),
        ("image/heif", ".heif"),
        ("image/avif", ".avif"),
    ],
)
@pytest.mark.parametrize("file_name", ["photo.jpg", "evil.php", "x.svg", "no-extension", "a.b.c"])
async def test_object_key_is_chosen_by_the_server(
    harness: Harness, content_type: str, extension: str, file_name: str
) -> None:
    ticket = await harness.service.create_upload_url(
        "alice", file_name=file_name, content_type=content_type, size_bytes=10
    )
    key = _key(harness, ticket.upload_id)
    assert key == f"users/alice/photos/{ticket.upload_id}{extension}"
    assert ticket.url.startswith(f"https://s3.test/{key}?sig=")


async def test_upload_ticket_signs_the_required_headers(harness: Harness) -> None:
    ticket = await harness.service.create_upload_url(
        "alice", file_name="a.png", content_type="image/png", size_bytes=1234
    )
    assert ticket.method == "PUT"
    assert ticket.required_headers == {
        "Content-Type": "image/png",
        "Content-Length": "1234",
        "If-None-Match": "*",
    }
    # Signed at the current second (SigV4 dates are whole seconds), for the upload URL's TTL.
    assert ticket.expire_time == harness.clock().replace(microsecond=0) + timedelta(minutes=15)
    with_checksum = await harness.service.create_upload_url(
        "alice",
        file_name="a.png",
        content_type="image/png",
        size_bytes=1234,
        checksum_sha256=CHECKSUM,
    )
    assert with_checksum.required_headers["x-amz-checksum-sha256"] == CHECKSUM
    assert harness.repo.uploads[with_checksum.upload_id].checksum_sha256 == CHECKSUM


async def test_upload_ids_are_unique(harness: Harness) -> None:
    ids = {await _create(harness) for _ in range(20)}
    assert len(ids) == 20


async def test_upload_urls_are_never_cached(harness: Harness) -> None:
    await _create(harness)
    await _create(harness)
    assert harness.cache.round_trips == 0
    assert harness.store.signatures == 2


async def test_store_outage_leaves_no_reservation(harness: Harness) -> None:
    harness.store.fail = True
    with pytest.raises(Unavailable):
        await _create(harness)
    assert harness.repo.uploads == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"upload_url_ttl": timedelta(hours=1, seconds=1)},
        {"upload_url_ttl": timedelta(0)},
        {"max_upload_bytes": 0},
        {"quota_bytes": -1},
        {"allowed_content_types": ("image/jpeg", "image/svg+xml")},
    ],
)
def test_service_config_rejects_unsafe_settings(kwargs: dict[str, object]) -> None:
    urls = UrlPolicy(download_ttl=timedelta(hours=2), cache_margin=timedelta(minutes=30))
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ServiceConfig(urls=urls, **kwargs)  # type: ignore[arg-type]


# --- Quota ------------------------------------------------------------------------------------


async def test_quota_exceeded_reports_the_numbers() -> None:
    harness = make_harness(quota_bytes=1000)
    await _create(harness, size_bytes=600)
    with pytest.raises(QuotaExceeded) as caught:
        await _create(harness, size_bytes=500)
    error = caught.value
    assert error.code is ErrorCode.RESOURCE_EXHAUSTED
    assert error.reason == "QUOTA_EXCEEDED"
    assert (error.quota_bytes, error.reserved_bytes, error.requested_bytes) == (1000, 600, 500)
    assert error.metadata == {
        "quota_bytes": "1000",
        "reserved_bytes": "600",
        "requested_bytes": "500",
    }
    (violation,) = error.violations
    assert violation.subject == "user:alice"
    assert "500 bytes requested, 400 of 1000 bytes left" in violation.description
    assert len(harness.repo.uploads) == 1


async def test_quota_can_be_filled_exactly() -> None:
    harness = make_harness(quota_bytes=1000)
    await _create(harness, size_bytes=600)
    await _create(harness, size_bytes=400)
    with pytest.raises(QuotaExceeded):
        await _create(harness, size_bytes=1)


async def test_confirmed_photos_count_against_the_quota() -> None:
    harness = make_harness(quota_bytes=1000)
    await harness.upload_photo(data=JPEG_BYTES + bytes(900 - len(JPEG_BYTES)))
    with pytest.raises(QuotaExceeded) as caught:
        await _create(harness, size_bytes=101)
    assert caught.value.reserved_bytes == 900
    await _create(harness, size_bytes=100)


async def test_expired_reservations_release_the_quota() -> None:
    harness = make_harness(quota_bytes=1000)
    await _create(harness, size_bytes=1000)
    harness.clock.advance(timedelta(minutes=15 + 60) - timedelta(microseconds=1))
    with pytest.raises(QuotaExceeded):
        await _create(harness, size_bytes=1)
    harness.clock.advance(timedelta(microseconds=1))
    await _create(harness, size_bytes=1000)


async def test_quota_is_per_user() -> None:
    harness = make_harness(quota_bytes=1000)
    await _create(harness, "alice", size_bytes=1000)
    await _create(harness, "bob", size_bytes=1000)
    account = await harness.service.get_account("bob")
    assert (account.pending_bytes, account.quota_bytes) == (1000, 1000)


async def test_concurrent_reservations_never_exceed_the_quota() -> None:
    harness = make_harness(quota_bytes=10_000)
    results = await asyncio.gather(
        *(_create(harness, size_bytes=1000) for _ in range(50)), return_exceptions=True
    )
    accepted = [r for r in results if isinstance(r, UUID)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(accepted), len(refused)) == (10, 40)
    account = await harness.service.get_account("alice")
    assert account.pending_bytes == 10_000


# --- ConfirmUpload ----------------------------------------------------------------------------


@pytest.mark.parametrize("upload_id", ["", "123", "not-a-uuid", uuid4().hex, f"{{{uuid4()}}}"])
async def test_confirm_rejects_a_malformed_id(harness: Harness, upload_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.confirm_upload("alice", upload_id=upload_id)
    assert _fields(caught.value) == {"upload_id"}


async def test_confirm_unknown_upload_is_not_found(harness: Harness) -> None:
    with pytest.raises(NotFound) as caught:
        await harness.service.confirm_upload("alice", upload_id=str(uuid4()))
    assert caught.value.code is ErrorCode.NOT_FOUND
    assert caught.value.reason == "UPLOAD_NOT_FOUND"


async def test_confirm_another_users_upload_is_not_found(harness: Harness) -> None:
    upload_id = await _create(harness, "alice")
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    with pytest.raises(NotFound):
        await harness.service.confirm_upload("mallory", upload_id=str(upload_id))
    assert upload_id in harness.repo.uploads
    assert harness.repo.photos == {}
    assert _key(harness, upload_id) in harness.store.objects


async def test_confirm_before_the_put_keeps_the_upload(harness: Harness) -> None:
    upload_id = await _create(harness)
    with pytest.raises(FailedPrecondition) as caught:
        await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert caught.value.code is ErrorCode.FAILED_PRECONDITION
    assert caught.value.reason == "OBJECT_NOT_UPLOADED"
    assert upload_id in harness.repo.uploads
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    photo = await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert photo.photo.id == upload_id


@pytest.mark.parametrize(
    ("data", "stored_type"),
    [
        pytest.param(JPEG_BYTES + b"x", "image/jpeg", id="larger"),
        pytest.param(JPEG_BYTES[:-1], "image/jpeg", id="smaller"),
        pytest.param(JPEG_BYTES, "image/png", id="other-type"),
        pytest.param(JPEG_BYTES, "text/html", id="html-type"),
        pytest.param(PNG_BYTES[: len(JPEG_BYTES)], "image/jpeg", id="png-bytes"),
        pytest.param(b"<svg" + bytes(len(JPEG_BYTES) - 4), "image/jpeg", id="svg-bytes"),
        pytest.param(bytes(len(JPEG_BYTES)), "image/jpeg", id="zero-bytes"),
    ],
)
async def test_confirm_rejects_a_mismatched_object_and_deletes_it(
    harness: Harness, data: bytes, stored_type: str
) -> None:
    upload_id = await _create(harness, size_bytes=len(JPEG_BYTES))
    key = _key(harness, upload_id)
    harness.store.put(key, data, stored_type)
    with pytest.raises(FailedPrecondition) as caught:
        await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert caught.value.reason == "UPLOAD_MISMATCH"
    assert key not in harness.store.objects
    assert harness.repo.photos == {}
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (0, 0)


async def test_object_type_is_compared_case_insensitively(harness: Harness) -> None:
    upload_id = await _create(harness)
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "IMAGE/JPEG")
    photo = await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert photo.photo.content_type == "image/jpeg"


async def test_confirm_twice_returns_the_same_photo(harness: Harness) -> None:
    upload_id = await _create(harness)
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    first = await harness.service.confirm_upload("alice", upload_id=str(upload_id), title="One")
    harness.clock.advance(timedelta(minutes=1))
    again = await harness.service.confirm_upload("alice", upload_id=str(upload_id), title="Two")
    assert again == first
    assert again.photo.title == "One"
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (1, len(JPEG_BYTES))


async def test_concurrent_confirms_make_one_photo(harness: Harness) -> None:
    upload_id = await _create(harness)
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    photos = await asyncio.gather(
        *(harness.service.confirm_upload("alice", upload_id=str(upload_id)) for _ in range(5))
    )
    assert {(p.photo.id, p.photo.create_time, p.url) for p in photos} == {
        (upload_id, photos[0].photo.create_time, photos[0].url)
    }
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (1, len(JPEG_BYTES))


async def test_confirm_after_the_reservation_expired(harness: Harness) -> None:
    upload_id = await _create(harness)
    key = _key(harness, upload_id)
    harness.store.put(key, JPEG_BYTES, "image/jpeg")
    harness.clock.advance(timedelta(minutes=15) + timedelta(hours=1))
    with pytest.raises(FailedPrecondition) as caught:
        await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert caught.value.reason == "UPLOAD_EXPIRED"
    assert upload_id not in harness.repo.uploads
    assert key not in harness.store.objects
    assert harness.repo.photos == {}


async def test_confirm_just_before_the_reservation_expires(harness: Harness) -> None:
    upload_id = await _create(harness)
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    harness.clock.advance(timedelta(minutes=75) - timedelta(microseconds=1))
    photo = await harness.service.confirm_upload("alice", upload_id=str(upload_id))
    assert photo.photo.id == upload_id


async def test_confirm_records_the_photo(harness: Harness) -> None:
    ticket = await harness.service.create_upload_url(
        "alice",
        file_name=" beach.jpg ",
        content_type="image/jpeg",
        size_bytes=len(JPEG_BYTES),
        checksum_sha256=CHECKSUM,
    )
    harness.store.put(_key(harness, ticket.upload_id), JPEG_BYTES, "image/jpeg")
    harness.clock.advance(timedelta(minutes=3))
    served = await harness.service.confirm_upload(
        "alice",
        upload_id=str(ticket.upload_id).upper(),
        title="  Beach  ",
        description="line one\nline two\tend",
        tags=["Sea", "sea ", "Summer"],
    )
    photo = served.photo
    assert photo.id == ticket.upload_id
    assert photo.owner_id == "alice"
    assert photo.object_key == f"users/alice/photos/{ticket.upload_id}.jpg"
    assert (photo.file_name, photo.content_type) == ("beach.jpg", "image/jpeg")
    assert (photo.size_bytes, photo.checksum_sha256) == (len(JPEG_BYTES), CHECKSUM)
    assert (photo.title, photo.description) == ("Beach", "line one\nline two\tend")
    assert photo.tags == ("sea", "summer")
    assert photo.create_time == photo.update_time == harness.clock()
    assert served.url.startswith(f"https://s3.test/{photo.object_key}?sig=")
    policy = harness.config.urls
    _, expire_at = window_of(harness.clock(), policy.download_ttl, policy.cache_margin)
    assert served.url_expire_time == expire_at
    assert not hasattr(harness.repo.photos[photo.id], "url")  # URLs are never stored
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes, account.pending_bytes) == (
        1,
        len(JPEG_BYTES),
        0,
    )


@pytest.mark.parametrize(
    ("visibility", "expected"),
    [
        (Visibility.UNSPECIFIED, Visibility.PRIVATE),
        (Visibility.PRIVATE, Visibility.PRIVATE),
        (Visibility.PUBLIC, Visibility.PUBLIC),
    ],
)
async def test_confirm_visibility_defaults_to_private(
    harness: Harness, visibility: Visibility, expected: Visibility
) -> None:
    photo = await harness.upload_photo(visibility=int(visibility))
    assert photo.visibility is expected
    assert harness.repo.photos[photo.id].visibility is expected


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("title", {"title": "t" * 201}),
        ("title", {"title": "two\nlines"}),
        ("title", {"title": "bidi\u202e"}),
        ("description", {"description": "d" * 2001}),
        ("description", {"description": "bell\x07"}),
        ("tags", {"tags": [f"t{i}" for i in range(21)]}),
        ("tags[1]", {"tags": ["ok", "x" * 51]}),
        ("tags[0]", {"tags": ["  "]}),
        ("tags[0]", {"tags": ["tab\tbed"]}),
        ("visibility", {"visibility": 3}),
        ("visibility", {"visibility": -1}),
    ],
)
async def test_confirm_rejects_invalid_metadata(
    harness: Harness, field: str, overrides: dict[str, object]
) -> None:
    upload_id = await _create(harness)
    harness.store.put(_key(harness, upload_id), JPEG_BYTES, "image/jpeg")
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.confirm_upload(
            "alice",
            upload_id=str(upload_id),
            **overrides,  # type: ignore[arg-type]
        )
    assert _fields(caught.value) == {field}
    assert harness.repo.photos == {}
    assert upload_id in harness.repo.uploads


async def test_confirm_accepts_metadata_at_the_limits(harness: Harness) -> None:
    photo = await harness.upload_photo(
        title="t" * 200,
        description="d" * 2000,
        tags=[f"{i:02d}" + "x" * 48 for i in range(20)],
    )
    assert (len(photo.title), len(photo.description), len(photo.tags)) == (200, 2000, 20)


# --- ConfirmUpload: each image format's leading bytes -----------------------------------------


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        pytest.param("image/jpeg", JPEG_BYTES, id="jpeg"),
        pytest.param("image/png", PNG_BYTES, id="png"),
        pytest.param("image/gif", GIF87_BYTES, id="gif87a"),
        pytest.param("image/gif", GIF89_BYTES, id="gif89a"),
        pytest.param("image/webp", WEBP_BYTES, id="webp"),
        pytest.param("image/heic", HEIC_BYTES, id="heic"),
        pytest.param("image/heic", HEIC_COMPATIBLE_ONLY, id="heic-compatible-brand"),
        pytest.param("image/heif", HEIF_BYTES, id="heif"),
        pytest.param("image/heif", HEIC_BYTES, id="heif-from-heic"),
        pytest.param("image/avif", AVIF_BYTES, id="avif"),
    ],
)
async def test_each_image_format_is_recognised(
    harness: Harness, content_type: str, data: bytes
) -> None:
    photo = await harness.upload_photo(content_type=content_type, data=data)
    assert photo.content_type == content_type
    assert photo.size_bytes == len(data)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        pytest.param("image/png", JPEG_BYTES, id="jpeg-as-png"),
        pytest.param("image/gif", b"GIF88a" + bytes(60), id="gif-bad-version"),
        pytest.param("image/webp", b"RIFF" + bytes(4) + b"WAVE" + bytes(60), id="wav-as-webp"),
        pytest.param("image/heic", AVIF_BYTES, id="avif-as-heic"),
        pytest.param("image/heic", HEIF_BYTES, id="plain-heif-as-heic"),
        pytest.param("image/avif", HEIC_BYTES, id="heic-as-avif"),
        pytest.param("image/jpeg", b"\xff\xd8" + bytes(60), id="truncated-jpeg-marker"),
        pytest.param(
            "image/heic",
            _ftyp(b"mif1", tail=b"heic" + bytes(60)),
            id="brand-outside-the-ftyp-box",
        ),
        pytest.param("image/avif", b"\x00\x00\x00\x18ftya" + b"avif" * 10, id="not-ftyp"),
    ],
)
async def test_bytes_of_another_format_are_rejected(
    harness: Harness, content_type: str, data: bytes
) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await harness.upload_photo(content_type=content_type, data=data)
    assert caught.value.reason == "UPLOAD_MISMATCH"
    assert harness.store.objects == {}
