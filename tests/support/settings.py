"""The settings every test server starts from: secrets, bucket and region of the test setup."""

from __future__ import annotations

from photovault_server.settings import Settings, load_settings

JWT_SECRET = "test-secret-" + "x" * 32
BUCKET = "photovault-test"
REGION = "us-east-1"


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "PHOTOVAULT_BUCKET": BUCKET,
        "AWS_REGION": REGION,
        "PHOTOVAULT_S3_ADDRESSING_STYLE": "path",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHOTOVAULT_JWT_SECRET": JWT_SECRET,
        "PHOTOVAULT_GRPC_ADDR": "127.0.0.1:0",
        "PHOTOVAULT_DB_POOL_MAX_SIZE": 20,
        "PHOTOVAULT_QUOTA_BYTES": 10 * 1024 * 1024,
        "PHOTOVAULT_MAX_UPLOAD_BYTES": 1024 * 1024,
        "PHOTOVAULT_SHUTDOWN_GRACE_SECONDS": 1,
        # Redis alone, so cache tests see every hit and round trip; the in-process tier in
        # front of it has its own tests (tests/test_local_cache.py).
        "PHOTOVAULT_LOCAL_URL_CACHE_SIZE": 0,
    }
    values.update(overrides)
    return load_settings(**values)
