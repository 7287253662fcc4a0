"""ObjectStore on S3 through one long-lived aioboto3 client per process.

URLs are signed by the fast signer in sigv4.py with the client's own credentials (resolved and
refreshed by botocore) on the endpoint botocore chose for the bucket. Presigned PUTs sign
Content-Type, Content-Length, If-None-Match: * and, when given, x-amz-checksum-sha256, so S3
itself refuses bytes other than those reserved, and refuses to overwrite an object once it
exists. Network and service failures become `Unavailable`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photovault_server.core.errors import Unavailable
from photovault_server.core.models import ObjectInfo, PresignedUpload, SignedUrl
from photovault_server.core.multipart_models import IncompleteUpload, UploadedPart
from photovault_server.tracing import NO_TRACING, Tracing

from .sigv4 import Credentials, PresignedUrlBatch, S3Endpoint, upload_part_params

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_UPLOAD = frozenset({"404", "NoSuchUpload", "NotFound"})
_READ_CHUNK = 1024 * 1024
_PROBE_KEY = "photovault-endpoint-probe"
_SIGV4_MAX = timedelta(days=7)
# Headers S3 stores from an upload and sends back with downloads, as HeadObject names them.
_SERVED_HEADERS = (
    ("content-encoding", "ContentEncoding"),
    ("content-disposition", "ContentDisposition"),
    ("cache-control", "CacheControl"),
    ("content-language", "ContentLanguage"),
    ("expires", "ExpiresString"),
)
# S3 DeleteObjects takes at most this many keys per request.
MAX_DELETE_BATCH = 1000


# Opens the aioboto3 S3 client on first need; its owner (the composition root) closes it.
ClientFactory = Callable[[], Awaitable[Any]]


class S3ObjectStore:
    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        bucket: str,
        endpoint: S3Endpoint | None = None,
        credentials: Credentials | None = None,
        temporary_credentials_cap: timedelta = timedelta(hours=1),
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`endpoint` and `credentials`, when the composition root could work them out without
        botocore (app.py), let URLs be signed without opening the client at all: a Lambda cold
        start listing photos then never imports the AWS SDK. Otherwise both come from it.
        `tracing` wraps every S3 call in a span."""
        self._tracing = tracing
        self._client_factory = client_factory
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._bucket = bucket
        self._temporary_cap = temporary_credentials_cap
        self._endpoint = endpoint
        self._static_credentials = credentials

    async def client(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    async with self._calling("connect"):
                        self._client = await self._client_factory()
        return self._client

    async def _s3_endpoint(self) -> S3Endpoint:
        # Read off one URL botocore presigns (no I/O), on first use rather than at start-up.
        if self._endpoint is None:
            client = await self.client()
            async with self._calling("sign URLs"):
                probe = await client.generate_presigned_url(
                    "get_object", Params={"Bucket": self._bucket, "Key": _PROBE_KEY}, ExpiresIn=60
                )
            self._endpoint = S3Endpoint.from_presigned_url(
                probe, _PROBE_KEY, client.meta.region_name
            )
        return self._endpoint

    async def _credentials(self) -> tuple[Credentials, datetime | None]:
        """The signing credentials as botocore resolved (and refreshes) them, with their expiry
        when botocore knows it (refreshable credentials: instance/container roles, SSO)."""
        if self._static_credentials is not None:
            return self._static_credentials, None
        source = (await self.client())._request_signer._credentials
        if source is None:
            raise Unavailable("no AWS credentials are configured for the object store")
        async with self._calling("refresh its credentials"):
            frozen = await source.get_frozen_credentials()
        expiry = getattr(source, "_expiry_time", None)
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token), expiry

    async def url_scope(self) -> str:
        """Origin and path prefix carry the bucket, region and addressing style; the signing
        credentials stay out (see ObjectStore.url_scope)."""
        endpoint = await self._s3_endpoint()
        # "immutable": GET URLs carry response-cache-control (entries from before it differ).
        return "|".join((endpoint.origin, endpoint.path_prefix, endpoint.region, "immutable"))

    async def url_lifetime_cap(self) -> timedelta | None:
        credentials, expiry = await self._credentials()
        return self._temporary_cap if credentials.token and expiry is None else None

    async def _batch(
        self,
        *,
        method: str,
        signed_at: datetime,
        expire_at: datetime,
        headers: dict[str, str] | None = None,
        cached_by_browsers: bool = False,
        params: dict[str, str] | None = None,
    ) -> tuple[PresignedUrlBatch, datetime]:
        credentials, expiry = await self._credentials()
        expire = min(expire_at, signed_at + _SIGV4_MAX)
        if expiry is not None:
            expire = min(expire, expiry)  # no URL outlives the credentials that signed it
        if credentials.token and expiry is None:
            expire = min(expire, signed_at + self._temporary_cap)
        seconds = max(int((expire - signed_at).total_seconds()), 1)
        # S3 answers a GET with the Cache-Control the URL asks for (a signed parameter): a
        # browser that sees the same URL again for its lifetime need not even revalidate.
        query = dict(params or {})
        if cached_by_browsers:
            query["response-cache-control"] = f"private, max-age={seconds}, immutable"
        batch = PresignedUrlBatch(
            await self._s3_endpoint(),
            credentials,
            method=method,
            signed_at=signed_at,
            expires_in=seconds,
            params=query,
            headers=headers,
        )
        return batch, signed_at + timedelta(seconds=seconds)

    @asynccontextmanager
    async def _calling(self, what: str) -> AsyncIterator[None]:
        try:
            with self._tracing.span(f"S3 {what}", **{"rpc.system": "aws-api", "rpc.service": "S3"}):
                yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise Unavailable(f"object store refused to {what} ({code})") from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise Unavailable(f"object store unavailable: could not {what}") from exc

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        size_bytes: int,
        checksum_sha256: str,
        expires_in: timedelta,
    ) -> PresignedUpload:
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size_bytes),
            "If-None-Match": "*",
        }
        if checksum_sha256:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        now = datetime.now(UTC).replace(microsecond=0)
        batch, expire_time = await self._batch(
            method="PUT", signed_at=now, expire_at=now + expires_in, headers=headers
        )
        return PresignedUpload(url=batch.url(key), headers=headers, expire_time=expire_time)

    async def presign_downloads(
        self, keys: Sequence[str], *, signed_at: datetime, expire_at: datetime
    ) -> list[SignedUrl]:
        batch, expire_time = await self._batch(
            method="GET", signed_at=signed_at, expire_at=expire_at, cached_by_browsers=True
        )
        return [SignedUrl(url=batch.url(key), expire_time=expire_time) for key in keys]

    async def head(self, key: str) -> ObjectInfo | None:
        async with self._calling("read an object's metadata"):
            try:
                client = await self.client()
                response = await client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
        served = tuple(
            (header, str(response[field]))
            for header, field in _SERVED_HEADERS
            if response.get(field)
        )
        return ObjectInfo(
            size_bytes=int(response["ContentLength"]),
            content_type=str(response.get("ContentType", "")),
            served_headers=served,
        )

    async def read_prefix(self, key: str, length: int) -> bytes:
        async with self._calling("read an object"):
            client = await self.client()
            response = await client.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes=0-{length - 1}"
            )
            async with response["Body"] as body:
                data: bytes = await body.read()
        return data[:length]

    async def delete(self, key: str) -> None:
        async with self._calling("delete an object"):
            client = await self.client()
            await client.delete_object(Bucket=self._bucket, Key=key)

    async def delete_many(self, keys: Sequence[str]) -> list[str]:
        if not keys:
            return []
        if len(keys) > MAX_DELETE_BATCH:
            raise ValueError(f"at most {MAX_DELETE_BATCH} keys per DeleteObjects request")
        async with self._calling("delete objects"):
            client = await self.client()
            response = await client.delete_objects(
                Bucket=self._bucket,
                # Quiet: the answer lists only the keys that failed.
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        return [str(error["Key"]) for error in response.get("Errors", [])]

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        async with self._calling("store an object"):
            client = await self.client()
            await client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
            )

    # Multipart uploads (core/multipart.py).

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        async with self._calling("start a multipart upload"):
            client = await self.client()
            response = await client.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType=content_type
            )
        return str(response["UploadId"])

    async def presign_upload_part(
        self,
        key: str,
        s3_upload_id: str,
        part_number: int,
        *,
        size_bytes: int,
        checksum_sha256: str,
        expires_in: timedelta,
    ) -> PresignedUpload:
        headers = {"Content-Length": str(size_bytes)}
        if checksum_sha256:
            headers["x-amz-checksum-sha256"] = checksum_sha256
        now = datetime.now(UTC).replace(microsecond=0)
        batch, expire_time = await self._batch(
            method="PUT",
            signed_at=now,
            expire_at=now + expires_in,
            headers=headers,
            params=upload_part_params(part_number, s3_upload_id),
        )
        return PresignedUpload(url=batch.url(key), headers=headers, expire_time=expire_time)

    async def list_parts(self, key: str, s3_upload_id: str) -> list[UploadedPart] | None:
        parts: list[UploadedPart] = []
        marker = 0
        async with self._calling("list an upload's parts"):
            client = await self.client()
            while True:
                try:
                    response = await client.list_parts(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=s3_upload_id,
                        PartNumberMarker=marker,
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") in _NO_UPLOAD:
                        return None
                    raise
                parts.extend(
                    UploadedPart(
                        part_number=int(p["PartNumber"]),
                        size_bytes=int(p["Size"]),
                        etag=str(p["ETag"]),
                        checksum_sha256=str(p.get("ChecksumSHA256") or ""),
                    )
                    for p in response.get("Parts", [])
                )
                if not response.get("IsTruncated"):
                    return parts
                marker = int(response["NextPartNumberMarker"])

    async def complete_multipart(
        self, key: str, s3_upload_id: str, parts: Sequence[UploadedPart]
    ) -> None:
        async with self._calling("complete a multipart upload"):
            client = await self.client()
            await client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=s3_upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]
                },
            )

    async def abort_multipart(self, key: str, s3_upload_id: str) -> None:
        async with self._calling("abort a multipart upload"):
            client = await self.client()
            try:
                await client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=s3_upload_id
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _NO_UPLOAD:
                    raise

    async def incomplete_multiparts(
        self, prefix: str, *, initiated_before: datetime
    ) -> AsyncIterator[list[IncompleteUpload]]:
        markers: dict[str, str] = {}
        while True:
            async with self._calling("list open multipart uploads"):
                client = await self.client()
                response = await client.list_multipart_uploads(
                    Bucket=self._bucket, Prefix=prefix, **markers
                )
            yield [
                IncompleteUpload(str(u["Key"]), str(u["UploadId"]), u["Initiated"])
                for u in response.get("Uploads", [])
                if u["Initiated"] < initiated_before
            ]
            if not response.get("IsTruncated"):
                return
            markers = {
                "KeyMarker": response["NextKeyMarker"],
                "UploadIdMarker": response["NextUploadIdMarker"],
            }

    async def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        async with self._calling("read an object"):
            client = await self.client()
            response = await client.get_object(Bucket=self._bucket, Key=key)
            stream = response["Body"]
            async with stream:  # entering yields the HTTP response: read from the stream
                while chunk := await stream.read(_READ_CHUNK):
                    digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()
