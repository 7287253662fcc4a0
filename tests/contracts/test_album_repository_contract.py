"""AlbumRepository's and ShareLinkRepository's contracts (core/ports.py), run against Postgres
and the in-memory fakes: albums hold only their owner's photos, all-or-nothing edits, limits,
count and cover computed from memberships and the trash, cascades from deleted photos and
albums, and share links scoped, expiring and revocable. Owners are fresh per test."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from photovault_server.core.album_models import Album, AlbumChanges, ShareLink
from photovault_server.core.models import (
    Cursor,
    Photo,
    PhotoFilter,
    PhotoOrder,
    PhotoQuery,
    Upload,
    Visibility,
)
from photovault_server.core.ports import AlbumRepository, PhotoRepository, ShareLinkRepository

NOW = datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
WINDOW = timedelta(hours=1)
Repos = tuple[PhotoRepository, AlbumRepository, ShareLinkRepository]


def new_owner() -> str:
    return f"contract-al-{uuid.uuid4().hex[:12]}"


async def a_photo(repo: PhotoRepository, owner: str, minute: int = 0) -> Photo:
    upload_id = uuid.uuid4()
    created = NOW + timedelta(minutes=minute)
    upload = Upload(
        id=upload_id,
        owner_id=owner,
        object_key=f"users/{owner}/photos/{upload_id}.jpg",
        file_name="beach.jpg",
        content_type="image/jpeg",
        size_bytes=10,
        checksum_sha256="",
        create_time=NOW,
        reserved_until=NOW + timedelta(hours=1),
    )
    reservation = await repo.reserve_upload(
        upload, default_quota_bytes=10**9, max_pending_uploads=1000, now=NOW
    )
    assert reservation.accepted
    photo = Photo(
        id=upload_id,
        owner_id=owner,
        object_key=upload.object_key,
        file_name="beach.jpg",
        content_type="image/jpeg",
        size_bytes=10,
        checksum_sha256="",
        title="t",
        description="",
        tags=(),
        visibility=Visibility.PRIVATE,
        create_time=created,
        update_time=created,
    )
    stored = await repo.confirm_upload(photo, now=NOW)
    assert stored is not None
    return stored


async def an_album(albums: AlbumRepository, owner: str, minute: int = 0) -> Album:
    when = NOW + timedelta(minutes=minute)
    album = Album(uuid.uuid4(), owner, f"album {minute}", "", when, when)
    assert await albums.create_album(album, max_albums=1000)
    return album


def a_link(
    owner: str,
    *,
    album_id: uuid.UUID | None = None,
    photo_id: uuid.UUID | None = None,
    expire: datetime = NOW + timedelta(days=1),
) -> ShareLink:
    return ShareLink(
        id=uuid.uuid4(),
        owner_id=owner,
        token_sha256=hashlib.sha256(uuid.uuid4().bytes).digest(),
        album_id=album_id,
        photo_id=photo_id,
        expire_time=expire,
        allow_original=False,
        create_time=NOW,
    )


async def test_albums_are_read_back_by_their_owner_only_and_listed_newest_first(
    album_repositories: Repos,
) -> None:
    _, albums, _ = album_repositories
    owner, other = new_owner(), new_owner()
    made = [await an_album(albums, owner, minute=i) for i in range(3)]
    got = await albums.get_album(owner, made[0].id)
    assert got == made[0]
    assert await albums.get_album(other, made[0].id) is None
    listed = await albums.list_albums(owner, after=None, limit=10)
    assert [a.id for a in listed] == [a.id for a in reversed(made)]
    after = Cursor(made[2].create_time, made[2].id)
    assert [a.id for a in await albums.list_albums(owner, after=after, limit=1)] == [made[1].id]
    assert await albums.list_albums(other, after=None, limit=10) == []


async def test_the_album_limit_holds(album_repositories: Repos) -> None:
    _, albums, _ = album_repositories
    owner = new_owner()
    for i in range(2):
        await an_album(albums, owner, minute=i)
    extra = Album(uuid.uuid4(), owner, "x", "", NOW, NOW)
    assert not await albums.create_album(extra, max_albums=2)
    assert await albums.get_album(owner, extra.id) is None


async def test_edits_are_all_or_nothing_and_only_with_the_owners_photos(
    album_repositories: Repos,
) -> None:
    photos, albums, _ = album_repositories
    owner, other = new_owner(), new_owner()
    album = await an_album(albums, owner)
    mine = [await a_photo(photos, owner, minute=i) for i in range(3)]
    theirs = await a_photo(photos, other)
    edit = await albums.add_album_photos(
        owner, album.id, [mine[0].id, theirs.id], max_photos=10, now=NOW
    )
    assert edit.missing_photo_ids == (theirs.id,)
    assert (await albums.get_album(owner, album.id)).photo_count == 0  # type: ignore[union-attr]
    edit = await albums.add_album_photos(other, album.id, [theirs.id], max_photos=10, now=NOW)
    assert edit.album is None
    edit = await albums.add_album_photos(
        owner, album.id, [p.id for p in mine], max_photos=10, now=NOW
    )
    assert edit.album is not None
    assert (edit.album.photo_count, edit.album.cover_photo_id) == (3, mine[2].id)
    over = await albums.add_album_photos(
        owner, album.id, [(await a_photo(photos, owner)).id], max_photos=3, now=NOW
    )
    assert over.over_limit
    # Already there: no new membership, no limit, no change at all.
    later = NOW + timedelta(seconds=1)
    again = await albums.add_album_photos(owner, album.id, [mine[0].id], max_photos=3, now=later)
    assert again == edit
    edit = await albums.remove_album_photos(owner, album.id, [mine[2].id, theirs.id], now=NOW)
    assert edit.missing_photo_ids == (theirs.id,)
    edit = await albums.remove_album_photos(owner, album.id, [mine[2].id], now=NOW)
    assert edit.album is not None
    assert (edit.album.photo_count, edit.album.cover_photo_id) == (2, mine[1].id)
    assert await albums.album_photo_ids(owner, album.id, [p.id for p in mine]) == {
        mine[0].id,
        mine[1].id,
    }
    query = PhotoQuery(owner, PhotoFilter(album_id=album.id), PhotoOrder.NEWEST_FIRST, 10)
    assert [p.id for p in await photos.list_photos(query)] == [mine[1].id, mine[0].id]


async def test_cover_and_count_follow_the_trash_and_deletions(album_repositories: Repos) -> None:
    photos, albums, _ = album_repositories
    owner = new_owner()
    album = await an_album(albums, owner)
    old, cover, new = [await a_photo(photos, owner, minute=i) for i in range(3)]
    await albums.add_album_photos(
        owner, album.id, [old.id, cover.id, new.id], max_photos=10, now=NOW
    )
    changed = await albums.update_album(
        owner,
        album.id,
        AlbumChanges(
            paths=frozenset({"cover_photo_id", "title"}), title="T", cover_photo_id=cover.id
        ),
        NOW,
    )
    assert changed is not None
    assert (changed.title, changed.cover_photo_id) == ("T", cover.id)
    await photos.trash_photo(owner, cover.id, NOW)
    now = await albums.get_album(owner, album.id)
    assert now is not None
    assert (now.photo_count, now.cover_photo_id) == (2, new.id)
    await photos.restore_photo(owner, cover.id)
    assert (await albums.get_album(owner, album.id)).cover_photo_id == cover.id  # type: ignore[union-attr]
    await photos.delete_photo(owner, cover.id, upload_window=WINDOW)
    now = await albums.get_album(owner, album.id)
    assert now is not None
    assert (now.photo_count, now.cover_photo_id) == (2, new.id)
    assert (
        await albums.update_album(
            new_owner(), album.id, AlbumChanges(frozenset({"title"}), "x"), NOW
        )
        is None
    )


async def test_deleting_an_album_keeps_its_photos_and_drops_its_links(
    album_repositories: Repos,
) -> None:
    photos, albums, links = album_repositories
    owner = new_owner()
    album = await an_album(albums, owner)
    photo = await a_photo(photos, owner)
    await albums.add_album_photos(owner, album.id, [photo.id], max_photos=10, now=NOW)
    link = a_link(owner, album_id=album.id)
    assert await links.create_share_link(link, max_links=10, now=NOW)
    assert not await albums.delete_album(new_owner(), album.id)
    assert await albums.delete_album(owner, album.id)
    assert await albums.get_album(owner, album.id) is None
    assert await photos.get_photo(owner, photo.id) is not None
    assert await links.find_share_link(link.token_sha256, now=NOW) is None


async def test_share_links_are_scoped_expire_and_revoke(album_repositories: Repos) -> None:
    photos, albums, links = album_repositories
    owner, other = new_owner(), new_owner()
    album = await an_album(albums, owner)
    photo = await a_photo(photos, owner)
    # Another owner's album or photo is refused.
    assert not await links.create_share_link(
        a_link(other, album_id=album.id), max_links=10, now=NOW
    )
    assert not await links.create_share_link(
        a_link(other, photo_id=photo.id), max_links=10, now=NOW
    )
    first = a_link(owner, album_id=album.id)
    second = a_link(owner, photo_id=photo.id, expire=NOW + timedelta(minutes=1))
    assert await links.create_share_link(first, max_links=2, now=NOW)
    assert await links.create_share_link(second, max_links=2, now=NOW)
    assert not await links.create_share_link(a_link(owner, album_id=album.id), max_links=2, now=NOW)
    assert await links.find_share_link(first.token_sha256, now=NOW) == first
    later = NOW + timedelta(minutes=1)
    assert await links.find_share_link(second.token_sha256, now=later) is None
    assert [x.id for x in await links.list_share_links(owner, now=later)] == [first.id]
    # The expired one no longer counts against the limit.
    assert await links.create_share_link(a_link(owner, album_id=album.id), max_links=2, now=later)
    assert not await links.revoke_share_link(other, first.id)
    assert await links.revoke_share_link(owner, first.id)
    assert await links.find_share_link(first.token_sha256, now=NOW) is None
    # A deleted photo takes its link with it.
    third = a_link(owner, photo_id=photo.id)
    assert await links.create_share_link(third, max_links=10, now=NOW)
    await photos.delete_photo(owner, photo.id, upload_window=WINDOW)
    assert await links.find_share_link(third.token_sha256, now=NOW) is None


async def test_adding_while_trashing_never_counts_a_trashed_photo(
    album_repositories: Repos,
) -> None:
    """A photo trashed while it is being added: either the add fails (NOT_FOUND) or the
    membership is marked trashed; the count never includes a trashed photo."""
    photos, albums, _ = album_repositories
    owner = new_owner()
    album = await an_album(albums, owner)
    for minute in range(10):
        photo = await a_photo(photos, owner, minute=minute)
        await asyncio.gather(
            albums.add_album_photos(owner, album.id, [photo.id], max_photos=100, now=NOW),
            photos.trash_photo(owner, photo.id, NOW),
        )
        got = await albums.get_album(owner, album.id)
        assert got is not None
        assert got.photo_count == 0, minute
        await photos.restore_photo(owner, photo.id)
        members = await albums.album_photo_ids(owner, album.id, [photo.id])
        restored = await albums.get_album(owner, album.id)
        assert restored is not None
        assert restored.photo_count == len(members)
        await albums.remove_album_photos(owner, album.id, list(members), now=NOW)
