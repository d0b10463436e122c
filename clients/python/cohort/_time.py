"""Conversions between Python times and protobuf Duration/Timestamp, range-checked the
way the broker checks them (at most 100 years, never negative), so that a bad value is
a ValueError here rather than an INVALID_ARGUMENT round trip."""

from __future__ import annotations

import datetime
import math
from typing import Union

from google.protobuf import duration_pb2, timestamp_pb2

Seconds = Union[float, int, datetime.timedelta]

# The broker refuses durations over 100 years (broker.proto, job.proto).
MAX_SECONDS = 100 * 365.25 * 24 * 3600


def to_seconds(value: Seconds) -> float:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def duration(value: Seconds, field: str) -> duration_pb2.Duration:
    """A non-negative duration of at most 100 years, for a spec field."""
    seconds = to_seconds(value)
    if math.isnan(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"{field} must be between 0 and 100 years, got {value!r}")
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=min(999_999_999, round((seconds - whole) * 1e9)))


def wait_timeout(timeout: Seconds | None) -> duration_pb2.Duration | None:
    """A wait's timeout as asyncio reads it: None waits without end, a negative one
    means "look now" (0), a huge one (inf included) is the same as None."""
    if timeout is None:
        return None
    seconds = to_seconds(timeout)
    if math.isnan(seconds):
        raise ValueError("timeout must be a number or None")
    if seconds > MAX_SECONDS:
        return None
    return duration(max(0.0, seconds), "timeout")


def timestamp(value: datetime.datetime, field: str) -> timestamp_pb2.Timestamp:
    """An aware datetime (a naive one is refused: the broker's clock is UTC)."""
    if value.tzinfo is None:
        raise ValueError(f"{field} must be timezone-aware, got {value!r}")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(datetime.timezone.utc))
    return stamp
