"""CloudFront signed URLs for private photos: RSA URLs byte-identical to botocore's
CloudFrontSigner (property tests), ECDSA P-256 URLs deterministic and verified with the public
key, keys CloudFront would refuse refused at start-up, and the service handing out stable CDN
URLs across calls and processes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from photovault_server.adapters.cloudfront import (
    CdnKeyError,
    CloudFrontSigner,
    CloudFrontUrls,
    canned_policy,
)
from photovault_server.app import App, open_app
from photovault_server.core.models import ImageMetadata, PhotoVariant, Visibility
from photovault_server.settings import SettingsError

from .support.listing import seed
from .support.settings import make_settings
from .support.users import new_user

BASE = "https://d111111abcdef8.cloudfront.net"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signature_of(url: str) -> bytes:
    value = parse_qs(urlsplit(url).query)["Signature"][0]
    return base64.b64decode(value.translate(str.maketrans("-_~", "+=/")))


def botocore_url(url: str, expires: int) -> str:
    signer = BotocoreCloudFrontSigner(
        "K2JCJMDEHXQW5F",
        lambda m: RSA_KEY.sign(m, padding.PKCS1v15(), hashes.SHA1()),  # noqa: S303 (CloudFront)
    )
    return str(
        signer.generate_presigned_url(url, date_less_than=datetime.fromtimestamp(expires, UTC))
    )


object_keys = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60
).map(lambda k: f"users/u/photos/{k}.jpg")


@settings(max_examples=60, deadline=None)
@given(key=object_keys, expires=st.integers(min_value=1_700_000_000, max_value=2_000_000_000))
def test_rsa_urls_are_byte_identical_to_botocores(key: str, expires: int) -> None:
    url = f"{BASE}/{quote(key, safe='/~')}"
    ours = CloudFrontSigner("K2JCJMDEHXQW5F", pem(RSA_KEY)).signed_url(url, expires)
    assert ours == botocore_url(url, expires)


def test_rsa_signature_verifies_with_the_public_key() -> None:
    url, expires = f"{BASE}/users/u/photos/a.jpg", 1_900_000_000
    signed = CloudFrontSigner("K1", pem(RSA_KEY)).signed_url(url, expires)
    RSA_KEY.public_key().verify(
        signature_of(signed),
        canned_policy(url, expires),
        padding.PKCS1v15(),
        hashes.SHA1(),  # noqa: S303 (CloudFront canned policies)
    )
    assert "Hash-Algorithm" not in signed


def test_ecdsa_urls_are_deterministic_sha256_and_verify() -> None:
    url, expires = f"{BASE}/users/u/photos/a.jpg", 1_900_000_000
    first = CloudFrontSigner("K2", pem(EC_KEY)).signed_url(url, expires)
    again = CloudFrontSigner("K2", pem(EC_KEY)).signed_url(url, expires)
    assert first == again  # RFC 6979: every process signs the same bytes
    assert first.endswith("&Key-Pair-Id=K2&Hash-Algorithm=SHA256")
    EC_KEY.public_key().verify(
        signature_of(first), canned_policy(url, expires), ec.ECDSA(hashes.SHA256())
    )
    other = CloudFrontSigner("K2", pem(EC_KEY)).signed_url(url, expires + 1)
    assert signature_of(other) != signature_of(first)


def test_the_canned_policy_is_cloudfronts_exact_json() -> None:
    policy = canned_policy(f"{BASE}/a.jpg", 1767290400)
    assert policy == (
        b'{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/a.jpg",'
        b'"Condition":{"DateLessThan":{"AWS:EpochTime":1767290400}}}]}'
    )
    assert json.loads(policy)["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"] == (
        1767290400
    )


@pytest.mark.parametrize(
    "key_pem",
    [
        pytest.param(pem(rsa.generate_private_key(65537, 1024)), id="rsa-1024"),  # noqa: S505
        pytest.param(pem(ec.generate_private_key(ec.SECP384R1())), id="ec-p384"),
        pytest.param(
            b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", id="junk"
        ),
    ],
)
def test_keys_cloudfront_would_refuse_are_refused(key_pem: bytes) -> None:
    with pytest.raises(CdnKeyError):
        CloudFrontSigner("K", key_pem).check()


async def test_urls_expire_when_asked_and_point_at_the_cdn() -> None:
    urls = CloudFrontUrls(BASE + "/", CloudFrontSigner("K3", pem(EC_KEY)))
    now = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC)
    (signed,) = await urls.presign_downloads(
        ["users/u/photos/ä b.jpg"], signed_at=now, expire_at=now + timedelta(hours=2)
    )
    assert signed.url.startswith(f"{BASE}/users/u/photos/%C3%A4%20b.jpg?Expires=")
    assert signed.expire_time == datetime(2026, 12, 1, 14, 0, 0, tzinfo=UTC)
    assert await urls.url_scope() == f"cloudfront|{BASE}"


def cdn_settings(database_url: str, redis_url: str, **overrides: object) -> dict[str, object]:
    return {
        "PHOTOVAULT_CDN_BASE_URL": BASE,
        "PHOTOVAULT_CDN_KEY_PAIR_ID": "K2JCJMDEHXQW5F",
        "PHOTOVAULT_CDN_PRIVATE_KEY": pem(RSA_KEY).decode(),
        **overrides,
    }


@pytest.fixture
async def cdn_app(database_url: str, redis_url: str, aws_env: None) -> AsyncIterator[App]:
    settings = make_settings(database_url, redis_url, **cdn_settings(database_url, redis_url))
    async with open_app(settings) as app:
        yield app


async def test_private_photos_get_stable_cloudfront_urls_across_processes(
    cdn_app: App, database_url: str, redis_url: str
) -> None:
    user = new_user()
    await seed(cdn_app, user, 4, visibility=Visibility.PRIVATE)
    page = await cdn_app.service.list_photos(user.id, page_size=10)
    urls = [p.url for p in page.photos]
    assert all(u.startswith(BASE + "/users/") and "&Key-Pair-Id=K2JCJMDEHXQW5F" in u for u in urls)
    margin = cdn_app.settings.service_config().urls.cache_margin
    for photo in page.photos:
        assert photo.url_expire_time is not None
        assert photo.url_expire_time - datetime.now(UTC) >= margin
        expires = int(parse_qs(urlsplit(photo.url or "").query)["Expires"][0])
        assert expires == int(photo.url_expire_time.timestamp())
    again = await cdn_app.service.list_photos(user.id, page_size=10)
    assert [p.url for p in again.photos] == urls
    # Another process, no cache at all: the same window and key sign the same bytes.
    other = make_settings(
        database_url,
        redis_url,
        PHOTOVAULT_URL_CACHE="off",
        **cdn_settings(database_url, redis_url),
    )
    async with open_app(other) as process:
        fresh = await process.service.list_photos(user.id, page_size=10)
    assert [p.url for p in fresh.photos] == urls


async def test_variants_of_private_photos_get_cloudfront_urls_too(cdn_app: App) -> None:
    user = new_user()
    (photo,) = await seed(cdn_app, user, 1, visibility=Visibility.PRIVATE)
    variants = [
        PhotoVariant(
            name, f"users/{user.id}/variants/{photo.id}/{name}.webp", "image/webp", 8, 8, 9
        )
        for name in ("thumb", "preview")
    ]
    metadata = ImageMetadata(width=16, height=16)
    done = await cdn_app.backends.repository.finish_photo_job(
        user.id, photo.id, metadata, variants, datetime.now(UTC)
    )
    assert done
    (listed,) = (await cdn_app.service.list_photos(user.id, variants=["thumb"])).photos
    (thumb,) = listed.variants
    assert thumb.url is not None
    assert thumb.url.startswith(f"{BASE}/users/{user.id}/variants/{photo.id}/thumb.webp?Expires=")
    assert "&Key-Pair-Id=K2JCJMDEHXQW5F" in thumb.url
    (batch,) = await cdn_app.service.batch_get_photo_urls(user.id, [str(photo.id)], "preview")
    assert batch.url.startswith(f"{BASE}/users/{user.id}/variants/{photo.id}/preview.webp?")
    assert batch.variant == "preview"


async def test_public_photos_keep_the_public_base_url(
    database_url: str, redis_url: str, aws_env: None
) -> None:
    settings = make_settings(
        database_url,
        redis_url,
        PHOTOVAULT_PUBLIC_BASE_URL="https://public.example.test",
        **cdn_settings(database_url, redis_url),
    )
    async with open_app(settings) as app:
        user = new_user()
        await seed(app, user, 1, visibility=Visibility.PUBLIC)
        (photo,) = (await app.service.list_photos(user.id)).photos
    assert photo.url is not None
    assert photo.url.startswith("https://public.example.test/users/")
    assert photo.url_expire_time is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"PHOTOVAULT_CDN_BASE_URL": BASE}, "PHOTOVAULT_CDN_KEY_PAIR_ID"),
        ({"PHOTOVAULT_CDN_KEY_PAIR_ID": "K"}, "PHOTOVAULT_CDN_BASE_URL"),
        (
            {
                "PHOTOVAULT_CDN_BASE_URL": "http://insecure.test",
                "PHOTOVAULT_CDN_KEY_PAIR_ID": "K",
                "PHOTOVAULT_CDN_PRIVATE_KEY": "x",
            },
            "https://",
        ),
    ],
)
def test_an_incomplete_cdn_configuration_names_what_is_missing(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        make_settings("postgresql://unused/db", "redis://unused/0", **overrides)


async def test_a_bad_cdn_key_stops_the_start_up(
    database_url: str, redis_url: str, aws_env: None
) -> None:
    settings = make_settings(
        database_url,
        redis_url,
        **cdn_settings(database_url, redis_url, PHOTOVAULT_CDN_PRIVATE_KEY="not a pem"),
    )
    with pytest.raises(SettingsError, match="PHOTOVAULT_CDN_PRIVATE_KEY"):
        async with open_app(settings):
            pass
