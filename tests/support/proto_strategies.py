"""Hypothesis strategies for any protobuf request message, built from its descriptor.

Every field may be set or left out; strings mix arbitrary text with resource
names of Engage (so calls get past name parsing into the use cases); numbers
include the edges of their type; enums include values the proto does not
define; timestamps include values outside what google.protobuf.Timestamp
allows. Nesting stops at `MAX_DEPTH`, lists at `MAX_ITEMS`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 3
MAX_ITEMS = 3

NAMES = [
    "",
    "*",
    "-",
    "people/A1",
    "people/CEO",
    "people/nobody",
    "orgUnits/ACME",
    "orgUnits/SALES-N",
    "roles/service-agent",
    "roles/service-agent@1",
    "roles/team-lead@999999999999",
    "decisionCategories/customer-refund",
    "assignments/1",
    "delegations/1",
    "skills/customer-empathy",
    "skillCategories/x",
    "proficiencyScales/default",
    "people/A1/assessments/1",
    "people/A1/skillLevels/customer-empathy",
    "behaviourTypes/case-solved-cross-department",
    "behaviourEvents/e1",
    "schemes/collab",
    "schemes/collab@1",
    "schemes/collab/periods/2025-01",
    "schemes/collab/periods/2025-01/scorecards/A1",
    "awards/1",
    "people/../roles/x",
    "people/" + "x" * 300,
]
COLLECTIONS = ["people", "orgUnits", "roles", "assignments", "skills", "schemes", "behaviourTypes", "awards"]

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NAMES),
        st.text(max_size=40),
        st.builds(lambda c, i: f"{c}/{i}", st.sampled_from(COLLECTIONS), st.text(max_size=20)),
    )


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (0, 1, -1, 50, 1000, 1001, 10**9, low, high) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _timestamp() -> st.SearchStrategy[dict[str, Any]]:
    valid = st.fixed_dictionaries(
        {"seconds": st.integers(-62135596800, 253402300799), "nanos": st.integers(0, 999_999_999)}
    )
    wild = st.fixed_dictionaries({"seconds": _integers(-(2**63), 2**63 - 1), "nanos": _integers(-(2**31), 2**31 - 1)})
    return st.one_of(valid, valid, wild)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_RANGES:
        return _integers(*_INT_RANGES[t])
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if t == FieldDescriptor.TYPE_STRING:
        return strings()
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_ENUM:
        defined = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.integers(-3, 99))
    raise TypeError(f"no strategy for field type {t} of {field.full_name}")


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return _scalar(field)
    if field.message_type.full_name == "google.protobuf.Timestamp":
        return _timestamp().map(lambda kw: message_class(field.message_type)(**kw))
    if depth >= MAX_DEPTH:
        return None
    return messages(field.message_type, depth + 1)


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if _is_map(field):
        key = _scalar(field.message_type.fields_by_name["key"])
        value = _value(field.message_type.fields_by_name["value"], depth)
        return None if value is None else st.dictionaries(key, value, max_size=MAX_ITEMS)
    value = _value(field, depth)
    if value is None:
        return None
    if field.is_repeated:
        return st.lists(value, max_size=MAX_ITEMS)
    return value


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of this type with any subset of their fields set."""
    optional = {f.name: s for f in descriptor.fields if (s := _field(f, depth)) is not None}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: _build(descriptor, values))


def _build(descriptor: Descriptor, values: dict[str, Any]) -> Message:
    msg = message_class(descriptor)()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target: Any = getattr(msg, name) if field.type == FieldDescriptor.TYPE_MESSAGE or field.is_repeated else None
        if _is_map(field):
            for k, v in value.items():
                if isinstance(v, Message):
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for v in value:
                    target.add().CopyFrom(v)
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg
