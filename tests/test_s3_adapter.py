"""The S3 adapter's URLs with no endpoint override, as on AWS: SigV4 always, the bucket's
regional endpoint, the configured addressing style (botocore signs offline: no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import aioboto3
import pytest

from photovault_server.adapters.s3 import S3ObjectStore
from photovault_server.app import s3_config
from photovault_server.settings import load_settings

KEY = "users/alice/photos/5f0e.jpg"


@pytest.fixture
def no_endpoint() -> Iterator[None]:
    saved = {
        k: os.environ.pop(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if k in os.environ
    }
    yield
    os.environ.update(saved)


@pytest.mark.parametrize(
    ("region", "bucket", "style", "url_prefix"),
    [
        ("us-east-1", "photos", "auto", "https://photos.s3.us-east-1.amazonaws.com/"),
        ("eu-west-1", "photos", "auto", "https://photos.s3.eu-west-1.amazonaws.com/"),
        ("eu-west-1", "photos", "path", "https://s3.eu-west-1.amazonaws.com/photos/"),
        ("ap-south-1", "photos", "virtual", "https://photos.s3.ap-south-1.amazonaws.com/"),
        ("eu-west-1", "my.photos", "auto", "https://s3.eu-west-1.amazonaws.com/my.photos/"),
    ],
)
async def test_presigned_urls_use_sigv4_on_the_regional_endpoint(
    no_endpoint: None, region: str, bucket: str, style: str, url_prefix: str
) -> None:
    settings = load_settings(
        PHOTOVAULT_BUCKET=bucket,
        PHOTOVAULT_JWT_SECRET="x" * 32,
        PHOTOVAULT_S3_ADDRESSING_STYLE=style,
        AWS_REGION=region,
    )
    session = aioboto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    async with session.client("s3", region_name=region, config=s3_config(settings)) as client:

        async def the_client() -> object:
            return client

        # No endpoint or credentials given: both come from botocore, the reference.
        store = S3ObjectStore(the_client, bucket=bucket)
        now = datetime.now(UTC).replace(microsecond=0)
        (get,) = await store.presign_downloads(
            [KEY], signed_at=now, expire_at=now + timedelta(hours=2)
        )
        put = await store.presign_upload(
            KEY,
            content_type="image/jpeg",
            size_bytes=10,
            checksum_sha256="",
            expires_in=timedelta(minutes=15),
        )
        scope = await store.url_scope()
    for url, expires in ((get.url, "7200"), (put.url, "900")):
        assert url.startswith(url_prefix + KEY + "?"), url
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Credential"][0].endswith(f"/{region}/s3/aws4_request")
        assert query["X-Amz-Expires"] == [expires]
    assert "AKIDEXAMPLE" not in scope  # every credential of the fleet shares the entries
    assert bucket in scope
