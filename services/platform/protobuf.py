"""Conversions between protobuf messages and Python values, shared by every service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.errors import invalid


def enum_in(enum_type: Any, proto_enum: Any, value: int, prefix: str, field: str, required: bool = True) -> Any:
    """Proto enum number -> domain enum member (None if unset and optional)."""
    if value == 0:
        if required:
            raise invalid(field, "is required")
        return None
    try:
        return enum_type(proto_enum.Name(value).removeprefix(prefix))
    except ValueError as exc:
        raise invalid(field, f"unknown value {value}") from exc


def enum_out(proto_enum: Any, prefix: str, value: str) -> Any:
    """Domain enum value -> proto enum number (typed Any: the generated stubs
    type each enum field with its own enum class)."""
    return proto_enum.Value(prefix + value)


def ts_out(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    return ts_required(value)


def ts_required(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def ts_in(value: Timestamp, present: bool) -> datetime | None:
    return value.ToDatetime(tzinfo=UTC) if present else None
