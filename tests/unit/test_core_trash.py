"""TrashPhoto, RestorePhoto, ListTrash and the trash's sweep on the in-memory fakes: what a
trashed photo is hidden from, what it keeps (its quota), per-user scoping, exact keyset pages,
and the permanent deletion after the retention, the way DeletePhoto deletes."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from photovault_server.core import InvalidArgument, NotFound, Photo, PhotoChanges
from photovault_server.core.service import UPLOAD_WINDOW
from photovault_server.core.urls import cache_key
from tests.support.fakes import JPEG_BYTES, Harness, make_harness

RETENTION = timedelta(days=30)


@pytest.fixture
def harness() -> Harness:
    return make_harness(trash_retention=RETENTION)


def _is_cached(harness: Harness, photo: Photo) -> bool:
    return cache_key(harness.store.scope, photo) in harness.cache.entries


async def _listed(harness: Harness, user: str = "alice") -> list[str]:
    page = await harness.service.list_photos(user)
    return [str(p.photo.id) for p in page.photos]


async def _trash(harness: Harness, user: str = "alice", page_size: int = 0) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await harness.service.list_trash(user, page_size=page_size, page_token=token)
        ids += [str(p.photo.id) for p in page.photos]
        token = page.next_page_token
        if not token:
            return ids


@pytest.mark.parametrize("rpc", ["trash_photo", "restore_photo"])
@pytest.mark.parametrize("photo_id", ["", "42", "not-a-uuid", uuid4().hex, f" {uuid4()}"])
async def test_malformed_ids_are_invalid_arguments_on_id(
    harness: Harness, rpc: str, photo_id: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await getattr(harness.service, rpc)("alice", photo_id)
    assert {v.field for v in caught.value.violations} == {"id"}


@pytest.mark.parametrize("rpc", ["trash_photo", "restore_photo"])
async def test_another_users_photo_is_not_found_and_unchanged(harness: Harness, rpc: str) -> None:
    theirs = await harness.upload_photo("bob")
    with pytest.raises(NotFound) as foreign:
        await getattr(harness.service, rpc)("alice", str(theirs.id))
    with pytest.raises(NotFound) as unknown:
        await getattr(harness.service, rpc)("alice", str(uuid4()))
    assert foreign.value.reason == unknown.value.reason == "PHOTO_NOT_FOUND"
    assert harness.repo.photos[theirs.id].trash_time is None
    assert await _listed(harness, "bob") == [str(theirs.id)]


async def test_a_trashed_photo_is_hidden_everywhere_but_keeps_its_quota(harness: Harness) -> None:
    photo = await harness.upload_photo()
    kept = await harness.upload_photo()
    assert _is_cached(harness, photo)
    await harness.service.trash_photo("alice", str(photo.id))

    assert await _listed(harness) == [str(kept.id)]
    with pytest.raises(NotFound):
        await harness.service.get_photo("alice", str(photo.id))
    with pytest.raises(NotFound):
        await harness.service.batch_get_photo_urls("alice", [str(kept.id), str(photo.id)])
    with pytest.raises(NotFound):
        await harness.service.update_photo(
            "alice", str(photo.id), PhotoChanges(paths=frozenset({"title"}), title="x")
        )
    assert not _is_cached(harness, photo)
    assert photo.object_key in harness.store.objects
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (2, 2 * len(JPEG_BYTES))
    assert await _trash(harness) == [str(photo.id)]


async def test_restore_brings_the_photo_back_with_a_url(harness: Harness) -> None:
    photo = await harness.upload_photo(title="Back")
    await harness.service.trash_photo("alice", str(photo.id))
    restored = await harness.service.restore_photo("alice", str(photo.id))
    assert restored.photo.id == photo.id
    assert restored.photo.title == "Back"
    assert restored.photo.trash_time is None
    assert restored.url.startswith(f"https://s3.test/{photo.object_key}?sig=")
    assert await _listed(harness) == [str(photo.id)]
    assert await _trash(harness) == []
    assert (await harness.service.get_photo("alice", str(photo.id))).photo.id == photo.id


async def test_trash_and_restore_are_idempotent(harness: Harness) -> None:
    photo = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(photo.id))
    first = harness.repo.photos[photo.id].trash_time
    harness.clock.advance(timedelta(days=3))
    await harness.service.trash_photo("alice", str(photo.id))
    assert harness.repo.photos[photo.id].trash_time == first  # the retention is not extended
    await harness.service.restore_photo("alice", str(photo.id))
    again = await harness.service.restore_photo("alice", str(photo.id))
    assert again.photo.id == photo.id
    assert again.photo.trash_time is None


async def test_list_trash_pages_exactly_most_recently_trashed_first(harness: Harness) -> None:
    photos = [harness.add_photo() for _ in range(7)]
    # Two trashed at the same instant: the id breaks the tie.
    for i, photo in enumerate(photos):
        await harness.service.trash_photo("alice", str(photo.id))
        if i % 2 == 0:
            harness.clock.advance(timedelta(seconds=1))
    harness.add_photo()  # not in the trash
    harness.add_photo("bob")
    expected = [
        str(p.id)
        for p in sorted(
            (harness.repo.photos[p.id] for p in photos),
            key=lambda p: (p.trash_time, p.id),
            reverse=True,
        )
    ]
    for size in (1, 2, 3, 7, 100):
        assert await _trash(harness, page_size=size) == expected
    assert await _trash(harness, "bob") == []


async def test_list_trash_validates_its_fields(harness: Harness) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await harness.service.list_trash("alice", page_size=-1, page_token="x" * 600)
    assert {v.field for v in caught.value.violations} == {"page_size", "page_token"}
    with pytest.raises(InvalidArgument) as garbage:
        await harness.service.list_trash("alice", page_token="not-a-token")
    assert {v.field for v in garbage.value.violations} == {"page_token"}


async def test_list_trash_refuses_tokens_of_listphotos_and_of_another_user(
    harness: Harness,
) -> None:
    for _ in range(3):
        photo = harness.add_photo()
        harness.add_photo()
        await harness.service.trash_photo("alice", str(photo.id))
    listing = await harness.service.list_photos("alice", page_size=1)
    trash = await harness.service.list_trash("alice", page_size=1)
    assert listing.next_page_token
    assert trash.next_page_token
    with pytest.raises(InvalidArgument):
        await harness.service.list_trash("alice", page_token=listing.next_page_token)
    with pytest.raises(InvalidArgument):
        await harness.service.list_photos("alice", page_token=trash.next_page_token)
    with pytest.raises(InvalidArgument):
        await harness.service.list_trash("bob", page_token=trash.next_page_token)


async def test_delete_photo_deletes_a_trashed_photo_at_once(harness: Harness) -> None:
    photo = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(photo.id))
    await harness.service.delete_photo("alice", str(photo.id))
    assert photo.id not in harness.repo.photos
    assert photo.object_key not in harness.store.objects
    assert await _trash(harness) == []
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (0, 0)


async def test_the_sweep_deletes_trashed_photos_after_the_retention_only(
    harness: Harness,
) -> None:
    old = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(old.id))
    harness.clock.advance(timedelta(days=1))
    young = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(young.id))
    live = await harness.upload_photo()
    restored = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(restored.id))
    await harness.service.restore_photo("alice", str(restored.id))

    harness.clock.advance(RETENTION - timedelta(days=1))
    assert (await harness.service.sweep()).deleted_trashed_photos == 0  # exactly the retention
    harness.clock.advance(timedelta(seconds=1))
    report = await harness.service.sweep()
    assert report.deleted_trashed_photos == 1
    assert set(harness.repo.photos) == {young.id, live.id, restored.id}
    assert old.object_key not in harness.store.objects
    account = await harness.service.get_account("alice")
    assert (account.photo_count, account.used_bytes) == (3, 3 * len(JPEG_BYTES))

    harness.clock.advance(timedelta(days=1))
    assert (await harness.service.sweep()).deleted_trashed_photos == 1
    assert set(harness.repo.photos) == {live.id, restored.id}
    assert await _trash(harness) == []


async def test_the_trash_sweep_queues_objects_the_store_could_not_delete(
    harness: Harness,
) -> None:
    """The same path as DeletePhoto: the row goes, its object stays queued until the store
    deletes it, and once more after the upload window."""
    photo = await harness.upload_photo()
    await harness.service.trash_photo("alice", str(photo.id))
    harness.clock.advance(RETENTION + timedelta(seconds=1))
    harness.store.failing = {"delete"}
    assert await harness.service.sweep_trash() == 1
    assert photo.id not in harness.repo.photos
    assert list(harness.repo.object_deletions) == [photo.object_key]
    harness.store.failing = set()
    assert await harness.service.sweep_deleted_objects() == 1
    assert photo.object_key not in harness.store.objects
    # Trashed long after its upload window: that deletion was its last.
    assert not harness.repo.object_deletions
    assert UPLOAD_WINDOW < RETENTION


async def test_the_trash_sweep_works_in_batches(harness: Harness) -> None:
    photos = [await harness.upload_photo() for _ in range(5)]
    for photo in photos:
        await harness.service.trash_photo("alice", str(photo.id))
    harness.clock.advance(RETENTION + timedelta(seconds=1))
    assert await harness.service.sweep_trash(limit=2) == 2
    report = await harness.service.sweep(batch=2)
    assert report.deleted_trashed_photos == 3
    assert report.finished
    assert not harness.repo.photos
