"""moto's S3 server in a thread, and buckets on any S3 endpoint (moto, LocalStack).

moto keeps its state in the process that runs it: objects live as long as that process, and a
second server in the same process sees the buckets of the first.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from photovault_dev.ports import LOOPBACK

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "CORS_EXPOSED_HEADERS",
    "create_bucket",
    "moto_s3",
    "moto_server",
]

# What a browser sends on a presigned PUT (every signed header must be allowed by CORS, or the
# preflight fails); Content-Length is set by the browser itself and needs no rule.
CORS_ALLOWED_HEADERS = [
    "Content-Type",
    "Content-MD5",
    "Cache-Control",
    "If-None-Match",
    "If-Match",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-content-sha256",
]
# A browser script reads only the response headers listed here (ETag proves what was stored).
CORS_EXPOSED_HEADERS = ["ETag", "x-amz-checksum-sha256", "x-amz-version-id"]
_CORS_METHODS = ["GET", "PUT", "HEAD"]


def _client_host(host: str) -> str:
    # A wildcard bind is reached through loopback; IPv6 literals need brackets in a URL.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _ensure_port_free(host: str, port: int) -> None:
    # ThreadedMotoServer.start() waits forever when its bind fails (the error only ends the
    # server thread), so check first and fail with a message instead of hanging.
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR, as werkzeug's server does.
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot start moto's S3 on {host}:{port}: {exc.strerror}"
        ) from exc


@contextmanager
def moto_server(host: str = LOOPBACK, port: int = 0) -> Iterator[str]:
    """Runs moto's server in a thread at host:port (port 0: one the OS picks at bind time, so
    no race with other processes); yields its endpoint URL. As on S3, a bucket's CORS rule
    alone decides what a browser may do."""
    from moto.moto_server import werkzeug_app
    from moto.server import ThreadedMotoServer

    # By default moto wraps every service in flask-cors, which echoes any Origin, even one the
    # bucket's rule refuses; switched off, the bucket's CORS rule alone decides, as on S3.
    # (Read when the server builds its apps, so setting it here works after moto's import.)
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]  # not re-exported

    _ensure_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        yield f"http://{_client_host(bound_host)}:{bound_port}"
    finally:
        server.stop()


def create_bucket(
    endpoint: str,
    bucket: str,
    region: str = "us-east-1",
    cors_origins: list[str] | None = None,
) -> None:
    """Creates `bucket` at the S3 `endpoint` (one that already exists and is ours is fine). With
    `cors_origins`, adds a CORS rule for browser PUT/GET/HEAD from those origins (any origin if
    the list is empty); with None, no CORS rule."""
    # botocore rather than boto3: same client, and botocore is already typed-as-Any for mypy.
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - test servers accept any credentials
        config=Config(s3={"addressing_style": "path"}),
    )
    try:
        create: dict[str, object] = {"Bucket": bucket}
        if region != "us-east-1":  # S3 refuses a LocationConstraint of us-east-1
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**create)
        except ClientError as exc:
            # moto's state outlives a server in the same process (tests start several).
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        if cors_origins is None:
            return
        rule = {
            "AllowedOrigins": cors_origins or ["*"],
            "AllowedMethods": _CORS_METHODS,
            "AllowedHeaders": CORS_ALLOWED_HEADERS,
            "ExposeHeaders": CORS_EXPOSED_HEADERS,
            "MaxAgeSeconds": 3000,
        }
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    finally:
        s3.close()


@contextmanager
def moto_s3(
    host: str, port: int, bucket: str, region: str, cors_origins: list[str]
) -> Iterator[str]:
    """moto's server (`moto_server`) with `bucket` and a CORS rule for browser PUT/GET/HEAD from
    `cors_origins` (any origin if empty); yields the endpoint URL. Port 0 picks a free one."""
    with moto_server(host, port) as endpoint:
        create_bucket(endpoint, bucket, region, cors_origins)
        yield endpoint
