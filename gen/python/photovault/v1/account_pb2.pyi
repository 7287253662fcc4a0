import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Account(_message.Message):
    __slots__ = ("user_id", "photo_count", "used_bytes", "quota_bytes", "create_time", "pending_bytes")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PHOTO_COUNT_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PENDING_BYTES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    photo_count: int
    used_bytes: int
    quota_bytes: int
    create_time: _timestamp_pb2.Timestamp
    pending_bytes: int
    def __init__(self, user_id: _Optional[str] = ..., photo_count: _Optional[int] = ..., used_bytes: _Optional[int] = ..., quota_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_bytes: _Optional[int] = ...) -> None: ...
