"""Share links: CreateShareLink, ListShareLinks, RevokeShareLink and GetSharedAlbum, the one
RPC served without a bearer token. The threat model is in docs/security.md ("Share links").

- The token is 256 random bits (secrets.token_urlsafe(32)); only its SHA-256 is stored and
  looked up, so the table leaks no working link. A SHA-256 (not a slow hash) is enough for a
  secret of 256 random bits: nothing to guess.
- Revoking deletes the row: the next call that names the token is NOT_FOUND. Expiry is checked
  in the lookup's own query, at the call's time.
- URLs handed out for a link are signed for SHARE_URL_TTL at most and never go through the URL
  cache (whose entries live up to an hour and are shared with the owner's own calls): an old
  URL of a revoked link, or of a photo that left the album, loads for SHARE_URL_TTL at most.
- A password is hashed with scrypt (core/passwords.py). Attempts are counted per link
  (AttemptLimiter, fails closed): over the limit, RESOURCE_EXHAUSTED with RetryInfo, and the
  password is not even checked.
- Page tokens name the link, so a page token of another link's listing is INVALID_ARGUMENT.
- Photos leave the view with the album (trashed, deleted, removed): the listing is the
  album's ListPhotos query, which never returns trashed photos.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from . import validation as val
from .album_models import NewShareLink, SharedView, ShareLink
from .albums import AlbumLimitExceeded, album_not_found
from .errors import NotFound, RateLimited
from .models import (
    Cursor,
    Photo,
    PhotoFilter,
    PhotoOrder,
    PhotoQuery,
    ServedPhoto,
    ServedVariant,
)
from .page_tokens import PageTokenCodec
from .passwords import hash_password, verify_password
from .ports import (
    AlbumRepository,
    AttemptLimiter,
    DownloadSigner,
    PhotoRepository,
    ShareLinkRepository,
)
from .urls import UrlPolicy

# How long a URL a share link hands out works: the bound on how long a revoked link's (or a
# removed photo's) URLs can still load.
SHARE_URL_TTL = timedelta(minutes=5)
# URLs are signed per window of SHARE_URL_TTL - SHARE_URL_MARGIN (so that the same photo gets
# byte-identical URLs within a window, which browsers cache), each with at least the margin left.
SHARE_URL_MARGIN = timedelta(minutes=1)
MAX_SHARE_LINK_LIFETIME = timedelta(days=365)
MAX_SHARE_LINKS_PER_USER = 1000
TOKEN_BYTES = 32  # 256 bits; secrets.token_urlsafe gives 43 characters
MAX_TOKEN_CHARS = 256
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128
_GET_SHARED_ALBUM = "GetSharedAlbum"


class PasswordAttemptsExceeded(RateLimited):
    default_reason = "TOO_MANY_PASSWORD_ATTEMPTS"


def _link_not_found() -> NotFound:
    # One answer for unknown, truncated, revoked and expired tokens, and deleted targets.
    return NotFound("share link not found", reason="SHARE_LINK_NOT_FOUND")


def token_sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ShareLinks:
    def __init__(
        self,
        *,
        repo: ShareLinkRepository,
        albums: AlbumRepository,
        photos: PhotoRepository,
        signer: DownloadSigner,
        attempts: AttemptLimiter,
        page_tokens: PageTokenCodec,
        clock: Callable[[], datetime],
        max_links: int = MAX_SHARE_LINKS_PER_USER,
    ) -> None:
        self._repo = repo
        self._albums = albums
        self._photos = photos
        self._signer = signer
        self._attempts = attempts
        self._tokens = page_tokens
        self._clock = clock
        self._max_links = max_links
        self._urls = UrlPolicy(download_ttl=SHARE_URL_TTL, cache_margin=SHARE_URL_MARGIN)

    async def create(
        self,
        user_id: str,
        *,
        album_id: str = "",
        photo_id: str = "",
        expire_time: datetime | None,
        allow_original: bool = False,
        password: str = "",
    ) -> NewShareLink:
        now = self._clock()
        v = val.Violations()
        aid = pid = None
        if bool(album_id) == bool(photo_id):
            v.add("album_id", "set exactly one of album_id and photo_id")
        elif album_id:
            aid = val.check_id(v, "album_id", album_id)
        else:
            pid = val.check_id(v, "photo_id", photo_id)
        if expire_time is None:
            v.add("expire_time", "is required")
        elif expire_time.tzinfo is None:
            v.add("expire_time", "must carry a time zone")
        elif expire_time <= now:
            v.add("expire_time", "must be in the future")
        elif expire_time > now + MAX_SHARE_LINK_LIFETIME:
            v.add("expire_time", "must be at most 365 days ahead")
        if password:
            val.check_text(v, "password", password, max_chars=MAX_PASSWORD_CHARS)
            if len(password) < MIN_PASSWORD_CHARS:
                v.add("password", f"must be at least {MIN_PASSWORD_CHARS} characters")
        v.raise_if_any()
        assert expire_time is not None
        if aid is not None and await self._albums.get_album(user_id, aid) is None:
            raise album_not_found(aid)
        if pid is not None and await self._photos.get_photo(user_id, pid) is None:
            raise NotFound(f"photo {pid} not found", reason="PHOTO_NOT_FOUND")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        link = ShareLink(
            id=uuid.uuid4(),
            owner_id=user_id,
            token_sha256=token_sha256(token),
            album_id=aid,
            photo_id=pid,
            expire_time=expire_time,
            allow_original=allow_original,
            create_time=now,
            # Off the event loop: scrypt takes tens of milliseconds of CPU.
            password_hash=await asyncio.to_thread(hash_password, password) if password else "",
        )
        if not await self._repo.create_share_link(link, max_links=self._max_links, now=now):
            if aid is not None and await self._albums.get_album(user_id, aid) is None:
                raise album_not_found(aid)  # deleted meanwhile
            if pid is not None and await self._photos.get_photo(user_id, pid) is None:
                raise NotFound(f"photo {pid} not found", reason="PHOTO_NOT_FOUND")
            raise AlbumLimitExceeded(
                subject=f"user:{user_id}",
                description=f"at most {self._max_links} live share links a user",
                reason="TOO_MANY_SHARE_LINKS",
                limit=self._max_links,
            )
        return NewShareLink(link=link, token=token)

    async def list_links(self, user_id: str) -> list[ShareLink]:
        return await self._repo.list_share_links(user_id, now=self._clock())

    async def revoke(self, user_id: str, link_id: str) -> None:
        v = val.Violations()
        lid = val.check_id(v, "id", link_id)
        v.raise_if_any()
        assert lid is not None
        if not await self._repo.revoke_share_link(user_id, lid):
            raise NotFound(f"share link {link_id} not found", reason="SHARE_LINK_NOT_FOUND")

    async def view(
        self,
        *,
        token: str,
        password: str = "",
        page_size: int = 0,
        page_token: str = "",
        fit: Callable[[Sequence[ServedPhoto]], int] | None = None,
    ) -> SharedView:
        """`fit`, from the transport, says how many of a page's leading photos fit in one
        reply; the page is cut there (at least one photo), its token continuing after the last
        one kept, as ListPhotos does."""
        v = val.Violations()
        if not token:
            v.add("token", "is required")
        elif len(token) > MAX_TOKEN_CHARS:
            v.add("token", f"must be at most {MAX_TOKEN_CHARS} characters")
        if len(password) > MAX_PASSWORD_CHARS:
            v.add("password", f"must be at most {MAX_PASSWORD_CHARS} characters")
        limit = val.check_page_size(v, "page_size", page_size)
        if len(page_token) > val.MAX_PAGE_TOKEN_CHARS:
            v.add("page_token", f"is not a token from a previous {_GET_SHARED_ALBUM} response")
        v.raise_if_any()

        link = await self._repo.find_share_link(token_sha256(token), now=self._clock())
        if link is None:
            raise _link_not_found()
        if link.password_hash:
            await self._check_password(link, password)
        after = (
            self._tokens.decode_listing(page_token, _GET_SHARED_ALBUM, str(link.id))
            if page_token
            else None
        )
        if link.photo_id is not None:
            photo = await self._photos.get_photo(link.owner_id, link.photo_id)
            if photo is None:  # trashed (a deleted photo takes its links with it)
                raise _link_not_found()
            photos = [] if after is not None else [photo]
            title, description, more = photo.title, photo.description, False
        else:
            assert link.album_id is not None
            album = await self._albums.get_album(link.owner_id, link.album_id)
            if album is None:
                raise _link_not_found()
            rows = await self._photos.list_photos(
                PhotoQuery(
                    owner_id=link.owner_id,
                    filter=PhotoFilter(album_id=link.album_id),
                    order=PhotoOrder.NEWEST_FIRST,
                    limit=limit + 1,
                    after=after,
                )
            )
            photos, more = rows[:limit], len(rows) > limit
            title, description = album.title, album.description
        signed = await self._sign(photos, original=link.allow_original)
        if fit is not None and signed:
            fitting = max(fit(signed), 1)
            if fitting < len(signed):
                signed, more = signed[:fitting], True
        next_token = ""
        if more:
            last = signed[-1].photo
            next_token = self._tokens.encode_listing(
                Cursor(last.create_time, last.id), _GET_SHARED_ALBUM, str(link.id)
            )
        return SharedView(
            title=title,
            description=description,
            photos=signed,
            allow_original=link.allow_original,
            next_page_token=next_token,
        )

    async def _check_password(self, link: ShareLink, password: str) -> None:
        if not password:
            # Not an attempt: the page asks for the password (the caller holds the token).
            raise NotFound("share link needs a password", reason="SHARE_PASSWORD_REQUIRED")
        key = str(link.id)
        wait = await self._attempts.attempt(key)
        if wait is not None:
            raise PasswordAttemptsExceeded(retry_after=wait)
        if not await asyncio.to_thread(verify_password, password, link.password_hash):
            raise NotFound("share link not found", reason="SHARE_PASSWORD_WRONG")
        await self._attempts.succeeded(key)

    async def _sign(self, photos: Sequence[Photo], *, original: bool) -> list[ServedPhoto]:
        """Variant URLs (and the original's when allowed), signed for this window, uncached."""
        window = self._urls.window(self._clock(), await self._signer.url_lifetime_cap())
        keys = [v.object_key for p in photos for v in p.variants]
        if original:
            keys += [p.object_key for p in photos]
        if not keys:
            return [ServedPhoto(p, "", None) for p in photos]
        signed = await self._signer.presign_downloads(
            keys, signed_at=window.signed_at, expire_at=window.expire_at
        )
        by_key = {k: s for k, s in zip(keys, signed, strict=True)}
        out = []
        for p in photos:
            variants = tuple(
                ServedVariant(v, by_key[v.object_key].url, by_key[v.object_key].expire_time)
                for v in p.variants
            )
            url = by_key.get(p.object_key) if original else None
            out.append(
                ServedPhoto(p, url.url if url else "", url.expire_time if url else None, variants)
            )
        return out
