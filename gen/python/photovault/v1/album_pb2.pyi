import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from photovault.v1 import photo_pb2 as _photo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Album(_message.Message):
    __slots__ = ("id", "title", "description", "cover_photo_id", "photo_count", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COVER_PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    description: str
    cover_photo_id: str
    photo_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., cover_photo_id: _Optional[str] = ..., photo_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ShareLink(_message.Message):
    __slots__ = ("id", "token", "album_id", "photo_id", "expire_time", "allow_original", "create_time", "has_password")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ALBUM_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    id: str
    token: str
    album_id: str
    photo_id: str
    expire_time: _timestamp_pb2.Timestamp
    allow_original: bool
    create_time: _timestamp_pb2.Timestamp
    has_password: bool
    def __init__(self, id: _Optional[str] = ..., token: _Optional[str] = ..., album_id: _Optional[str] = ..., photo_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allow_original: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_password: _Optional[bool] = ...) -> None: ...

class SharedPhoto(_message.Message):
    __slots__ = ("id", "title", "description", "width", "height", "placeholder", "variants", "url", "url_expire_time", "content_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDER_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    URL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    description: str
    width: int
    height: int
    placeholder: str
    variants: _containers.RepeatedCompositeFieldContainer[_photo_pb2.PhotoVariant]
    url: str
    url_expire_time: _timestamp_pb2.Timestamp
    content_type: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., placeholder: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[_photo_pb2.PhotoVariant, _Mapping]]] = ..., url: _Optional[str] = ..., url_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_type: _Optional[str] = ...) -> None: ...
