"""A SigV4 query-string signer for S3 presigned URLs, byte-identical to botocore's.

botocore builds a request object, runs its event hooks and re-parses the URL for every presign
(~300 µs). A page of URLs shares everything but the object key: credentials, time, expiry and
signed headers, so the query string, its canonical form and the day's signing key are computed
once per batch, and each URL costs one quote, one SHA-256 and one HMAC.

Where the URLs point (regional host, addressing style, custom endpoint) is not re-derived here:
`S3Endpoint.from_presigned_url` reads it off one URL that botocore itself presigned, so the
endpoint rules stay botocore's. tests/test_sigv4.py proves byte equality with botocore.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

from msgspec import Struct

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SAFE = "-._~"  # botocore's SAFE_CHARS for query strings
_KEY_SAFE = "/~"  # botocore renders greedy {Key+} labels with percent_encode(key, safe="/~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials(Struct, frozen=True):
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        # Never the secret nor the token: credentials end up in logs and tracebacks by way of
        # their holders.
        return f"Credentials(access_key={self.access_key!r})"


class S3Endpoint(Struct, frozen=True):
    """Where one bucket's object URLs point."""

    origin: str  # scheme://netloc, as botocore writes it
    path_prefix: str  # "/" (virtual-hosted) or "/<bucket>/" (path style)
    host: str  # the signed Host header: lower-case, default port dropped
    region: str

    @classmethod
    def from_presigned_url(cls, url: str, probe_key: str, region: str) -> S3Endpoint:
        """Derives the endpoint from a URL botocore presigned for `probe_key` (a plain key
        whose encoding is itself), so that regional endpoints and addressing rules are its."""
        parts = urlsplit(url)
        if not parts.path.endswith("/" + probe_key):
            raise ValueError("probe URL does not end with the probe key")
        host = parts.hostname or ""
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return cls(
            origin=f"{parts.scheme}://{parts.netloc}",
            path_prefix=parts.path[: -len(probe_key)],
            host=host,
            region=region,
        )


@lru_cache(maxsize=64)
def _signing_key(secret_key: str, datestamp: str, region: str) -> bytes:
    """The per-day key: four HMACs that every URL signed that day shares."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), datestamp.encode(), "sha256")
    for part in (region, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def _encode_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe=_SAFE)}={quote(v, safe=_SAFE)}" for k, v in pairs)


def _canonical_query(query: str) -> str:
    # botocore sorts the already-encoded (key, value) pairs of the final query string.
    return "&".join(f"{k}={v}" for k, _, v in sorted(p.partition("=") for p in query.split("&")))


def upload_part_params(part_number: int, upload_id: str) -> dict[str, str]:
    """The query parameters of an UploadPart URL, in the order botocore serialises them: both
    are signed, so a URL cannot be moved to another part or upload."""
    return {"partNumber": str(part_number), "uploadId": upload_id}


class PresignedUrlBatch:
    """Signs URLs that differ only by object key: one method, time, expiry and header set."""

    def __init__(
        self,
        endpoint: S3Endpoint,
        credentials: Credentials,
        *,
        method: str,
        signed_at: datetime,
        expires_in: int,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 1 <= expires_in <= 7 * 24 * 3600:
            raise ValueError("SigV4 presigned URLs last between 1 second and 7 days")
        amz_date = signed_at.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{endpoint.region}/s3/aws4_request"
        signed = {"host": endpoint.host}
        for name, value in (headers or {}).items():
            signed[name.lower()] = " ".join(str(value).split())
        names = sorted(signed)
        signed_headers = ";".join(names)
        auth = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", signed_headers),
        ]
        if credentials.token is not None:
            auth.append(("X-Amz-Security-Token", credentials.token))
        operation = _encode_pairs(list((params or {}).items()))
        query = (operation + "&" if operation else "") + _encode_pairs(auth)
        canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)

        self._endpoint = endpoint
        self._method = method.upper()
        self._query = query
        self._request_tail = (
            f"\n{_canonical_query(query)}\n{canonical_headers}\n{signed_headers}\n"
            f"{UNSIGNED_PAYLOAD}"
        )
        self._sts_head = f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        self._key = _signing_key(credentials.secret_key, amz_date[:8], endpoint.region)

    def url(self, object_key: str) -> str:
        path = self._endpoint.path_prefix + quote(object_key, safe=_KEY_SAFE)
        canonical_request = self._method + "\n" + path + self._request_tail
        digest = hashlib.sha256(canonical_request.encode()).hexdigest()
        signature = hmac.new(
            self._key, (self._sts_head + digest).encode(), hashlib.sha256
        ).hexdigest()
        return f"{self._endpoint.origin}{path}?{self._query}&X-Amz-Signature={signature}"
