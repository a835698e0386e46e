"""Property-based fuzzing of every RPC the running services serve.

The services run as real processes (SQLite, one NATS; roles with the test
company, whose events reach skills and incentives). Each service's methods
are listed through its own gRPC reflection, so a method added later is fuzzed
too; hypothesis builds request messages from the method's input descriptor
(tests/support/proto_strategies.py) and calls it with a valid HR
administrator's token. No request may end in INTERNAL or UNKNOWN (or hang to
its deadline), and the service must stay alive and ready.

Examples per method: ENGAGE_FUZZ_EXAMPLES (default 12).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fleet import Fleet, served_methods
from tests.support.proto_strategies import message_class, messages

EXAMPLES = int(os.environ.get("ENGAGE_FUZZ_EXAMPLES", "12"))
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
CALL_SECONDS = 10.0


def fuzz_method(channel: grpc.Channel, method: MethodDescriptor, metadata: object, codes: Counter[str]) -> list[str]:
    """Calls one method with generated requests; counts the status codes; returns what went wrong."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_class = message_class(method.input_type)
    call: Any
    requests: st.SearchStrategy[Any]
    if method.client_streaming:
        call = channel.stream_unary(
            path, request_serializer=request_class.SerializeToString, response_deserializer=None
        )
        requests = st.lists(messages(method.input_type), max_size=4)
    else:
        call = channel.unary_unary(path, request_serializer=request_class.SerializeToString, response_deserializer=None)
        requests = messages(method.input_type)
    problems: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(requests)
    def check(request: object) -> None:
        payload = iter(request) if method.client_streaming else request  # type: ignore[call-overload]
        try:
            call(payload, metadata=metadata, timeout=CALL_SECONDS)
            codes["OK"] += 1
        except grpc.RpcError as exc:
            codes[exc.code().name] += 1  # type: ignore[attr-defined]
            if exc.code() in FORBIDDEN:  # type: ignore[attr-defined]
                problems.append(f"{path}: {exc.code().name} {exc.details()} for {request!r:.300}")  # type: ignore[attr-defined]
                raise AssertionError(problems[-1]) from None

    with contextlib.suppress(AssertionError):  # recorded in `problems`, the shrunk example last
        check()
    return problems[-1:]


def _ready(channel: grpc.Channel) -> bool:
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5)
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.parametrize("service", ["roles", "skills", "incentives"])
def test_fuzzed_requests_to_every_rpc_never_crash_the_service(fleet: Fleet, service: str, scenario):
    process = fleet.services[service]
    with grpc.insecure_channel(process.target) as channel:
        methods = served_methods(channel)
        scenario.load = f"{len(methods)} RPCs x {EXAMPLES} generated requests"
        codes: Counter[str] = Counter()
        problems = {m.full_name: p for m in methods for p in fuzz_method(channel, m, fleet.metadata, codes)}
        scenario.faults = "generated requests; answers " + ", ".join(f"{c} {n}" for c, n in codes.most_common(4))
        assert process.proc is not None and process.proc.poll() is None, f"{service} died"
        assert _ready(channel), f"{service} is no longer ready"
    assert len(methods) >= 4
    assert problems == {}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


UNKNOWN_FIELD = _varint(9999 << 3) + _varint(1)  # field 9999, a varint: no Engage message has it


def with_unknown_fields(method: MethodDescriptor) -> list[bytes]:
    """The request with an unknown field at the top, and inside its first message field."""
    requests = [UNKNOWN_FIELD]
    nested = [f for f in method.input_type.fields if f.type == f.TYPE_MESSAGE and not f.is_repeated]
    if nested:
        requests.append(_varint(nested[0].number << 3 | 2) + _varint(len(UNKNOWN_FIELD)) + UNKNOWN_FIELD)
    return requests


@pytest.mark.parametrize("service", ["roles", "skills", "incentives"])
def test_every_rpc_rejects_unknown_fields_with_invalid_argument(fleet: Fleet, service: str, scenario):
    """A field this API version does not know is INVALID_ARGUMENT (reason UNKNOWN_FIELD), never ignored."""
    with grpc.insecure_channel(fleet.services[service].target) as channel:
        methods = served_methods(channel)
        wrong: dict[str, str] = {}
        sent = 0
        for method in methods:
            path = f"/{method.containing_service.full_name}/{method.name}"
            for raw in with_unknown_fields(method):
                sent += 1
                try:
                    if method.client_streaming:
                        channel.stream_unary(path, None, None)(iter([raw]), metadata=fleet.metadata, timeout=10)
                    else:
                        channel.unary_unary(path, None, None)(raw, metadata=fleet.metadata, timeout=10)
                    wrong[path] = "accepted"
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:  # type: ignore[attr-defined]
                        wrong[path] = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
    scenario.load, scenario.faults = f"{len(methods)} RPCs, {sent} requests", "unknown field 9999, top level and nested"
    assert wrong == {}
