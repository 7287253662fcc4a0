"""The fast signer against the reference: for random keys, regions, endpoints, addressing
styles, operations, response-header parameters and credentials, at fixed times, its URLs are
byte-identical to botocore's generate_presigned_url."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import botocore.credentials
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photovault_server.adapters.sigv4 import (
    Credentials,
    PresignedUrlBatch,
    S3Endpoint,
    upload_part_params,
)

PROBE_KEY = "photovault-probe"
# make test runs 300; `PHOTOVAULT_SIGV4_EXAMPLES=5000 pytest tests/test_sigv4.py` goes further.
EXAMPLES = int(os.environ.get("PHOTOVAULT_SIGV4_EXAMPLES", "300"))
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1"]
ENDPOINTS = [None, "https://s3.example.test", "http://127.0.0.1:9000", "https://minio.test:9443"]
RESPONSE_PARAMS = {
    "ResponseCacheControl": "response-cache-control",
    "ResponseContentDisposition": "response-content-disposition",
    "ResponseContentType": "response-content-type",
    "ResponseExpires": None,  # a timestamp; left out (we never send it)
}

keys = st.one_of(
    st.text(min_size=1, max_size=300).filter(lambda k: "\x00" not in k),
    st.builds(
        lambda parts: "/".join(parts),
        st.lists(
            st.sampled_from(["users", "a b", "x+y=z", "~t", "(1)", "é", "日本", "%41", "'!*"]),
            min_size=1,
            max_size=8,
        ),
    ),
    st.just("a" * 1024),
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
)
times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    naive = at.astimezone(UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive):
        yield


@cache
def _client(region: str, endpoint: str | None, style: str) -> Any:
    # Creating a client costs ~0.1 s: one per (region, endpoint, style); the credentials of
    # each example are swapped into its signer (they are read at signing time).
    return boto3.session.Session().client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="placeholder",
        aws_secret_access_key="placeholder",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": style, "us_east_1_regional_endpoint": "regional"},
            # Other tests set AWS_ENDPOINT_URL_S3 for the session: not for the reference.
            ignore_configured_endpoint_urls=True,
            request_checksum_calculation="when_required",
        ),
    )


def botocore_client(region: str, endpoint: str | None, style: str, creds: Credentials) -> Any:
    client = _client(region, endpoint, style)
    client._request_signer._credentials = botocore.credentials.Credentials(
        creds.access_key, creds.secret_key, creds.token
    )
    return client


credentials = st.builds(
    Credentials,
    access_key=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=20),
    secret_key=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=20, max_size=40
    ),
    token=st.one_of(
        st.none(),
        st.text(
            alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
            min_size=10,
            max_size=200,
        ),
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=keys,
    region=st.sampled_from(REGIONS),
    endpoint=st.sampled_from(ENDPOINTS),
    style=st.sampled_from(["path", "virtual"]),
    creds=credentials,
    at=times,
    expires_in=st.integers(min_value=1, max_value=7 * 24 * 3600),
    response=st.dictionaries(
        st.sampled_from(
            ["ResponseCacheControl", "ResponseContentDisposition", "ResponseContentType"]
        ),
        header_values,
        max_size=3,
    ),
)
def test_get_urls_match_botocore(
    key: str,
    region: str,
    endpoint: str | None,
    style: str,
    creds: Credentials,
    at: datetime,
    expires_in: int,
    response: dict[str, str],
) -> None:
    if style == "virtual" and endpoint and "127.0.0.1" in endpoint:
        style = "path"  # a bucket cannot be a subdomain of an IP address
    client = botocore_client(region, endpoint, style, creds)
    with frozen(at):
        expected = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": "photos-bucket", "Key": key, **response},
            ExpiresIn=expires_in,
        )
        probe = client.generate_presigned_url(
            "get_object", Params={"Bucket": "photos-bucket", "Key": PROBE_KEY}, ExpiresIn=60
        )
    endpoint_ = S3Endpoint.from_presigned_url(probe, PROBE_KEY, region)
    params = {RESPONSE_PARAMS[name]: value for name, value in response.items()}
    batch = PresignedUrlBatch(
        endpoint_,
        creds,
        method="GET",
        signed_at=at,
        expires_in=expires_in,
        params=params,  # type: ignore[arg-type]
    )
    assert batch.url(key) == expected


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    key=keys,
    region=st.sampled_from(REGIONS),
    style=st.sampled_from(["path", "virtual"]),
    creds=credentials,
    at=times,
    content_type=st.sampled_from(["image/jpeg", "image/png", "image/avif"]),
    size=st.integers(min_value=1, max_value=5 * 1024**3),
    checksum=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_put_urls_with_signed_headers_match_botocore(
    key: str,
    region: str,
    style: str,
    creds: Credentials,
    at: datetime,
    content_type: str,
    size: int,
    checksum: bytes | None,
) -> None:
    import base64

    client = botocore_client(region, None, style, creds)
    params: dict[str, Any] = {
        "Bucket": "photos-bucket",
        "Key": key,
        "ContentType": content_type,
        "ContentLength": size,
        "IfNoneMatch": "*",
    }
    headers = {"Content-Type": content_type, "Content-Length": str(size), "If-None-Match": "*"}
    if checksum is not None:
        params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = base64.b64encode(
            checksum
        ).decode()
    with frozen(at):
        expected = client.generate_presigned_url("put_object", Params=params, ExpiresIn=900)
        probe = client.generate_presigned_url(
            "get_object", Params={"Bucket": "photos-bucket", "Key": PROBE_KEY}, ExpiresIn=60
        )
    endpoint = S3Endpoint.from_presigned_url(probe, PROBE_KEY, region)
    batch = PresignedUrlBatch(
        endpoint, creds, method="PUT", signed_at=at, expires_in=900, headers=headers
    )
    assert batch.url(key) == expected


def test_expiry_outside_sigv4_limits_is_refused() -> None:
    import pytest

    endpoint = S3Endpoint(
        "https://b.s3.us-east-1.amazonaws.com", "/", "b.s3.us-east-1.amazonaws.com", "us-east-1"
    )
    creds = Credentials("AK", "SK")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for bad in (0, -1, int(timedelta(days=7).total_seconds()) + 1):
        with pytest.raises(ValueError, match="7 days"):
            PresignedUrlBatch(endpoint, creds, method="GET", signed_at=now, expires_in=bad)


def test_credentials_repr_hides_the_secret_and_the_token() -> None:
    creds = Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLE"
    )
    shown = repr(creds) + str(creds) + f"{creds}"
    assert "AKIDEXAMPLE" in shown
    assert "wJalrXUtnFEMI" not in shown
    assert "FwoGZXIvYXdz" not in shown


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    key=keys,
    region=st.sampled_from(REGIONS),
    endpoint=st.sampled_from(ENDPOINTS),
    style=st.sampled_from(["path", "virtual"]),
    creds=credentials,
    at=times,
    part_number=st.integers(min_value=1, max_value=10_000),
    upload_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=120
    ),
    size=st.integers(min_value=1, max_value=5 * 1024**3),
    checksum=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_upload_part_urls_match_botocore(
    key: str,
    region: str,
    endpoint: str | None,
    style: str,
    creds: Credentials,
    at: datetime,
    part_number: int,
    upload_id: str,
    size: int,
    checksum: bytes | None,
) -> None:
    """UploadPart: partNumber and uploadId are signed query parameters, the part's exact
    Content-Length (and checksum, when given) signed headers."""
    import base64

    if style == "virtual" and endpoint and "127.0.0.1" in endpoint:
        style = "path"
    client = botocore_client(region, endpoint, style, creds)
    params: dict[str, Any] = {
        "Bucket": "photos-bucket",
        "Key": key,
        "PartNumber": part_number,
        "UploadId": upload_id,
        "ContentLength": size,
    }
    headers = {"Content-Length": str(size)}
    if checksum is not None:
        params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = base64.b64encode(
            checksum
        ).decode()
    with frozen(at):
        expected = client.generate_presigned_url("upload_part", Params=params, ExpiresIn=3600)
        probe = client.generate_presigned_url(
            "get_object", Params={"Bucket": "photos-bucket", "Key": PROBE_KEY}, ExpiresIn=60
        )
    endpoint_ = S3Endpoint.from_presigned_url(probe, PROBE_KEY, region)
    batch = PresignedUrlBatch(
        endpoint_,
        creds,
        method="PUT",
        signed_at=at,
        expires_in=3600,
        params=upload_part_params(part_number, upload_id),
        headers=headers,
    )
    assert batch.url(key) == expected
