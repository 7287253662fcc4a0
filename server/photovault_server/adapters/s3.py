"""ObjectStore on S3 through one long-lived aioboto3 client per process.

Presigned PUTs sign Content-Type, Content-Length, If-None-Match: * and, when given,
x-amz-checksum-sha256, so S3 itself refuses bytes other than those reserved, and refuses to
overwrite an object once it exists. Network and service failures become `Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from photovault_server.core.errors import Unavailable
from photovault_server.core.models import ObjectInfo, PresignedUpload, SignedUrl

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class S3ObjectStore:
    def __init__(self, client: Any, *, bucket: str, addressing_style: str) -> None:
        # `client` is an entered aioboto3 S3 client; its owner (the composition root) closes it.
        self._client = client
        self._bucket = bucket
        self._addressing_style = addressing_style

    async def _access_key_id(self) -> str:
        credentials = self._client._request_signer._credentials
        if credentials is None:
            return "anonymous"
        frozen = await credentials.get_frozen_credentials()
        return str(frozen.access_key)

    async def url_scope(self) -> str:
        meta = self._client.meta
        return "|".join(
            (
                self._bucket,
                meta.region_name,
                meta.endpoint_url,
                self._addressing_style,
                await self._access_key_id(),
            )
        )

    @asynccontextmanager
    async def _calling(self, what: str) -> AsyncIterator[None]:
        try:
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
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size_bytes,
            "IfNoneMatch": "*",
        }
        if checksum_sha256:
            params["ChecksumSHA256"] = checksum_sha256
            headers["x-amz-checksum-sha256"] = checksum_sha256
        now = datetime.now(UTC)
        async with self._calling("sign an upload"):
            url = await self._client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=int(expires_in.total_seconds())
            )
        return PresignedUpload(url=url, headers=headers, expire_time=now + expires_in)

    async def presign_downloads(
        self, keys: Sequence[str], expires_in: timedelta
    ) -> list[SignedUrl]:
        seconds = int(expires_in.total_seconds())
        now = datetime.now(UTC)
        urls = []
        async with self._calling("sign a download"):
            for key in keys:
                url = await self._client.generate_presigned_url(
                    "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
                )
                urls.append(SignedUrl(url=url, expire_time=now + expires_in))
        return urls

    async def head(self, key: str) -> ObjectInfo | None:
        async with self._calling("read an object's metadata"):
            try:
                response = await self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
        return ObjectInfo(
            size_bytes=int(response["ContentLength"]),
            content_type=str(response.get("ContentType", "")),
        )

    async def read_prefix(self, key: str, length: int) -> bytes:
        async with self._calling("read an object"):
            response = await self._client.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes=0-{length - 1}"
            )
            async with response["Body"] as body:
                data: bytes = await body.read()
        return data[:length]

    async def delete(self, key: str) -> None:
        async with self._calling("delete an object"):
            await self._client.delete_object(Bucket=self._bucket, Key=key)
