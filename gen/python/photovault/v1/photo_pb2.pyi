import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_UNSPECIFIED: _ClassVar[Visibility]
    VISIBILITY_PRIVATE: _ClassVar[Visibility]
    VISIBILITY_PUBLIC: _ClassVar[Visibility]

class ProcessingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROCESSING_STATE_UNSPECIFIED: _ClassVar[ProcessingState]
    PROCESSING_STATE_PENDING: _ClassVar[ProcessingState]
    PROCESSING_STATE_READY: _ClassVar[ProcessingState]
    PROCESSING_STATE_FAILED: _ClassVar[ProcessingState]
VISIBILITY_UNSPECIFIED: Visibility
VISIBILITY_PRIVATE: Visibility
VISIBILITY_PUBLIC: Visibility
PROCESSING_STATE_UNSPECIFIED: ProcessingState
PROCESSING_STATE_PENDING: ProcessingState
PROCESSING_STATE_READY: ProcessingState
PROCESSING_STATE_FAILED: ProcessingState

class GeoPoint(_message.Message):
    __slots__ = ("latitude", "longitude")
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    latitude: float
    longitude: float
    def __init__(self, latitude: _Optional[float] = ..., longitude: _Optional[float] = ...) -> None: ...

class PhotoVariant(_message.Message):
    __slots__ = ("name", "content_type", "width", "height", "size_bytes", "url", "url_expire_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    URL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    url: str
    url_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., size_bytes: _Optional[int] = ..., url: _Optional[str] = ..., url_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Photo(_message.Message):
    __slots__ = ("id", "owner_id", "file_name", "content_type", "size_bytes", "checksum_sha256", "title", "description", "tags", "visibility", "create_time", "update_time", "url", "url_expire_time", "width", "height", "taken_time", "camera", "location", "processing_state", "placeholder", "variants")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_SHA256_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    URL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TAKEN_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_STATE_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDER_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    owner_id: str
    file_name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    visibility: Visibility
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    url: str
    url_expire_time: _timestamp_pb2.Timestamp
    width: int
    height: int
    taken_time: _timestamp_pb2.Timestamp
    camera: str
    location: GeoPoint
    processing_state: ProcessingState
    placeholder: str
    variants: _containers.RepeatedCompositeFieldContainer[PhotoVariant]
    def __init__(self, id: _Optional[str] = ..., owner_id: _Optional[str] = ..., file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., checksum_sha256: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., url: _Optional[str] = ..., url_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., taken_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., camera: _Optional[str] = ..., location: _Optional[_Union[GeoPoint, _Mapping]] = ..., processing_state: _Optional[_Union[ProcessingState, str]] = ..., placeholder: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[PhotoVariant, _Mapping]]] = ...) -> None: ...

class PhotoUrl(_message.Message):
    __slots__ = ("photo_id", "url", "expire_time", "variant")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    url: str
    expire_time: _timestamp_pb2.Timestamp
    variant: str
    def __init__(self, photo_id: _Optional[str] = ..., url: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variant: _Optional[str] = ...) -> None: ...
