import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from photovault.v1 import account_pb2 as _account_pb2
from photovault.v1 import album_pb2 as _album_pb2
from photovault.v1 import photo_pb2 as _photo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PhotoOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHOTO_ORDER_UNSPECIFIED: _ClassVar[PhotoOrder]
    PHOTO_ORDER_NEWEST_FIRST: _ClassVar[PhotoOrder]
    PHOTO_ORDER_OLDEST_FIRST: _ClassVar[PhotoOrder]
    PHOTO_ORDER_TAKEN_NEWEST_FIRST: _ClassVar[PhotoOrder]
    PHOTO_ORDER_TAKEN_OLDEST_FIRST: _ClassVar[PhotoOrder]
PHOTO_ORDER_UNSPECIFIED: PhotoOrder
PHOTO_ORDER_NEWEST_FIRST: PhotoOrder
PHOTO_ORDER_OLDEST_FIRST: PhotoOrder
PHOTO_ORDER_TAKEN_NEWEST_FIRST: PhotoOrder
PHOTO_ORDER_TAKEN_OLDEST_FIRST: PhotoOrder

class CreateUploadUrlRequest(_message.Message):
    __slots__ = ("file_name", "content_type", "size_bytes", "checksum_sha256", "skip_if_duplicate")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_SHA256_FIELD_NUMBER: _ClassVar[int]
    SKIP_IF_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    skip_if_duplicate: bool
    def __init__(self, file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., checksum_sha256: _Optional[str] = ..., skip_if_duplicate: _Optional[bool] = ...) -> None: ...

class CreateUploadUrlResponse(_message.Message):
    __slots__ = ("upload_id", "upload_url", "method", "required_headers", "expire_time", "existing_photo_id")
    class RequiredHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXISTING_PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    upload_url: str
    method: str
    required_headers: _containers.ScalarMap[str, str]
    expire_time: _timestamp_pb2.Timestamp
    existing_photo_id: str
    def __init__(self, upload_id: _Optional[str] = ..., upload_url: _Optional[str] = ..., method: _Optional[str] = ..., required_headers: _Optional[_Mapping[str, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., existing_photo_id: _Optional[str] = ...) -> None: ...

class ConfirmUploadRequest(_message.Message):
    __slots__ = ("upload_id", "title", "description", "tags", "visibility")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    visibility: _photo_pb2.Visibility
    def __init__(self, upload_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., visibility: _Optional[_Union[_photo_pb2.Visibility, str]] = ...) -> None: ...

class ConfirmUploadResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ...) -> None: ...

class GetPhotoRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetPhotoResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ...) -> None: ...

class ListPhotosRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tags", "query", "created_after", "created_before", "visibility", "content_type", "order", "taken_after", "taken_before", "variants", "album_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AFTER_FIELD_NUMBER: _ClassVar[int]
    TAKEN_BEFORE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    ALBUM_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    query: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    visibility: _photo_pb2.Visibility
    content_type: str
    order: PhotoOrder
    taken_after: _timestamp_pb2.Timestamp
    taken_before: _timestamp_pb2.Timestamp
    variants: _containers.RepeatedScalarFieldContainer[str]
    album_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., query: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., visibility: _Optional[_Union[_photo_pb2.Visibility, str]] = ..., content_type: _Optional[str] = ..., order: _Optional[_Union[PhotoOrder, str]] = ..., taken_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., taken_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variants: _Optional[_Iterable[str]] = ..., album_id: _Optional[str] = ...) -> None: ...

class ListPhotosResponse(_message.Message):
    __slots__ = ("photos", "next_page_token")
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[_photo_pb2.Photo]
    next_page_token: str
    def __init__(self, photos: _Optional[_Iterable[_Union[_photo_pb2.Photo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchGetPhotoUrlsRequest(_message.Message):
    __slots__ = ("photo_ids", "variant")
    PHOTO_IDS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    photo_ids: _containers.RepeatedScalarFieldContainer[str]
    variant: str
    def __init__(self, photo_ids: _Optional[_Iterable[str]] = ..., variant: _Optional[str] = ...) -> None: ...

class BatchGetPhotoUrlsResponse(_message.Message):
    __slots__ = ("urls",)
    URLS_FIELD_NUMBER: _ClassVar[int]
    urls: _containers.RepeatedCompositeFieldContainer[_photo_pb2.PhotoUrl]
    def __init__(self, urls: _Optional[_Iterable[_Union[_photo_pb2.PhotoUrl, _Mapping]]] = ...) -> None: ...

class UpdatePhotoRequest(_message.Message):
    __slots__ = ("photo", "update_mask")
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePhotoResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ...) -> None: ...

class DeletePhotoRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeletePhotoResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _account_pb2.Account
    def __init__(self, account: _Optional[_Union[_account_pb2.Account, _Mapping]] = ...) -> None: ...

class CreateMultipartUploadRequest(_message.Message):
    __slots__ = ("file_name", "content_type", "size_bytes", "checksum_sha256", "skip_if_duplicate")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_SHA256_FIELD_NUMBER: _ClassVar[int]
    SKIP_IF_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    skip_if_duplicate: bool
    def __init__(self, file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., checksum_sha256: _Optional[str] = ..., skip_if_duplicate: _Optional[bool] = ...) -> None: ...

class CreateMultipartUploadResponse(_message.Message):
    __slots__ = ("upload_id", "part_size_bytes", "part_count", "expire_time", "existing_photo_id")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXISTING_PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    part_size_bytes: int
    part_count: int
    expire_time: _timestamp_pb2.Timestamp
    existing_photo_id: str
    def __init__(self, upload_id: _Optional[str] = ..., part_size_bytes: _Optional[int] = ..., part_count: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., existing_photo_id: _Optional[str] = ...) -> None: ...

class SignUploadPartsRequest(_message.Message):
    __slots__ = ("upload_id", "part_numbers", "checksums_sha256")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUMS_SHA256_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    part_numbers: _containers.RepeatedScalarFieldContainer[int]
    checksums_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, upload_id: _Optional[str] = ..., part_numbers: _Optional[_Iterable[int]] = ..., checksums_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class UploadPartUrl(_message.Message):
    __slots__ = ("part_number", "url", "method", "required_headers", "expire_time")
    class RequiredHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    url: str
    method: str
    required_headers: _containers.ScalarMap[str, str]
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, part_number: _Optional[int] = ..., url: _Optional[str] = ..., method: _Optional[str] = ..., required_headers: _Optional[_Mapping[str, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignUploadPartsResponse(_message.Message):
    __slots__ = ("parts",)
    PARTS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[UploadPartUrl]
    def __init__(self, parts: _Optional[_Iterable[_Union[UploadPartUrl, _Mapping]]] = ...) -> None: ...

class ListUploadedPartsRequest(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class UploadedPart(_message.Message):
    __slots__ = ("part_number", "size_bytes", "etag")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    size_bytes: int
    etag: str
    def __init__(self, part_number: _Optional[int] = ..., size_bytes: _Optional[int] = ..., etag: _Optional[str] = ...) -> None: ...

class ListUploadedPartsResponse(_message.Message):
    __slots__ = ("parts",)
    PARTS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[UploadedPart]
    def __init__(self, parts: _Optional[_Iterable[_Union[UploadedPart, _Mapping]]] = ...) -> None: ...

class AbortUploadRequest(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class AbortUploadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TrashPhotoRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class TrashPhotoResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RestorePhotoRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RestorePhotoResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ...) -> None: ...

class ListTrashRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrashResponse(_message.Message):
    __slots__ = ("photos", "next_page_token")
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[_photo_pb2.Photo]
    next_page_token: str
    def __init__(self, photos: _Optional[_Iterable[_Union[_photo_pb2.Photo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateAlbumRequest(_message.Message):
    __slots__ = ("title", "description")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CreateAlbumResponse(_message.Message):
    __slots__ = ("album",)
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ...) -> None: ...

class GetAlbumRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetAlbumResponse(_message.Message):
    __slots__ = ("album",)
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ...) -> None: ...

class ListAlbumsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlbumsResponse(_message.Message):
    __slots__ = ("albums", "next_page_token")
    ALBUMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    albums: _containers.RepeatedCompositeFieldContainer[_album_pb2.Album]
    next_page_token: str
    def __init__(self, albums: _Optional[_Iterable[_Union[_album_pb2.Album, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAlbumRequest(_message.Message):
    __slots__ = ("album", "update_mask")
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAlbumResponse(_message.Message):
    __slots__ = ("album",)
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ...) -> None: ...

class DeleteAlbumRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteAlbumResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddAlbumPhotosRequest(_message.Message):
    __slots__ = ("album_id", "photo_ids")
    ALBUM_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_IDS_FIELD_NUMBER: _ClassVar[int]
    album_id: str
    photo_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, album_id: _Optional[str] = ..., photo_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AddAlbumPhotosResponse(_message.Message):
    __slots__ = ("album",)
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ...) -> None: ...

class RemoveAlbumPhotosRequest(_message.Message):
    __slots__ = ("album_id", "photo_ids")
    ALBUM_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_IDS_FIELD_NUMBER: _ClassVar[int]
    album_id: str
    photo_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, album_id: _Optional[str] = ..., photo_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveAlbumPhotosResponse(_message.Message):
    __slots__ = ("album",)
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    album: _album_pb2.Album
    def __init__(self, album: _Optional[_Union[_album_pb2.Album, _Mapping]] = ...) -> None: ...

class CreateShareLinkRequest(_message.Message):
    __slots__ = ("album_id", "photo_id", "expire_time", "allow_original", "password")
    ALBUM_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    album_id: str
    photo_id: str
    expire_time: _timestamp_pb2.Timestamp
    allow_original: bool
    password: str
    def __init__(self, album_id: _Optional[str] = ..., photo_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allow_original: _Optional[bool] = ..., password: _Optional[str] = ...) -> None: ...

class CreateShareLinkResponse(_message.Message):
    __slots__ = ("share_link",)
    SHARE_LINK_FIELD_NUMBER: _ClassVar[int]
    share_link: _album_pb2.ShareLink
    def __init__(self, share_link: _Optional[_Union[_album_pb2.ShareLink, _Mapping]] = ...) -> None: ...

class ListShareLinksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListShareLinksResponse(_message.Message):
    __slots__ = ("share_links",)
    SHARE_LINKS_FIELD_NUMBER: _ClassVar[int]
    share_links: _containers.RepeatedCompositeFieldContainer[_album_pb2.ShareLink]
    def __init__(self, share_links: _Optional[_Iterable[_Union[_album_pb2.ShareLink, _Mapping]]] = ...) -> None: ...

class RevokeShareLinkRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeShareLinkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSharedAlbumRequest(_message.Message):
    __slots__ = ("token", "password", "page_size", "page_token")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    password: str
    page_size: int
    page_token: str
    def __init__(self, token: _Optional[str] = ..., password: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetSharedAlbumResponse(_message.Message):
    __slots__ = ("title", "description", "photos", "next_page_token")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    photos: _containers.RepeatedCompositeFieldContainer[_album_pb2.SharedPhoto]
    next_page_token: str
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., photos: _Optional[_Iterable[_Union[_album_pb2.SharedPhoto, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
