"""Conversions between protobuf messages and Python values, shared by every service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def ts_required(value: datetime) -> Timestamp:
    # Exact integer arithmetic, several times cheaper than Timestamp.FromDatetime
    # (every response carries timestamps). A naive datetime is taken as local
    # time, as astimezone() does.
    since = value.astimezone(UTC) - _EPOCH
    return Timestamp(seconds=since // _SECOND, nanos=since.microseconds * 1000)


def ts_in(value: Timestamp, present: bool, field: str = "") -> datetime | None:
    """The request's timestamp, or None when absent; INVALID_ARGUMENT (naming
    `field`) for one outside what a Timestamp may hold (years 1 to 9999)."""
    if not present:
        return None
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise invalid(field or "timestamp", "is outside the range of a Timestamp (years 1 to 9999)") from exc


def reject_unknown_fields(message: Message, path: str = "") -> None:
    """INVALID_ARGUMENT for a field this server does not know (a client built
    against a newer API, or a typo'd field number): ignoring it silently
    would, say, drop a filter and answer the wrong question."""
    unknown = unknown_fields.UnknownFieldSet(message)
    if len(unknown):
        numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
        where = path or message.DESCRIPTOR.name
        raise invalid(where, f"has fields this API version does not know (numbers {numbers})", "UNKNOWN_FIELD")
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        child = f"{path}.{field.name}" if path else field.name
        entry = field.message_type
        assert entry is not None  # a message field has a message type
        if entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE:
                for key, item in value.items():
                    reject_unknown_fields(item, f"{child}[{key}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                reject_unknown_fields(item, f"{child}[{index}]")
        else:
            reject_unknown_fields(value, child)
