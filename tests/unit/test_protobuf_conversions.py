"""The shared protobuf conversions give exactly what protobuf's own would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from services.platform.protobuf import ts_in, ts_required

OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
# Within a Timestamp's range whatever the offset (years 2 to 9998).
TIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS)


def _reference(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


@given(TIMES)
def test_a_timestamp_is_the_one_protobuf_would_make(value: datetime) -> None:
    assert ts_required(value) == _reference(value)


@given(TIMES)
def test_a_timestamp_reads_back_as_the_same_moment(value: datetime) -> None:
    assert ts_in(ts_required(value), True) == value


def test_times_before_1970_keep_positive_nanos() -> None:
    ts = ts_required(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
    assert (ts.seconds, ts.nanos) == (-1, 500_000_000)
