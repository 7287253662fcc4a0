"""PhotoVaultClient: the RPCs with Python types, over native gRPC or Connect, with
deadlines, retries of idempotent calls, a download-URL cache and the whole upload flow."""

# `timeout=` on every method is the call's deadline, sent to the server (grpc-timeout,
# connect-timeout-ms) as gRPC clients do, not a local asyncio.timeout wrapper.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, TypedDict, Unpack

import grpc
import httpx
from google.protobuf import field_mask_pb2

from photovault.v1 import album_pb2, photo_pb2
from photovault.v1 import photo_service_pb2 as pb

from . import _convert as convert
from . import _rpcs as rpcs
from ._auth import TokenProvider, authorization
from ._connect import ConnectTransport
from ._content_types import content_type_of, default_file_name
from ._grpc import HEALTH_CHECKED_SERVICE_CONFIG, ChannelOptions, GrpcTransport
from ._models import (
    Account,
    Album,
    AlbumPage,
    Photo,
    PhotoOrder,
    PhotoPage,
    PhotoUrl,
    SharedAlbumPage,
    ShareLink,
    UploadTicket,
    Visibility,
)
from ._multipart import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PARTS_IN_FLIGHT,
    MultipartUpload,
    PartUrl,
    UploadedPart,
    upload_in_parts,
)
from ._retry import Deadline, RetryPolicy, with_retries
from ._rpcs import Req, Resp, Rpc
from ._source import Source, UploadSource
from ._transport import Transport
from ._upload import DEFAULT_PUT_RETRY, ProgressCallback, put_object
from ._url_cache import UrlCache

DEFAULT_TIMEOUT = 30.0
MAX_BATCH_IDS = 100
UPLOAD_HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ClientOptions(TypedDict, total=False):
    """Options shared by every way of building a client (see PhotoVaultClient.__init__)."""

    token: TokenProvider
    timeout: float | None
    retry: RetryPolicy
    url_cache: UrlCache
    http: httpx.AsyncClient
    upload_retry: RetryPolicy


class PhotoVaultClient:
    """An async client of photovault.v1.PhotoService; use it as `async with`.

    - `token`: a bearer token, or a function (sync or async) returning one, asked per attempt;
    - `timeout`: the default deadline of a call in seconds, retries included (None: none);
      every method takes `timeout=` to override it;
    - `retry`: how idempotent calls (GetPhoto, ListPhotos, BatchGetPhotoUrls, GetAccount,
      ConfirmUpload) are repeated after UNAVAILABLE; the others are never repeated;
    - `url_cache`: download URLs handed out again by get_url() without an RPC;
    - `http`: the httpx client for upload PUTs (and Connect calls of `web`); made when absent;
    - `upload_retry`: attempts of the upload PUT on network errors and 5xx answers.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        token: TokenProvider = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        url_cache: UrlCache | None = None,
        http: httpx.AsyncClient | None = None,
        upload_retry: RetryPolicy = DEFAULT_PUT_RETRY,
    ) -> None:
        self._transport = transport
        self._token = token
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._urls = url_cache if url_cache is not None else UrlCache()
        self._given_http = http
        self._http: httpx.AsyncClient | None = None
        self._upload_retry = upload_retry
        self._open = False

    # Construction and lifecycle ----------------------------------------------------------

    @classmethod
    def grpc(
        cls,
        target: str,
        *,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: ChannelOptions = (),
        health_checked: bool = False,
        **options: Unpack[ClientOptions],
    ) -> Self:
        """Native gRPC to `host:port`: TLS with the system roots when `secure` (or with the
        given `credentials`), plaintext otherwise. `health_checked`: round-robin over the
        target's addresses, skipping servers whose health is NOT_SERVING (draining); for
        direct connections, not through a per-request load balancer."""
        if credentials is None and secure:
            credentials = grpc.ssl_channel_credentials()
        if health_checked:
            if any(name == "grpc.service_config" for name, _ in channel_options):
                raise ValueError("health_checked sets grpc.service_config: pass one or the other")
            channel_options = [
                ("grpc.service_config", HEALTH_CHECKED_SERVICE_CONFIG),
                *channel_options,
            ]
        transport = GrpcTransport(target, credentials=credentials, options=channel_options)
        return cls(transport, **options)

    @classmethod
    def web(cls, base_url: str, **options: Unpack[ClientOptions]) -> Self:
        """Connect (binary protobuf over HTTP) to the web gateway or the Lambda Function URL
        at `base_url` (http:// or https://)."""
        return cls(ConnectTransport(base_url, http=options.get("http")), **options)

    @classmethod
    def for_target(cls, target: str, **options: Unpack[ClientOptions]) -> Self:
        """By the target's form: `http(s)://…` Connect, `grpcs://host:port` gRPC with TLS,
        `grpc://host:port` or `host:port` plaintext gRPC."""
        if target.startswith(("http://", "https://")):
            return cls.web(target, **options)
        if target.startswith("grpcs://"):
            return cls.grpc(target.removeprefix("grpcs://"), secure=True, **options)
        return cls.grpc(target.removeprefix("grpc://"), **options)

    async def open(self) -> None:
        if self._open:
            return
        await self._transport.open()
        self._http = self._given_http or httpx.AsyncClient(timeout=UPLOAD_HTTP_TIMEOUT)
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        http, self._http = self._http, None
        try:
            await self._transport.close()
        finally:
            if http is not None and http is not self._given_http:
                await http.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url_cache(self) -> UrlCache:
        return self._urls

    # The RPCs ------------------------------------------------------------------------------

    async def create_upload_url(
        self,
        file_name: str,
        content_type: str,
        size_bytes: int,
        *,
        checksum_sha256: str = "",
        skip_if_duplicate: bool = False,
        timeout: float | None = None,
    ) -> UploadTicket:
        """Reserves quota and returns where to PUT the bytes (never retried). With
        `skip_if_duplicate` (and the checksum), a ticket whose `existing_photo_id` names the
        caller's photo with those bytes, when there is one: nothing reserved, nothing to PUT."""
        request = pb.CreateUploadUrlRequest(
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
            skip_if_duplicate=skip_if_duplicate,
        )
        response = await self._call(rpcs.CREATE_UPLOAD_URL, request, timeout)
        return convert.upload_ticket(response)

    async def confirm_upload(
        self,
        upload_id: str,
        *,
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: Visibility = Visibility.UNSPECIFIED,
        timeout: float | None = None,
    ) -> Photo:
        """Turns an uploaded object into a photo (idempotent: retried)."""
        request = pb.ConfirmUploadRequest(
            upload_id=upload_id,
            title=title,
            description=description,
            tags=list(_tags(tags)),
            visibility=int(visibility),  # type: ignore[arg-type]
        )
        response = await self._call(rpcs.CONFIRM_UPLOAD, request, timeout)
        return self._remember(response.photo)

    async def get_photo(self, photo_id: str, *, timeout: float | None = None) -> Photo:
        response = await self._call(rpcs.GET_PHOTO, pb.GetPhotoRequest(id=photo_id), timeout)
        return self._remember(response.photo)

    async def list_photos(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        tags: Sequence[str] = (),
        query: str = "",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        visibility: Visibility | None = None,
        content_type: str = "",
        order: PhotoOrder = PhotoOrder.UNSPECIFIED,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        variants: Sequence[str] = (),
        album_id: str = "",
        timeout: float | None = None,
    ) -> PhotoPage:
        """One page of the caller's photos; pass `next_page_token` back, with the same
        filters, for the next (or use iter_photos). `taken_after`/`taken_before` filter by
        taken time (a photo without one: its create time); `variants` names the variants whose
        URLs come with each photo (empty: all); `album_id`: only that album's photos."""
        request = pb.ListPhotosRequest(
            page_size=page_size,
            page_token=page_token,
            tags=list(_tags(tags)),
            query=query,
            visibility=int(visibility or Visibility.UNSPECIFIED),  # type: ignore[arg-type]
            content_type=content_type,
            order=int(order),  # type: ignore[arg-type]
            variants=list(_tags(variants)),
            album_id=album_id,
        )
        if created_after is not None:
            request.created_after.CopyFrom(convert.timestamp(created_after))
        if created_before is not None:
            request.created_before.CopyFrom(convert.timestamp(created_before))
        if taken_after is not None:
            request.taken_after.CopyFrom(convert.timestamp(taken_after))
        if taken_before is not None:
            request.taken_before.CopyFrom(convert.timestamp(taken_before))
        response = await self._call(rpcs.LIST_PHOTOS, request, timeout)
        for photo in response.photos:
            self._remember(photo)
        return convert.photo_page(response)

    async def iter_photos(
        self,
        *,
        page_size: int = 0,
        tags: Sequence[str] = (),
        query: str = "",
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        visibility: Visibility | None = None,
        content_type: str = "",
        order: PhotoOrder = PhotoOrder.UNSPECIFIED,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        variants: Sequence[str] = (),
        album_id: str = "",
        timeout: float | None = None,
    ) -> AsyncIterator[Photo]:
        """Every photo matching the filters, page after page (`timeout` is per page)."""
        token = ""
        while True:
            page = await self.list_photos(
                page_size=page_size,
                page_token=token,
                tags=tags,
                query=query,
                created_after=created_after,
                created_before=created_before,
                visibility=visibility,
                content_type=content_type,
                order=order,
                taken_after=taken_after,
                taken_before=taken_before,
                variants=variants,
                album_id=album_id,
                timeout=timeout,
            )
            for photo in page.photos:
                yield photo
            token = page.next_page_token
            if not token:
                return

    async def batch_get_photo_urls(
        self, photo_ids: Sequence[str], *, variant: str = "", timeout: float | None = None
    ) -> list[PhotoUrl]:
        """Fresh download URLs for up to 100 photos, in request order (always an RPC; see
        get_url and get_urls for the cached way). With a `variant` (e.g. "thumb"), that
        variant's URLs; a photo without it ready is answered with its original's URL and an
        empty `PhotoUrl.variant`."""
        request = pb.BatchGetPhotoUrlsRequest(photo_ids=list(photo_ids), variant=variant)
        response = await self._call(rpcs.BATCH_GET_PHOTO_URLS, request, timeout)
        urls = [convert.photo_url(u) for u in response.urls]
        for url in urls:
            # Kept under what it fetches: an original handed out in a variant's stead is not
            # remembered as the variant, so the variant is asked for again once it is ready.
            self._urls.put(url.photo_id, url.url, url.expire_time, url.variant)
        return urls

    async def update_photo(
        self,
        photo_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        visibility: Visibility | None = None,
        timeout: float | None = None,
    ) -> Photo:
        """Changes the fields given (not None); the others keep their values."""
        photo = photo_pb2.Photo(id=photo_id)
        mask = field_mask_pb2.FieldMask()
        if title is not None:
            photo.title = title
            mask.paths.append("title")
        if description is not None:
            photo.description = description
            mask.paths.append("description")
        if tags is not None:
            photo.tags.extend(_tags(tags))
            mask.paths.append("tags")
        if visibility is not None:
            photo.visibility = int(visibility)  # type: ignore[assignment]
            mask.paths.append("visibility")
        request = pb.UpdatePhotoRequest(photo=photo, update_mask=mask)
        response = await self._call(rpcs.UPDATE_PHOTO, request, timeout)
        return self._remember(response.photo)

    async def delete_photo(self, photo_id: str, *, timeout: float | None = None) -> None:
        try:
            await self._call(rpcs.DELETE_PHOTO, pb.DeletePhotoRequest(id=photo_id), timeout)
        finally:
            self._urls.evict(photo_id)

    async def trash_photo(self, photo_id: str, *, timeout: float | None = None) -> None:
        """Moves the photo to the trash: hidden from every read until restore_photo, deleted
        for good by the server's sweep after its retention."""
        try:
            await self._call(rpcs.TRASH_PHOTO, pb.TrashPhotoRequest(id=photo_id), timeout)
        finally:
            self._urls.evict(photo_id)

    async def restore_photo(self, photo_id: str, *, timeout: float | None = None) -> Photo:
        response = await self._call(
            rpcs.RESTORE_PHOTO, pb.RestorePhotoRequest(id=photo_id), timeout
        )
        return self._remember(response.photo)

    async def list_trash(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> PhotoPage:
        """One page of the caller's trashed photos, most recently trashed first."""
        request = pb.ListTrashRequest(page_size=page_size, page_token=page_token)
        response = await self._call(rpcs.LIST_TRASH, request, timeout)
        return convert.photo_page(response)

    async def create_album(
        self, title: str, *, description: str = "", timeout: float | None = None
    ) -> Album:
        request = pb.CreateAlbumRequest(title=title, description=description)
        return convert.album((await self._call(rpcs.CREATE_ALBUM, request, timeout)).album)

    async def get_album(self, album_id: str, *, timeout: float | None = None) -> Album:
        request = pb.GetAlbumRequest(id=album_id)
        return convert.album((await self._call(rpcs.GET_ALBUM, request, timeout)).album)

    async def list_albums(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> AlbumPage:
        """One page of the caller's albums, most recently created first."""
        request = pb.ListAlbumsRequest(page_size=page_size, page_token=page_token)
        response = await self._call(rpcs.LIST_ALBUMS, request, timeout)
        return AlbumPage(
            albums=tuple(convert.album(a) for a in response.albums),
            next_page_token=response.next_page_token,
        )

    async def iter_albums(self, *, page_size: int = 0) -> AsyncIterator[Album]:
        """Every album of the caller's, page by page."""
        token = ""
        while True:
            page = await self.list_albums(page_size=page_size, page_token=token)
            for album in page.albums:
                yield album
            token = page.next_page_token
            if not token:
                return

    async def update_album(
        self,
        album_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        cover_photo_id: str | None = None,
        timeout: float | None = None,
    ) -> Album:
        """Changes the fields given (cover_photo_id="" goes back to the default cover)."""
        album = album_pb2.Album(id=album_id)
        mask = field_mask_pb2.FieldMask()
        for name, value in (
            ("title", title),
            ("description", description),
            ("cover_photo_id", cover_photo_id),
        ):
            if value is not None:
                setattr(album, name, value)
                mask.paths.append(name)
        request = pb.UpdateAlbumRequest(album=album, update_mask=mask)
        return convert.album((await self._call(rpcs.UPDATE_ALBUM, request, timeout)).album)

    async def delete_album(self, album_id: str, *, timeout: float | None = None) -> None:
        """Deletes the album and its share links; its photos stay."""
        await self._call(rpcs.DELETE_ALBUM, pb.DeleteAlbumRequest(id=album_id), timeout)

    async def add_album_photos(
        self, album_id: str, photo_ids: Sequence[str], *, timeout: float | None = None
    ) -> Album:
        """Up to 100 of the caller's photos; all or nothing."""
        request = pb.AddAlbumPhotosRequest(album_id=album_id, photo_ids=list(photo_ids))
        return convert.album((await self._call(rpcs.ADD_ALBUM_PHOTOS, request, timeout)).album)

    async def remove_album_photos(
        self, album_id: str, photo_ids: Sequence[str], *, timeout: float | None = None
    ) -> Album:
        request = pb.RemoveAlbumPhotosRequest(album_id=album_id, photo_ids=list(photo_ids))
        response = await self._call(rpcs.REMOVE_ALBUM_PHOTOS, request, timeout)
        return convert.album(response.album)

    async def create_share_link(
        self,
        *,
        album_id: str = "",
        photo_id: str = "",
        expire_time: datetime,
        allow_original: bool = False,
        password: str = "",
        timeout: float | None = None,
    ) -> ShareLink:
        """A link to one album or one photo; the returned link's `token` is the only copy."""
        request = pb.CreateShareLinkRequest(
            album_id=album_id,
            photo_id=photo_id,
            expire_time=convert.timestamp(expire_time),
            allow_original=allow_original,
            password=password,
        )
        response = await self._call(rpcs.CREATE_SHARE_LINK, request, timeout)
        return convert.share_link(response.share_link)

    async def list_share_links(self, *, timeout: float | None = None) -> list[ShareLink]:
        response = await self._call(rpcs.LIST_SHARE_LINKS, pb.ListShareLinksRequest(), timeout)
        return [convert.share_link(x) for x in response.share_links]

    async def revoke_share_link(self, link_id: str, *, timeout: float | None = None) -> None:
        await self._call(rpcs.REVOKE_SHARE_LINK, pb.RevokeShareLinkRequest(id=link_id), timeout)

    async def get_shared_album(
        self,
        token: str,
        *,
        password: str = "",
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> SharedAlbumPage:
        """What a share link shows; the server ignores this client's own token for it."""
        request = pb.GetSharedAlbumRequest(
            token=token, password=password, page_size=page_size, page_token=page_token
        )
        response = await self._call(rpcs.GET_SHARED_ALBUM, request, timeout)
        return convert.shared_album_page(response)

    async def get_account(self, *, timeout: float | None = None) -> Account:
        response = await self._call(rpcs.GET_ACCOUNT, pb.GetAccountRequest(), timeout)
        return convert.account(response.account)

    # Cached download URLs ------------------------------------------------------------------

    async def get_url(
        self, photo_id: str, *, variant: str = "", timeout: float | None = None
    ) -> str:
        """The photo's download URL (or its `variant`'s, falling back to the original's while
        the variant is not ready): from the cache while it has more than the margin of life
        left (no RPC), else from BatchGetPhotoUrls."""
        return (await self.get_urls([photo_id], variant=variant, timeout=timeout))[photo_id]

    async def get_urls(
        self, photo_ids: Iterable[str], *, variant: str = "", timeout: float | None = None
    ) -> dict[str, str]:
        """Download URLs by photo id (of `variant` when given, as get_url); only the ids
        without a fresh cached URL are fetched, in batches of 100."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for photo_id in dict.fromkeys(photo_ids):  # each id once, in order
            cached = self._urls.get(photo_id, variant)
            if cached is not None:
                found[photo_id] = cached
            else:
                missing.append(photo_id)
        for start in range(0, len(missing), MAX_BATCH_IDS):
            batch = missing[start : start + MAX_BATCH_IDS]
            for url in await self.batch_get_photo_urls(batch, variant=variant, timeout=timeout):
                found[url.photo_id] = url.url
        return found

    async def create_multipart_upload(
        self,
        file_name: str,
        content_type: str,
        size_bytes: int,
        *,
        checksum_sha256: str = "",
        timeout: float | None = None,
    ) -> MultipartUpload:
        """Reserves quota and starts an upload in parts (never retried)."""
        request = pb.CreateMultipartUploadRequest(
            file_name=file_name,
            content_type=content_type,
            size_bytes=size_bytes,
            checksum_sha256=checksum_sha256,
        )
        response = await self._call(rpcs.CREATE_MULTIPART_UPLOAD, request, timeout)
        return MultipartUpload(
            upload_id=response.upload_id,
            part_size_bytes=response.part_size_bytes,
            part_count=response.part_count,
            expire_time=convert.optional_time(response, "expire_time"),
        )

    async def sign_upload_parts(
        self,
        upload_id: str,
        part_numbers: Sequence[int],
        *,
        checksums_sha256: Sequence[str] = (),
        timeout: float | None = None,
    ) -> list[PartUrl]:
        """Presigned PUT URLs for up to 100 parts (signed again on every call)."""
        request = pb.SignUploadPartsRequest(
            upload_id=upload_id,
            part_numbers=list(part_numbers),
            checksums_sha256=list(checksums_sha256),
        )
        response = await self._call(rpcs.SIGN_UPLOAD_PARTS, request, timeout)
        return [
            PartUrl(
                part_number=p.part_number,
                url=p.url,
                method=p.method or "PUT",
                required_headers=dict(p.required_headers),
                expire_time=convert.optional_time(p, "expire_time"),
            )
            for p in response.parts
        ]

    async def list_uploaded_parts(
        self, upload_id: str, *, timeout: float | None = None
    ) -> list[UploadedPart]:
        """The parts S3 already holds for an upload in parts."""
        request = pb.ListUploadedPartsRequest(upload_id=upload_id)
        response = await self._call(rpcs.LIST_UPLOADED_PARTS, request, timeout)
        return [UploadedPart(p.part_number, p.size_bytes, p.etag) for p in response.parts]

    async def abort_upload(self, upload_id: str, *, timeout: float | None = None) -> None:
        """Abandons an upload (single or in parts) and releases its quota."""
        request = pb.AbortUploadRequest(upload_id=upload_id)
        await self._call(rpcs.ABORT_UPLOAD, request, timeout)

    # Upload --------------------------------------------------------------------------------

    async def upload(
        self,
        source: Source,
        *,
        file_name: str | None = None,
        title: str = "",
        description: str = "",
        tags: Sequence[str] = (),
        visibility: Visibility = Visibility.PRIVATE,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT,
        resume: bool = False,
        skip_if_duplicate: bool = True,
    ) -> Photo:
        """Uploads a file (path) or bytes and returns the confirmed photo.

        By default (`skip_if_duplicate`: the SHA-256 is computed anyway), a file below the
        multipart threshold whose bytes one of the caller's photos already holds is not
        uploaded again: that photo is returned, unchanged (title, tags and the rest are not
        applied to it). `skip_if_duplicate=False` makes a second photo of the same bytes.

        Above `multipart_threshold` bytes the file goes in parts (`parts_in_flight` at once,
        each retried on its own); for a path, a state file beside it (`<name>.photovault-upload`)
        lets `resume=True` finish an upload that was interrupted, sending only the parts S3
        does not hold yet. Without `resume`, an old state file's upload is aborted.

        The content type is sniffed from the first bytes (else the file's suffix) unless given;
        the SHA-256 is sent with CreateUploadUrl so the store rejects bytes that differ; the
        bytes are streamed to the presigned URL with exactly the signed headers (retried on
        network errors), reporting `progress(sent, total)`; then ConfirmUpload. `timeout`
        applies to each RPC, not to the PUT.
        """
        upload = await UploadSource.open(source)
        content_type = content_type or content_type_of(upload.head, file_name or upload.name)
        name = file_name or upload.name or default_file_name(content_type)
        if upload.size > multipart_threshold:
            upload_id, forget_state = await upload_in_parts(
                self,
                self._require_http(),
                upload,
                file_name=name,
                content_type=content_type,
                parts_in_flight=parts_in_flight,
                resume=resume,
                progress=progress,
                policy=self._upload_retry,
            )
            photo = await self.confirm_upload(
                upload_id,
                title=title,
                description=description,
                tags=tags,
                visibility=visibility,
                timeout=timeout,
            )
            forget_state()
            return photo
        ticket = await self.create_upload_url(
            name,
            content_type,
            upload.size,
            checksum_sha256=await upload.sha256_base64(),
            skip_if_duplicate=skip_if_duplicate,
            timeout=timeout,
        )
        if ticket.existing_photo_id:
            return await self.get_photo(ticket.existing_photo_id, timeout=timeout)
        await put_object(
            self._require_http(), ticket, upload, progress=progress, policy=self._upload_retry
        )
        return await self.confirm_upload(
            ticket.upload_id,
            title=title,
            description=description,
            tags=tags,
            visibility=visibility,
            timeout=timeout,
        )

    # Plumbing ------------------------------------------------------------------------------

    async def _call(self, rpc: Rpc[Req, Resp], request: Req, timeout: float | None) -> Resp:
        if not self._open:
            raise RuntimeError("PhotoVaultClient is not open: use `async with` (or open())")
        transport = self._transport

        async def attempt(seconds_left: float | None) -> Resp:
            metadata = await authorization(self._token)
            return await transport.unary(rpc, request, metadata=metadata, time_left=seconds_left)

        deadline = Deadline(self._timeout if timeout is None else timeout)
        return await with_retries(
            attempt, policy=self._retry, deadline=deadline, retry=rpc.idempotent
        )

    def _require_http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("PhotoVaultClient is not open: use `async with` (or open())")
        return self._http

    def _remember(self, message: photo_pb2.Photo) -> Photo:
        photo = convert.photo(message)
        self._urls.put(photo.id, photo.url, photo.url_expire_time)
        for variant in photo.variants:
            self._urls.put(photo.id, variant.url, variant.url_expire_time, variant.name)
        return photo


def _tags(tags: Sequence[str]) -> Sequence[str]:
    if isinstance(tags, str):  # a lone "cats" is one tag, not four
        return (tags,)
    return tags
