"""CloudFront signed URLs (canned policy) for private photos served through a CDN.

`{base}/{object_key}?Expires=E&Signature=S&Key-Pair-Id=K`, the signature over the canned
policy `{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":E}}}]}`:

- RSA 2048 keys sign with PKCS#1 v1.5 and SHA-1, byte for byte as botocore's CloudFrontSigner
  does (tests/test_cloudfront_signer.py compares them);
- ECDSA P-256 keys sign with SHA-256 (`Hash-Algorithm=SHA256`), deterministically (RFC 6979),
  so that every process signing the same URL and expiry produces the same bytes, as SigV4 does.

The key type is read from the PEM. An RSA signature costs about a millisecond, hundreds of
times an HMAC: the signing windows and the URL cache keep it off the hot path (one signature
per object per window for the whole fleet); `make bench` measures it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from photovault_server.core.models import SignedUrl

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

Sign = Callable[[bytes], bytes]
_KEY_SAFE = "/~"  # as S3 object keys appear in S3 URLs: '/' kept, the rest percent-encoded


class CdnKeyError(ValueError):
    """The configured private key is not one CloudFront accepts (RSA 2048, ECDSA P-256)."""


def _url_b64(data: bytes) -> str:
    """CloudFront's URL-safe base64: '+' → '-', '=' → '_', '/' → '~'."""
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


def canned_policy(url: str, expires: int) -> bytes:
    condition = f'{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}'
    return f'{{"Statement":[{{"Resource":"{url}","Condition":{condition}}}]}}'.encode()


class CloudFrontSigner:
    """Signs CloudFront URLs with one private key; the key is parsed on first use (a Lambda
    cold start that lists no private photo never imports `cryptography`'s key code)."""

    def __init__(self, key_pair_id: str, private_key_pem: bytes) -> None:
        self.key_pair_id = key_pair_id
        self._pem = private_key_pem
        self._sign: Sign | None = None
        self._hash_param = ""

    def _signer(self) -> Sign:
        if self._sign is None:
            self._sign, self._hash_param = _load(self._pem)
        return self._sign

    def check(self) -> None:
        """Parses the key now (start-up), so that a bad key is found before any request."""
        self._signer()

    def signed_url(self, url: str, expires: int) -> str:
        signature = _url_b64(self._signer()(canned_policy(url, expires)))
        return (
            f"{url}?Expires={expires}&Signature={signature}&Key-Pair-Id={self.key_pair_id}"
            f"{self._hash_param}"
        )


def _load(pem: bytes) -> tuple[Sign, str]:
    """The signing function of the PEM's key, and the URL parameter naming its hash."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CdnKeyError("the CloudFront private key is not an unencrypted PEM key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size != 2048:
            raise CdnKeyError(f"CloudFront takes RSA 2048 keys, not {key.key_size} bits")
        rsa_key: RSAPrivateKey = key

        def sign_rsa(message: bytes) -> bytes:
            # SHA-1 is CloudFront's default for canned policies, and botocore's.
            return rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

        return sign_rsa, ""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CdnKeyError(f"CloudFront takes ECDSA P-256 keys, not {key.curve.name}")
        ec_key: EllipticCurvePrivateKey = key
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)

        def sign_ecdsa(message: bytes) -> bytes:
            return ec_key.sign(message, algorithm)

        return sign_ecdsa, "&Hash-Algorithm=SHA256"
    raise CdnKeyError("CloudFront takes RSA 2048 or ECDSA P-256 keys")


class CloudFrontUrls:
    """Download URLs of private objects through the CDN: a `DownloadSigner` for the core's URL
    layer (core/urls.py), in place of the bucket's presigned URLs."""

    def __init__(self, base_url: str, signer: CloudFrontSigner) -> None:
        self._base = base_url.rstrip("/")
        self._signer = signer

    async def url_scope(self) -> str:
        # What the URLs point at; not the key pair: after a rotation the URLs signed by the
        # previous key stay valid while its public key stays in the key group (docs/deploy.md).
        return f"cloudfront|{self._base}"

    async def url_lifetime_cap(self) -> timedelta | None:
        return None  # a CloudFront key does not expire as temporary credentials do

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        expires = int(expire_at.timestamp())
        expire_time = datetime.fromtimestamp(expires, expire_at.tzinfo)
        return [
            SignedUrl(
                url=self._signer.signed_url(f"{self._base}/{quote(key, safe=_KEY_SAFE)}", expires),
                expire_time=expire_time,
            )
            for key in keys
        ]
