"""Proto conversion: the fast Timestamp path is exact for every microsecond."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from photovault_server.transport.convert import timestamp


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_timestamp_matches_protobufs_own_conversion(value: datetime) -> None:
    reference = Timestamp()
    reference.FromDatetime(value)
    assert timestamp(value) == reference
    assert timestamp(value).ToDatetime(tzinfo=UTC) == value
