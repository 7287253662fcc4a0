"""Where botocore points a bucket's URLs, and the credentials it would sign with, worked out
without importing it, for the common cases only; anything else returns None and the S3 adapter
asks botocore itself. tests/test_s3_endpoints.py holds these rules to botocore's answers.

Why: importing aioboto3/botocore and building an S3 client is most of a Lambda cold start,
and listing photos needs neither: only a signing key and an endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .sigv4 import Credentials, S3Endpoint

# The standard `aws` partition (not China, GovCloud, ISO): s3.<region>.amazonaws.com.
_AWS_REGION = re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d")
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def s3_endpoint(
    bucket: str, region: str, addressing_style: str, endpoint_url: str = ""
) -> S3Endpoint | None:
    """As botocore with `us_east_1_regional_endpoint="regional"`, or None when unsure."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if addressing_style != "path" or parts.query or parts.fragment or not parts.hostname:
            return None
        host = parts.hostname
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return S3Endpoint(
            origin=f"{parts.scheme}://{parts.netloc}",
            path_prefix=f"{parts.path.rstrip('/')}/{bucket}/",
            host=host,
            region=region,
        )
    if not _AWS_REGION.fullmatch(region) or not _DNS_BUCKET.fullmatch(bucket):
        return None
    if addressing_style == "virtual":
        host = f"{bucket}.s3.{region}.amazonaws.com"
        return S3Endpoint(origin=f"https://{host}", path_prefix="/", host=host, region=region)
    if addressing_style == "path":
        host = f"s3.{region}.amazonaws.com"
        return S3Endpoint(
            origin=f"https://{host}", path_prefix=f"/{bucket}/", host=host, region=region
        )
    return None


def environment_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """botocore's first provider: static keys from the environment (what Lambda sets). None
    when absent, or when botocore would treat them as refreshable (an expiration is given)."""
    access_key = environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key or environ.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    return Credentials(access_key, secret_key, token)
