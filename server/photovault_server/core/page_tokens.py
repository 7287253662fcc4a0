"""Opaque, tamper-evident page tokens bound to the query that produced them.

A token carries the keyset cursor and a digest of the owner, filters and order; it is
authenticated with HMAC-SHA256 so that an altered token, or one reused with other filters, is
rejected instead of silently returning a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

from .errors import InvalidArgument
from .models import Cursor, PhotoFilter, PhotoOrder

_VERSION = 1
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // _ONE_MICRO


def _listing_digest(*names: str) -> str:
    """The digest of a listing that takes no filters: its name and scope (owner, link)."""
    canonical = json.dumps(list(names), separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest()[:12])


def _trash_digest(owner_id: str) -> str:
    return _listing_digest("trash", owner_id)


class PageTokenCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        self._secret = secret

    @staticmethod
    def _query_digest(owner_id: str, flt: PhotoFilter, order: PhotoOrder) -> str:
        # The taken-time filters only when set, so that tokens issued before they existed
        # stay valid.
        taken = (
            [
                flt.taken_after and _micros(flt.taken_after),
                flt.taken_before and _micros(flt.taken_before),
            ]
            if flt.taken_after or flt.taken_before
            else []
        )
        # The album likewise only when set: tokens without one stay valid.
        album = [str(flt.album_id)] if flt.album_id is not None else []
        canonical = json.dumps(
            [
                owner_id,
                sorted(flt.tags),
                sorted(flt.words),
                flt.created_after and _micros(flt.created_after),
                flt.created_before and _micros(flt.created_before),
                int(flt.visibility),
                flt.content_type,
                int(order),
                *taken,
                *album,
            ],
            separators=(",", ":"),
        )
        return _b64(hashlib.sha256(canonical.encode()).digest()[:12])

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, cursor: Cursor, owner_id: str, flt: PhotoFilter, order: PhotoOrder) -> str:
        body = [
            _VERSION,
            _micros(cursor.create_time),
            cursor.photo_id.hex,
            self._query_digest(owner_id, flt, order),
        ]
        payload = json.dumps(body, separators=(",", ":")).encode()
        return _b64(payload + self._mac(payload))

    def encode_trash(self, cursor: Cursor, owner_id: str) -> str:
        """A ListTrash token: its digest names the listing, so that neither RPC takes the
        other's tokens."""
        payload = json.dumps(
            [_VERSION, _micros(cursor.create_time), cursor.photo_id.hex, _trash_digest(owner_id)],
            separators=(",", ":"),
        ).encode()
        return _b64(payload + self._mac(payload))

    def decode_trash(self, token: str, owner_id: str) -> Cursor:
        return self._decode(token, _trash_digest(owner_id), "ListTrash")

    def encode_listing(self, cursor: Cursor, rpc: str, scope: str) -> str:
        """A token of a listing without filters (ListAlbums per owner, GetSharedAlbum per
        link): its digest names the RPC and the scope, so that a token works only for the
        listing that issued it."""
        payload = json.dumps(
            [
                _VERSION,
                _micros(cursor.create_time),
                cursor.photo_id.hex,
                _listing_digest(rpc, scope),
            ],
            separators=(",", ":"),
        ).encode()
        return _b64(payload + self._mac(payload))

    def decode_listing(self, token: str, rpc: str, scope: str) -> Cursor:
        return self._decode(token, _listing_digest(rpc, scope), rpc)

    def decode(self, token: str, owner_id: str, flt: PhotoFilter, order: PhotoOrder) -> Cursor:
        return self._decode(token, self._query_digest(owner_id, flt, order), "ListPhotos")

    def _decode(self, token: str, expected_digest: str, rpc: str) -> Cursor:
        invalid = InvalidArgument.field(
            "page_token",
            f"is not a token from a previous {rpc} response",
            reason="INVALID_PAGE_TOKEN",
        )
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            raise invalid from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        version, micros, photo_id, digest = json.loads(payload)
        if version != _VERSION:
            raise invalid
        if rpc != "ListPhotos" and digest != expected_digest:
            raise invalid
        if digest != expected_digest:
            raise InvalidArgument.field(
                "page_token",
                "was issued for other filters or order; send the same filters as the first page",
                reason="PAGE_TOKEN_FILTER_MISMATCH",
            )
        created = _EPOCH + micros * _ONE_MICRO
        return Cursor(create_time=created, photo_id=UUID(hex=photo_id))
