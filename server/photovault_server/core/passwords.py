"""Share link passwords: scrypt (hashlib, in the standard library: no dependency to keep
current) with a random salt per password, compared in constant time.

Parameters: n=2**14, r=8, p=1 (16 MiB and some tens of milliseconds a guess), the ones
RFC 7914 and OWASP give for interactive logins; they are stored with each hash, so they can be
raised later without breaking the links already made."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_MEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$key`, salt and key in base64."""
    salt = os.urandom(_SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES, maxmem=_MAX_MEM
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        expected = base64.b64decode(key, validate=True)
        given = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAX_MEM,
        )
    except (ValueError, binascii.Error):
        return False
    return scheme == "scrypt" and hmac.compare_digest(given, expected)
