"""The upload PUT: the bytes streamed to the presigned URL with exactly the headers the
service signed, progress reported as chunks go out, network failures retried."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import httpx

from ._errors import Code, UploadRejected, error_from_code
from ._models import UploadTicket
from ._retry import RetryPolicy
from ._source import UploadSource

ProgressCallback = Callable[[int, int], object]
"""Called with (bytes sent, total bytes) as the upload proceeds, from 0 to the total."""

DEFAULT_PUT_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.2, max_backoff=2.0)
# The object store's own "try again" answers, retried like a network failure.
RETRY_STATUSES = frozenset({500, 502, 503, 504})


async def put_object(
    http: httpx.AsyncClient,
    ticket: UploadTicket,
    source: UploadSource,
    *,
    progress: ProgressCallback | None = None,
    policy: RetryPolicy = DEFAULT_PUT_RETRY,
) -> None:
    """Raises UploadRejected when the store refuses the bytes (4xx: checksum, expired URL),
    Unavailable when every attempt failed on the network or with a 5xx."""
    problem = ""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            response = await http.request(
                ticket.method,
                ticket.upload_url,
                content=_body(source, progress),
                headers=dict(ticket.required_headers),
            )
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            if response.is_success:
                return
            if response.status_code == 412 and attempt > 1:
                # If-None-Match: * refused because an earlier attempt's bytes did arrive
                # (only its answer was lost); ConfirmUpload verifies them.
                return
            if response.status_code not in RETRY_STATUSES:
                raise UploadRejected(response.status_code, store_message(response))
            problem = store_message(response)
        if attempt < policy.max_attempts:
            await asyncio.sleep(policy.backoff(attempt))
    raise error_from_code(
        Code.UNAVAILABLE,
        f"upload failed after {policy.max_attempts} attempts: {problem}",
        "UPLOAD_UNAVAILABLE",
    )


async def _body(source: UploadSource, progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    sent = 0
    if progress is not None:
        progress(0, source.size)
    async for chunk in source.chunks():
        yield chunk
        sent += len(chunk)
        if progress is not None:
            progress(sent, source.size)


_XML_FIELD = re.compile(rb"<(Code|Message)>([^<]{0,300})</\1>")


def store_message(response: httpx.Response) -> str:
    """'object store answered 400 BadDigest: ...' from S3's XML error, without the URL."""
    fields = {
        name.decode(): value.decode(errors="replace")
        for name, value in _XML_FIELD.findall(response.content)
    }
    text = f"object store answered HTTP {response.status_code}"
    if "Code" in fields:
        text += f" {fields['Code']}"
    if "Message" in fields:
        text += f": {fields['Message']}"
    return text
