"""Buckets on the S3 servers the tests run (moto, LocalStack)."""

from __future__ import annotations

import boto3

from .settings import BUCKET, REGION


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=bucket)
