"""What every service gets from the platform: auth, permissions, health, reflection, shutdown."""

import asyncio
import time

import grpc
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.roles.api.permissions import PERMISSIONS
from services.roles.main import SERVICE_NAMES
from tests.support.company import company_rows, stream
from tests.support.grpc_errors import call_error
from tests.support.tokens import refused_authorizations
from tests.support.waiting import eventually


def every_method() -> set[str]:
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    return {f"/{name}/{m.name}" for name in SERVICE_NAMES for m in pool.FindServiceByName(name).methods}


def test_every_rpc_declares_a_permission():
    assert every_method() == set(PERMISSIONS)


async def test_tokens_that_must_be_refused(roles):
    request = directory_pb2.ListPeopleRequest()
    for what, authorization in refused_authorizations(roles.mint).items():
        metadata = () if authorization is None else (("authorization", authorization),)
        err = await call_error(roles.directory.ListPeople(request, metadata=metadata, timeout=5))
        assert err.code == grpc.StatusCode.UNAUTHENTICATED, what
    good = roles.mint.token(roles=["hr_admin"])
    ok = await roles.directory.ListPeople(request, metadata=(("authorization", f"Bearer {good}"),), timeout=5)
    assert ok.people == []


async def test_an_employee_cannot_change_the_directory(roles):
    err = await call_error(
        roles.directory.ImportDirectory(stream(company_rows()), metadata=roles.as_person("A1"), timeout=10),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "directory.write" in err.message


async def test_reflection_lists_the_services_and_health_is_serving(roles):
    stub = reflection_pb2_grpc.ServerReflectionStub(roles.channel)

    async def ask():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for response in stub.ServerReflectionInfo(ask(), timeout=5):
        names |= {s.name for s in response.list_services_response.service}
    assert set(SERVICE_NAMES) <= names
    health = health_pb2_grpc.HealthStub(roles.channel)
    for service in ["", "readiness", *SERVICE_NAMES]:
        status = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_sigterm_style_stop_turns_health_not_serving_before_the_listener_closes(roles):
    roles.app.settings.drain_seconds = 1.0
    health = health_pb2_grpc.HealthStub(roles.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service="readiness"), timeout=10)
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stopping = asyncio.create_task(roles.app.stop())
    second = await watch.read()
    assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
    # Still answering calls during the drain.
    ok = await roles.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=roles.admin, timeout=5)
    assert ok is not None
    await stopping
    roles.app.stop = _already_stopped  # the fixture's teardown must not stop twice


async def _already_stopped() -> None:
    return None


async def test_platform_channels_give_every_call_a_deadline(roles):
    from services.platform.client import channel

    # A peer that accepts the connection and never answers.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    black_hole = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = black_hole.sockets[0].getsockname()[1]
    async with channel(f"127.0.0.1:{port}", default_deadline=0.5) as ch:
        started = time.monotonic()
        err = await call_error(
            directory_pb2_grpc.DirectoryServiceStub(ch).ListPeople(directory_pb2.ListPeopleRequest())
        )
        assert err.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 5
    black_hole.close()
    async with channel(f"127.0.0.1:{roles.app.port}", default_deadline=2) as ch:
        people = await directory_pb2_grpc.DirectoryServiceStub(ch).ListPeople(
            directory_pb2.ListPeopleRequest(), metadata=roles.admin
        )
        assert people.people == []


async def test_a_generic_client_calls_the_service_from_reflection_alone(roles):
    """What grpcurl does: fetch descriptors by reflection, build the request, call."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    stub = reflection_pb2_grpc.ServerReflectionStub(roles.channel)

    async def ask():
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="engage.roles.v1.DecisionService")

    pool = descriptor_pool.DescriptorPool()
    files = {}
    async for response in stub.ServerReflectionInfo(ask(), timeout=5):
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = proto

    def add(name: str) -> None:  # dependencies first
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    added: set[str] = set()
    for name in files:
        add(name)
    method = pool.FindServiceByName("engage.roles.v1.DecisionService").methods_by_name["CheckDecision"]
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    call = roles.channel.unary_unary(
        "/engage.roles.v1.DecisionService/CheckDecision",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    request = request_type(person="people/NOBODY", category="decisionCategories/any")
    err = await call_error(call(request, metadata=roles.admin, timeout=5))
    assert err.code == grpc.StatusCode.NOT_FOUND and "people/NOBODY" in err.message


async def test_migrations_run_twice_without_harm(roles):
    from services.roles.migrate import migrate

    await migrate(roles.app.db)
    await migrate(roles.app.db)
    people = await roles.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=roles.admin, timeout=5)
    assert people.people == []


async def test_metrics_endpoint_counts_calls_by_method_and_code(tmp_path, mint, nats_server):
    import urllib.request

    from tests.conftest import start_roles
    from tests.support.nats_server import free_port

    port = free_port()
    client = await start_roles(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", nats_server, mint, metrics_port=port)
    try:
        await call_error(
            client.directory.GetPerson(
                directory_pb2.GetPersonRequest(name="people/X"), metadata=client.admin, timeout=5
            ),
            grpc.StatusCode.NOT_FOUND,
        )
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )
        text = body.decode()
        assert 'engage_grpc_requests_total{code="NOT_FOUND",method="GetPerson",service="roles"}' in text
        assert 'engage_ready{service="roles"} 1.0' in text
    finally:
        await client.channel.close(None)
        await client.app.stop()


async def test_at_the_concurrency_limit_calls_are_refused_but_health_still_answers(tmp_path, mint, nats_server):
    from tests.conftest import start_roles

    client = await start_roles(f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}", nats_server, mint, max_concurrent_rpcs=2)
    release = asyncio.Event()

    async def held_open():
        # A first row opens the call on the server; then it waits for more.
        yield directory_pb2.ImportDirectoryRequest()
        await release.wait()

    try:
        held = [
            asyncio.ensure_future(client.directory.ImportDirectory(held_open(), metadata=client.admin, timeout=30))
            for _ in range(2)
        ]

        async def in_flight() -> int:
            return client.app.interceptor.in_flight

        await eventually(in_flight, lambda n: n == 2, what="both held calls in flight")
        request = directory_pb2.ListPeopleRequest()
        refused = await _code_of(client.directory.ListPeople(request, metadata=client.admin, timeout=5))
        assert refused == grpc.StatusCode.RESOURCE_EXHAUSTED
        health = health_pb2_grpc.HealthStub(client.channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        release.set()
        await asyncio.gather(*held)
        assert (await client.directory.ListPeople(request, metadata=client.admin, timeout=5)).people == []
    finally:
        release.set()
        await client.channel.close(None)
        await client.app.stop()


async def _code_of(call) -> grpc.StatusCode:
    try:
        await call
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as err:
        return err.code()


def _with_unknown_field(payload: bytes, number: int = 999) -> bytes:
    """The payload plus a varint field the API does not define."""
    tag = number << 3  # wire type 0: varint
    key = bytearray()
    while tag > 0x7F:
        key.append((tag & 0x7F) | 0x80)
        tag >>= 7
    key.append(tag)
    return payload + bytes(key) + b"\x01"


async def test_unknown_fields_are_refused_with_the_field_named_and_nothing_written(roles):
    from engage.roles.v1 import assignments_pb2

    from tests.support.company import load_company

    await load_company(roles)
    inner = assignments_pb2.Assignment(
        person="people/S1", role="roles/service-agent", org_unit="orgUnits/SVC-1", reason="test"
    )
    outer = assignments_pb2.CreateAssignmentRequest(request_id="unknown-field-1")
    # The unknown field sits inside `assignment`: the error names that field.
    raw = outer.SerializeToString() + b"\x0a" + bytes([len(_with_unknown_field(inner.SerializeToString()))])
    raw += _with_unknown_field(inner.SerializeToString())
    create = roles.channel.unary_unary(
        "/engage.roles.v1.AssignmentService/CreateAssignment",
        request_serializer=lambda b: b,
        response_deserializer=assignments_pb2.Assignment.FromString,
    )
    err = await call_error(create(raw, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
    assert err.fields == ["assignment"] and err.reason == "UNKNOWN_FIELD" and "999" in err.message
    listed = await roles.assignments.ListAssignments(
        assignments_pb2.ListAssignmentsRequest(person="people/S1"), metadata=roles.admin, timeout=5
    )
    assert list(listed.assignments) == []

    # The same request without the stranger goes through.
    create_ok = await roles.assignments.CreateAssignment(
        assignments_pb2.CreateAssignmentRequest(assignment=inner, request_id="unknown-field-2"),
        metadata=roles.admin,
        timeout=5,
    )
    assert create_ok.person == "people/S1"

    # In a client stream, the row with an unknown field fails the call.
    rows = [r.SerializeToString() for r in company_rows()]
    rows[1] = _with_unknown_field(rows[1], 4242)
    import_raw = roles.channel.stream_unary(
        "/engage.roles.v1.DirectoryService/ImportDirectory",
        request_serializer=lambda b: b,
        response_deserializer=directory_pb2.ImportDirectoryResponse.FromString,
    )

    async def raw_rows():
        for row in rows:
            yield row

    err = await call_error(import_raw(raw_rows(), metadata=roles.admin, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert err.reason == "UNKNOWN_FIELD" and "4242" in err.message


async def test_every_answer_carries_the_request_id_for_the_logs(roles):
    call = roles.directory.ListPeople(
        directory_pb2.ListPeopleRequest(), metadata=(*roles.admin, ("x-request-id", "trace-7")), timeout=5
    )
    await call
    assert ("x-request-id", "trace-7") in tuple(await call.trailing_metadata())
    fresh = roles.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=roles.admin, timeout=5)
    await fresh
    made = dict(await fresh.trailing_metadata())["x-request-id"]
    assert len(made) == 36  # a uuid made by the service when the caller sent none
    # An id too long to be one is not copied into every log line: the call gets its own.
    long = roles.directory.ListPeople(
        directory_pb2.ListPeopleRequest(), metadata=(*roles.admin, ("x-request-id", "x" * 5000)), timeout=5
    )
    await long
    replaced = dict(await long.trailing_metadata())["x-request-id"]
    assert len(replaced) == 36
