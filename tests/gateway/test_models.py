"""The API's JSON shapes convert protobuf values exactly."""

from __future__ import annotations

import random
from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.models import _time


def test_timestamps_convert_as_protobuf_does_over_the_whole_range() -> None:
    edges = [(-62135596800, 0), (253402300799, 999999999), (0, 1), (1, 999), (-1, 999999999), (1700000000, 123456789)]
    rng = random.Random(7)
    samples = edges + [(rng.randint(-62135596800, 253402300799), rng.randint(0, 999999999)) for _ in range(5000)]
    for seconds, nanos in samples:
        ts = Timestamp(seconds=seconds, nanos=nanos)
        assert _time(ts) == ts.ToDatetime(tzinfo=UTC), (seconds, nanos)
    assert _time(Timestamp()) is None  # unset
