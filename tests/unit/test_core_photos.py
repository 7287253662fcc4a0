"""GetPhoto, UpdatePhoto, DeletePhoto, BatchGetPhotoUrls and GetAccount on the in-memory fakes:
id checks, per-user scoping, update mask rules, cache invalidation and delete's all-or-nothing."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from photovault_server.core import (
    ErrorCode,
    InvalidArgument,
    NotFound,
    Photo,
    PhotoChanges,
    Unavailable,
    Visibility,
)
from photovault_server.core.service import UPLOAD_WINDOW
from photovault_server.core.urls import cache_key
from tests.support.fakes import JPEG_BYTES, Harness, make_harness


@pytest.fixture
def harness() -> Harness:
    return make_harness()


def _fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.violations}


def _is_cached(harness: Harness, photo: Photo) -> bool:
    return cache_key(harness.store.scope, photo) in harness.cache.entries


MALFORMED_IDS = [
    pytest.param("", id="empty"),
    pytest.param("42", id="number"),
    pytest.param("not-a-uuid", id="words"),
    pytest.param(uuid4().hex, id="no-dashes"),
    pytest.param(f"{{{uuid4()}}}", id="braces"),
    pytest.param(f"urn:uuid:{uuid4()}", id="urn"),
    pytest.param(f" {uuid4()}", id="leading-space"),
    pytest.param(str(uuid4())[:-1] + "g", id="non-hex"),
    pytest.param("../" + str(uuid4())[3:], id="path"),
]


# --- GetPhoto ---------------------------------------------------------------------------------


@pytest.mark.parametrize("photo_id", MALFORMED_IDS)
async def test_get_photo_rejects_a_malformed_id(harness: Harness, photo_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.get_photo("alice", photo_id)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert _fields(caught.value) == {"id"}


async def test_get_photo_unknown_and_foreign_ids_look_the_same(harness: Harness) -> None:
    theirs = await harness.upload_photo("bob")
    unknown = str(uuid4())
    with pytest.raises(NotFound) as foreign_error:
        await harness.service.get_photo("alice", str(theirs.id))
    with pytest.raises(NotFound) as unknown_error:
        await harness.service.get_photo("alice", unknown)
    assert foreign_error.value.reason == unknown_error.value.reason == "PHOTO_NOT_FOUND"
    assert foreign_error.value.message == unknown_error.value.message.replace(
        unknown, str(theirs.id)
    )


async def test_get_photo_returns_the_photo_with_a_url(harness: Harness) -> None:
    uploaded = await harness.upload_served(title="Hello")
    harness.clock.advance(timedelta(minutes=5))
    got = await harness.service.get_photo("alice", str(uploaded.photo.id).upper())
    assert got == uploaded  # the same photo and, from the cache, the same URL
    assert got.url.startswith(f"https://s3.test/{got.photo.object_key}?sig=")


# --- UpdatePhoto ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param(PhotoChanges(paths=frozenset()), {"update_mask"}, id="empty-mask"),
        pytest.param(PhotoChanges(paths=frozenset({"owner_id"})), {"update_mask"}, id="owner"),
        pytest.param(
            PhotoChanges(paths=frozenset({"file_name", "title"}), title="x"),
            {"update_mask"},
            id="file-name-with-title",
        ),
        pytest.param(PhotoChanges(paths=frozenset({"size_bytes"})), {"update_mask"}, id="size"),
        pytest.param(PhotoChanges(paths=frozenset({"url"})), {"update_mask"}, id="url"),
        pytest.param(
            PhotoChanges(paths=frozenset({"visibility"})),
            {"photo.visibility"},
            id="visibility-unspecified",
        ),
        pytest.param(
            PhotoChanges(paths=frozenset({"visibility"}), visibility=7),  # type: ignore[arg-type]
            {"photo.visibility"},
            id="visibility-unknown",
        ),
        pytest.param(
            PhotoChanges(paths=frozenset({"title"}), title="t" * 201),
            {"photo.title"},
            id="title-too-long",
        ),
        pytest.param(
            PhotoChanges(paths=frozenset({"description"}), description="\x00"),
            {"photo.description"},
            id="description-nul",
        ),
        pytest.param(
            PhotoChanges(paths=frozenset({"tags"}), tags=tuple(str(i) for i in range(21))),
            {"photo.tags"},
            id="too-many-tags",
        ),
    ],
)
async def test_update_rejects_bad_masks_and_values(
    harness: Harness, changes: PhotoChanges, fields: set[str]
) -> None:
    photo = await harness.upload_photo(title="Before")
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.update_photo("alice", str(photo.id), changes)
    assert _fields(caught.value) == fields
    assert harness.repo.photos[photo.id].title == "Before"
    assert harness.repo.photos[photo.id].update_time == photo.update_time


@pytest.mark.parametrize("photo_id", MALFORMED_IDS)
async def test_update_rejects_a_malformed_id(harness: Harness, photo_id: str) -> None:
    changes = PhotoChanges(paths=frozenset({"title"}), title="x")
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.update_photo("alice", photo_id, changes)
    assert _fields(caught.value) == {"photo.id"}


async def test_update_another_users_photo_is_not_found(harness: Harness) -> None:
    photo = await harness.upload_photo("bob", title="Bob's")
    changes = PhotoChanges(paths=frozenset({"title"}), title="Mine now")
    with pytest.raises(NotFound):
        await harness.service.update_photo("alice", str(photo.id), changes)
    with pytest.raises(NotFound):
        await harness.service.update_photo("alice", str(uuid4()), changes)
    assert harness.repo.photos[photo.id].title == "Bob's"


async def test_update_changes_only_the_masked_fields(harness: Harness) -> None:
    photo = await harness.upload_photo(title="Old", description="Keep", tags=["keep"])
    harness.clock.advance(timedelta(minutes=1))
    changes = PhotoChanges(
        paths=frozenset({"title", "tags"}),
        title="  New  ",
        description="ignored: not in the mask",
        tags=("Beach", "beach", " Sun "),
        visibility=Visibility.PUBLIC,
    )
    updated = await harness.service.update_photo("alice", str(photo.id), changes)
    assert (updated.photo.title, updated.photo.description, updated.photo.tags) == (
        "New",
        "Keep",
        ("beach", "sun"),
    )
    assert updated.photo.visibility is Visibility.PRIVATE
    assert updated.photo.create_time == photo.create_time
    assert updated.photo.update_time == harness.clock() > photo.update_time
    stored = harness.repo.photos[photo.id]
    assert (stored.title, stored.tags) == ("New", ("beach", "sun"))


async def test_update_can_clear_fields(harness: Harness) -> None:
    photo = await harness.upload_photo(title="T", description="D", tags=["a"])
    changes = PhotoChanges(paths=frozenset({"title", "description", "tags"}))
    updated = await harness.service.update_photo("alice", str(photo.id), changes)
    assert (updated.photo.title, updated.photo.description, updated.photo.tags) == ("", "", ())


async def test_update_without_visibility_change_keeps_the_cached_url(harness: Harness) -> None:
    photo = await harness.upload_served()
    signatures = harness.store.signatures
    changes = PhotoChanges(
        paths=frozenset({"title", "visibility"}), title="x", visibility=Visibility.PRIVATE
    )
    updated = await harness.service.update_photo("alice", str(photo.photo.id), changes)
    assert updated.url == photo.url
    assert harness.store.signatures == signatures
    assert harness.cache.delete_many_calls == 0


async def test_visibility_change_forgets_the_cached_url(harness: Harness) -> None:
    uploaded = await harness.upload_served()
    photo = uploaded.photo
    assert _is_cached(harness, photo)
    to_public = PhotoChanges(paths=frozenset({"visibility"}), visibility=Visibility.PUBLIC)
    public = await harness.service.update_photo("alice", str(photo.id), to_public)
    assert public.photo.visibility is Visibility.PUBLIC
    assert not _is_cached(harness, photo)
    to_private = PhotoChanges(paths=frozenset({"visibility"}), visibility=Visibility.PRIVATE)
    signatures = harness.store.signatures
    private = await harness.service.update_photo("alice", str(photo.id), to_private)
    # The cached URL is never handed out again: this one is signed anew (in the same signing
    # window, so with the same bytes, as any other process would sign it).
    assert harness.store.signatures == signatures + 1
    assert (private.url, private.url_expire_time) == (uploaded.url, uploaded.url_expire_time)


# --- DeletePhoto ------------------------------------------------------------------------------


@pytest.mark.parametrize("photo_id", MALFORMED_IDS)
async def test_delete_rejects_a_malformed_id(harness: Harness, photo_id: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.delete_photo("alice", photo_id)
    assert _fields(caught.value) == {"id"}


async def test_delete_removes_row_object_usage_and_cached_url(harness: Harness) -> None:
    photo = await harness.upload_photo()
    keep = await harness.upload_photo()
    assert _is_cached(harness, photo)
    await harness.service.delete_photo("alice", str(photo.id))
    assert photo.id not in harness.repo.photos
    assert photo.object_key not in harness.store.objects
    assert keep.object_key in harness.store.objects
    assert not _is_cached(harness, photo)
    assert _is_cached(harness, keep)
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (1, len(JPEG_BYTES))
    with pytest.raises(NotFound):
        await harness.service.get_photo("alice", str(photo.id))
    with pytest.raises(NotFound) as again:
        await harness.service.delete_photo("alice", str(photo.id))
    assert again.value.reason == "PHOTO_NOT_FOUND"


async def test_delete_another_users_photo_is_not_found(harness: Harness) -> None:
    photo = await harness.upload_photo("bob")
    with pytest.raises(NotFound):
        await harness.service.delete_photo("alice", str(photo.id))
    assert photo.id in harness.repo.photos
    assert photo.object_key in harness.store.objects


async def test_delete_with_the_store_down_deletes_the_photo_and_queues_its_object(
    harness: Harness,
) -> None:
    """The row goes first; the object, which the store could not delete now, stays queued
    until the sweep: never a photo without its object, never a forgotten object."""
    photo = await harness.upload_photo()
    harness.store.failing = {"delete"}
    await harness.service.delete_photo("alice", str(photo.id))
    assert photo.id not in harness.repo.photos
    assert photo.object_key in harness.store.objects
    assert list(harness.repo.object_deletions) == [photo.object_key]
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (0, 0)
    with pytest.raises(NotFound):
        await harness.service.get_photo("alice", str(photo.id))

    with pytest.raises(Unavailable):  # still down: it stays queued
        await harness.service.sweep_deleted_objects()
    assert list(harness.repo.object_deletions) == [photo.object_key]
    harness.store.failing = set()
    assert await harness.service.sweep_deleted_objects() == 1
    assert photo.object_key not in harness.store.objects
    # Kept for one more deletion once no upload URL can recreate the object, not before.
    assert await harness.service.sweep_deleted_objects() == 0
    harness.clock.advance(UPLOAD_WINDOW)
    assert await harness.service.sweep_deleted_objects() == 1
    assert not harness.repo.object_deletions
    assert await harness.service.sweep_deleted_objects() == 0


async def test_delete_with_the_store_up_deletes_now_and_once_more_after_the_upload_window(
    harness: Harness,
) -> None:
    """Issue 13, item 3: the photo's upload URL may still PUT the object again after the
    delete (If-None-Match passes once it is gone); the key stays queued until the URL is
    dead, and the sweep deletes it then."""
    photo = await harness.upload_photo()
    await harness.service.delete_photo("alice", str(photo.id))
    assert photo.object_key not in harness.store.objects
    harness.store.put(photo.object_key, JPEG_BYTES, "image/jpeg")  # the old URL, again
    assert await harness.service.sweep_deleted_objects() == 0  # the URL may still be used
    assert photo.object_key in harness.store.objects
    harness.clock.advance(UPLOAD_WINDOW)
    assert await harness.service.sweep_deleted_objects() == 1
    assert photo.object_key not in harness.store.objects
    assert not harness.repo.object_deletions


async def test_delete_retry_after_the_object_is_already_gone(harness: Harness) -> None:
    photo = await harness.upload_photo()
    del harness.store.objects[photo.object_key]
    await harness.service.delete_photo("alice", str(photo.id))
    assert photo.id not in harness.repo.photos


# --- BatchGetPhotoUrls ------------------------------------------------------------------------


async def test_batch_urls_follow_the_request_order(harness: Harness) -> None:
    photos = [await harness.upload_served() for _ in range(4)]
    wanted = [photos[2], photos[0], photos[3], photos[1]]
    urls = await harness.service.batch_get_photo_urls("alice", [str(p.photo.id) for p in wanted])
    assert [u.photo_id for u in urls] == [p.photo.id for p in wanted]
    assert [u.url for u in urls] == [p.url for p in wanted]
    assert [u.expire_time for u in urls] == [p.url_expire_time for p in wanted]


async def test_batch_urls_repeat_duplicates_and_sign_once() -> None:
    harness = make_harness()
    a = harness.add_photo()
    b = harness.add_photo()
    ids = [str(a.id), str(b.id), str(a.id), str(a.id).upper()]
    urls = await harness.service.batch_get_photo_urls("alice", ids)
    assert [u.photo_id for u in urls] == [a.id, b.id, a.id, a.id]
    assert urls[0].url == urls[2].url == urls[3].url != urls[1].url
    assert harness.store.download_batches == [[a.object_key, b.object_key]]
    assert harness.store.signatures == 2


async def test_batch_of_100_is_allowed_and_101_is_not(harness: Harness) -> None:
    photo = harness.add_photo()
    urls = await harness.service.batch_get_photo_urls("alice", [str(photo.id)] * 100)
    assert len(urls) == 100
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.batch_get_photo_urls("alice", [str(photo.id)] * 101)
    assert _fields(caught.value) == {"photo_ids"}


async def test_batch_of_nothing_is_nothing(harness: Harness) -> None:
    assert await harness.service.batch_get_photo_urls("alice", []) == []
    assert harness.cache.round_trips == 0
    assert harness.store.signatures == 0


async def test_batch_names_each_malformed_id(harness: Harness) -> None:
    photo = harness.add_photo()
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.batch_get_photo_urls(
            "alice", [str(photo.id), "nope", str(photo.id), ""]
        )
    assert _fields(caught.value) == {"photo_ids[1]", "photo_ids[3]"}


async def test_batch_is_all_or_nothing(harness: Harness) -> None:
    mine = harness.add_photo("alice")
    theirs = harness.add_photo("bob")
    unknown = uuid4()
    with pytest.raises(NotFound) as caught:
        await harness.service.batch_get_photo_urls(
            "alice", [str(mine.id), str(theirs.id), str(unknown)]
        )
    assert caught.value.reason == "PHOTO_NOT_FOUND"
    assert caught.value.metadata["photo_ids"].split(",") == [str(theirs.id), str(unknown)]
    assert harness.store.signatures == 0
    assert harness.cache.round_trips == 0


# --- GetAccount -------------------------------------------------------------------------------


async def test_account_is_created_on_first_use() -> None:
    harness = make_harness(quota_bytes=5000)
    account = await harness.service.get_account("carol")
    assert (account.user_id, account.photo_count, account.used_bytes) == ("carol", 0, 0)
    assert (account.pending_bytes, account.quota_bytes) == (0, 5000)
    assert account.create_time == harness.clock()
    harness.clock.advance(timedelta(days=1))
    later = await harness.service.get_account("carol")
    assert later.create_time == account.create_time


async def test_account_counts_photos_and_pending_uploads(harness: Harness) -> None:
    await harness.upload_photo()
    await harness.service.create_upload_url(
        "alice", file_name="p.jpg", content_type="image/jpeg", size_bytes=700
    )
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes, account.pending_bytes) == (
        1,
        len(JPEG_BYTES),
        700,
    )


async def test_metadata_outage_is_unavailable(harness: Harness) -> None:
    photo = await harness.upload_photo()
    harness.repo.fail = True
    with pytest.raises(Unavailable):
        await harness.service.get_photo("alice", str(photo.id))
