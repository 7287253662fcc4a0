"""The endpoint and credential rules worked out without botocore (adapters/s3_endpoints.py)
must agree with botocore wherever they answer: compared with the URL botocore presigns for the
same bucket, region, addressing style and endpoint."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from photovault_server.adapters.s3_endpoints import environment_credentials, s3_endpoint
from photovault_server.adapters.sigv4 import Credentials, S3Endpoint

PROBE = "photovault-probe"
REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-east-1",
    "sa-east-1",
    "ca-central-1",
    "me-south-1",
    "af-south-1",
    "il-central-1",
    "mx-central-1",
]
OTHER_PARTITIONS = ["cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-iso-east-1"]
ENDPOINTS = [
    "http://127.0.0.1:9000",
    "https://minio.example.test",
    "https://s3.example.test:9443/base",
]
buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)


@cache
def _client(region: str, style: str, endpoint: str | None) -> Any:
    return boto3.session.Session().client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": style, "us_east_1_regional_endpoint": "regional"},
            # Other tests set AWS_ENDPOINT_URL_S3 for the session: not for the reference.
            ignore_configured_endpoint_urls=True,
        ),
    )


def botocore_endpoint(bucket: str, region: str, style: str, endpoint: str | None) -> S3Endpoint:
    url = _client(region, style, endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": PROBE}, ExpiresIn=60
    )
    return S3Endpoint.from_presigned_url(url, PROBE, region)


@settings(max_examples=200, deadline=None)
@given(bucket=buckets, region=st.sampled_from(REGIONS), style=st.sampled_from(["path", "virtual"]))
def test_aws_endpoints_match_botocore(bucket: str, region: str, style: str) -> None:
    ours = s3_endpoint(bucket, region, style)
    assert ours == botocore_endpoint(bucket, region, style, None)


@settings(max_examples=60, deadline=None)
@given(bucket=buckets, region=st.sampled_from(REGIONS[:4]), endpoint=st.sampled_from(ENDPOINTS))
def test_custom_endpoints_with_path_style_match_botocore(
    bucket: str, region: str, endpoint: str
) -> None:
    ours = s3_endpoint(bucket, region, "path", endpoint)
    assert ours == botocore_endpoint(bucket, region, "path", endpoint)


def test_unsure_cases_defer_to_botocore() -> None:
    for region in OTHER_PARTITIONS:
        assert s3_endpoint("photos", region, "virtual") is None
    assert s3_endpoint("my.photos", "eu-west-1", "virtual") is None  # dotted: TLS would break
    assert s3_endpoint("photos", "eu-west-1", "auto") is None
    assert s3_endpoint("photos", "eu-west-1", "virtual", "https://minio.example.test") is None


def test_environment_credentials_as_botocore_reads_them() -> None:
    assert environment_credentials({}) is None
    assert environment_credentials({"AWS_ACCESS_KEY_ID": "AK"}) is None
    base = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    assert environment_credentials(base) == Credentials("AK", "SK", None)
    assert environment_credentials({**base, "AWS_SESSION_TOKEN": "T"}) == Credentials(
        "AK", "SK", "T"
    )
    assert environment_credentials({**base, "AWS_SECURITY_TOKEN": "T"}) == Credentials(
        "AK", "SK", "T"
    )
    # With an expiration botocore makes them refreshable: left to it.
    assert (
        environment_credentials({**base, "AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z"})
        is None
    )
