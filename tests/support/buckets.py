"""Buckets on the S3 servers the tests run (moto, LocalStack): the development package's
create_bucket, with this suite's bucket and region."""

from __future__ import annotations

from photovault_dev.s3 import create_bucket as create_dev_bucket

from .settings import BUCKET, REGION


def create_bucket(endpoint: str, bucket: str = BUCKET) -> None:
    create_dev_bucket(endpoint, bucket, REGION)
